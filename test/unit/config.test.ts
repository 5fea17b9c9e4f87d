import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/common/index.js';
import { loadConfig } from '../../src/server/config.js';

/** Runs fn, expects a ConfigError and hands it back for closer checks. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

describe('loadConfig', () => {
  test('an empty environment gives the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.visualStreamingEnabled, true);
    assert.equal(config.maxConnections, 100);
    assert.equal(config.eventBufferSize, 1000);
    assert.equal(config.chromiumPath, undefined);
    assert.equal(config.logLevel, 'info');
  });

  test('whole numbers are parsed into numbers, surrounding spaces ignored', () => {
    const config = loadConfig({ PORT: ' 8080 ', VISUAL_WEBSOCKET_MAX_CONNECTIONS: '7', VISUAL_EVENT_BUFFER_SIZE: '50000' });
    assert.equal(config.port, 8080);
    assert.equal(config.maxConnections, 7);
    assert.equal(config.eventBufferSize, 50000);
  });

  test('PORT 0 is accepted (pick a free port)', () => {
    assert.equal(loadConfig({ PORT: '0' }).port, 0);
  });

  for (const [raw, expected] of [
    ['true', true],
    ['TRUE', true],
    ['1', true],
    [' yes ', true],
    ['false', false],
    ['False', false],
    ['0', false],
    ['no', false],
  ] as const) {
    test(`VISUAL_STREAMING_ENABLED=${JSON.stringify(raw)} reads as ${expected}`, () => {
      assert.equal(loadConfig({ VISUAL_STREAMING_ENABLED: raw }).visualStreamingEnabled, expected);
    });
  }

  test('an empty string counts as unset and gets the default', () => {
    const config = loadConfig({ PORT: '', HOST: '', VISUAL_STREAMING_ENABLED: '', VISUAL_EVENT_BUFFER_SIZE: '', LOG_LEVEL: '', CHROMIUM_PATH: '' });
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.visualStreamingEnabled, true);
    assert.equal(config.eventBufferSize, 1000);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.chromiumPath, undefined);
  });

  test('HOST, CHROMIUM_PATH and LOG_LEVEL are passed through', () => {
    const config = loadConfig({ HOST: '0.0.0.0', CHROMIUM_PATH: '/opt/chrome', LOG_LEVEL: 'silent' });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.chromiumPath, '/opt/chrome');
    assert.equal(config.logLevel, 'silent');
  });

  test('LOG_FORMAT is pretty or json, unset by default (pretty on a terminal); anything else is refused', () => {
    assert.equal(loadConfig({}).logFormat, undefined);
    assert.equal(loadConfig({ LOG_FORMAT: 'json' }).logFormat, 'json');
    assert.match(configError(() => loadConfig({ LOG_FORMAT: 'yaml' })).message, /LOG_FORMAT/);
  });

  test('a non-numeric PORT throws a ConfigError naming PORT and its value', () => {
    const err = configError(() => loadConfig({ PORT: 'abc' }));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /PORT="abc": must be a whole number/);
  });

  test('a negative or fractional number is not a whole number', () => {
    assert.match(configError(() => loadConfig({ PORT: '-1' })).message, /PORT="-1"/);
    assert.match(configError(() => loadConfig({ VISUAL_EVENT_BUFFER_SIZE: '10.5' })).message, /VISUAL_EVENT_BUFFER_SIZE="10.5"/);
  });

  test('numbers out of range are refused with the bound in the message', () => {
    assert.match(configError(() => loadConfig({ PORT: '65536' })).message, /PORT="65536": must be at most 65535/);
    assert.match(configError(() => loadConfig({ VISUAL_WEBSOCKET_MAX_CONNECTIONS: '0' })).message, /VISUAL_WEBSOCKET_MAX_CONNECTIONS="0": must be at least 1/);
    assert.match(configError(() => loadConfig({ VISUAL_EVENT_BUFFER_SIZE: '9' })).message, /VISUAL_EVENT_BUFFER_SIZE="9": must be at least 10/);
  });

  test('a boolean that is not true/false/1/0/yes/no is refused', () => {
    const err = configError(() => loadConfig({ VISUAL_STREAMING_ENABLED: 'maybe' }));
    assert.match(err.message, /VISUAL_STREAMING_ENABLED="maybe": must be true or false/);
  });

  test('an unknown LOG_LEVEL is refused', () => {
    assert.match(configError(() => loadConfig({ LOG_LEVEL: 'loud' })).message, /LOG_LEVEL="loud"/);
  });

  test('a HOST of only spaces is refused rather than treated as unset', () => {
    assert.match(configError(() => loadConfig({ HOST: '   ' })).message, /HOST=" {3}": must not be empty/);
  });

  test('the error names every bad variable with its value at once', () => {
    const err = configError(() =>
      loadConfig({ PORT: 'eighty', VISUAL_STREAMING_ENABLED: 'perhaps', VISUAL_WEBSOCKET_MAX_CONNECTIONS: 'lots', VISUAL_EVENT_BUFFER_SIZE: '3', HOST: 'ok' }),
    );
    assert.match(err.message, /PORT="eighty"/);
    assert.match(err.message, /VISUAL_STREAMING_ENABLED="perhaps"/);
    assert.match(err.message, /VISUAL_WEBSOCKET_MAX_CONNECTIONS="lots"/);
    assert.match(err.message, /VISUAL_EVENT_BUFFER_SIZE="3"/);
    assert.doesNotMatch(err.message, /HOST/);
  });

  test('the returned config is frozen', () => {
    const config = loadConfig({});
    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.equal(config.port, 3000);
  });
  test('a browser per run and asset capture by default; capture is off with a shared browser or VISUAL_ASSETS=false', () => {
    const d = loadConfig({});
    assert.equal(d.browserIsolation, 'run');
    assert.deepEqual(d.assets, { maxAssetBytes: 16 * 1024 * 1024, maxSessionBytes: 128 * 1024 * 1024 });
    assert.equal(loadConfig({ BROWSER_ISOLATION: 'shared' }).assets, null);
    assert.equal(loadConfig({ VISUAL_ASSETS: 'false' }).assets, null);
    assert.match(configError(() => loadConfig({ BROWSER_ISOLATION: 'process' })).message, /BROWSER_ISOLATION="process": must be run or shared/);
    assert.match(configError(() => loadConfig({ VISUAL_ASSET_MAX_MB: '64', VISUAL_ASSETS_SESSION_MAX_MB: '32' })).message, /VISUAL_ASSET_MAX_MB=64: must be at most VISUAL_ASSETS_SESSION_MAX_MB \(32\)/);
  });

  test('METRICS_TOKEN: unset by default, kept when long enough, a short one named with how to make one', () => {
    assert.equal(loadConfig({}).metricsToken, undefined);
    assert.equal(loadConfig({ METRICS_TOKEN: ' scrape-token-0123456789 ' }).metricsToken, 'scrape-token-0123456789');
    assert.match(configError(() => loadConfig({ METRICS_TOKEN: 'short' })).message, /METRICS_TOKEN="short": must be at least 16 characters \(generate one with: openssl rand -hex 24\)/);
  });

  test('DOMCAST_DATABASE_URL: unset by default (SQLite), a postgres:// URL kept as given', () => {
    assert.equal(loadConfig({}).databaseUrl, undefined);
    assert.equal(loadConfig({ DOMCAST_DATABASE_URL: ' postgres://ada:pw@db.internal:6432/domcast ' }).databaseUrl, 'postgres://ada:pw@db.internal:6432/domcast');
    assert.equal(loadConfig({ DOMCAST_DATABASE_URL: 'postgresql://db/recordings?sslmode=require' }).databaseUrl, 'postgresql://db/recordings?sslmode=require');
  });

  test('a DOMCAST_DATABASE_URL that is not a PostgreSQL URL is refused, its password never shown', () => {
    const cases: [string, RegExp][] = [
      ['not a url', /must be a URL like postgres:\/\/user:password@host:5432\/database/],
      ['mysql://ada:s3cret@db/x', /must start with postgres:\/\/ or postgresql:\/\/ \(not mysql:\/\/\)/],
      ['postgres://ada:s3cret@db', /must name a database/],
      ['postgres://ada:s3cret@db:notaport/x', /must be a URL like/],
    ];
    for (const [value, reason] of cases) {
      const message = configError(() => loadConfig({ DOMCAST_DATABASE_URL: value })).message;
      assert.match(message, /DOMCAST_DATABASE_URL=/);
      assert.match(message, reason);
      assert.doesNotMatch(message, /s3cret/, message);
    }
  });

  const CLUSTER = { DOMCAST_DATABASE_URL: 'postgres://db/domcast', VIEWER_TOKEN_SECRET: 'a-secret-every-node-shares-0123456789' };

  test('DOMCAST_REDIS_URL turns cluster mode on, with its prefix and worker id; unset, there is none', () => {
    assert.equal(loadConfig({}).cluster, null);
    const c = loadConfig({ ...CLUSTER, DOMCAST_REDIS_URL: ' redis://:pw@cache.internal:6380/2 ' }).cluster;
    assert.deepEqual({ ...c }, { redisUrl: 'redis://:pw@cache.internal:6380/2', prefix: 'domcast', workerId: undefined });
    const d = loadConfig({ ...CLUSTER, DOMCAST_REDIS_URL: 'rediss://cache', DOMCAST_CLUSTER_PREFIX: 'team-a', DOMCAST_WORKER_ID: 'worker-7' }).cluster;
    assert.deepEqual({ ...d }, { redisUrl: 'rediss://cache', prefix: 'team-a', workerId: 'worker-7' });
  });

  test('a DOMCAST_REDIS_URL that is not a Redis URL is refused, its password never shown', () => {
    const cases: [string, RegExp][] = [
      ['cache:6379', /must start with redis:\/\/ or rediss:\/\/ \(not cache:\/\/\)/],
      ['not a url', /must be a URL like redis:\/\/host:6379/],
      ['http://u:s3cret@cache', /must start with redis:\/\/ or rediss:\/\//],
      ['redis://u:s3cret@cache/queue', /the path must be a database number/],
    ];
    for (const [value, reason] of cases) {
      const message = configError(() => loadConfig({ ...CLUSTER, DOMCAST_REDIS_URL: value })).message;
      assert.match(message, /DOMCAST_REDIS_URL=/);
      assert.match(message, reason);
      assert.doesNotMatch(message, /s3cret/, message);
    }
    assert.match(configError(() => loadConfig({ ...CLUSTER, DOMCAST_REDIS_URL: 'redis://c', DOMCAST_CLUSTER_PREFIX: 'a b' })).message, /DOMCAST_CLUSTER_PREFIX="a b": must be 1 to 64 letters/);
  });

  test('cluster mode needs PostgreSQL and a shared VIEWER_TOKEN_SECRET, and keeps recordings: each missing one is named', () => {
    const message = configError(() => loadConfig({ DOMCAST_REDIS_URL: 'redis://cache', DOMCAST_RECORDINGS: 'false' })).message;
    assert.match(message, /DOMCAST_DATABASE_URL: required with DOMCAST_REDIS_URL/);
    assert.match(message, /VIEWER_TOKEN_SECRET: required with DOMCAST_REDIS_URL/);
    assert.match(message, /DOMCAST_RECORDINGS=false: cluster mode keeps every run/);
  });
});
