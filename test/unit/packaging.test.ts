import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { projectRoot } from '../../src/common/index.js';
import { loadConfig, SETTING_NAMES } from '../../src/server/index.js';

/**
 * The Dockerfile and compose.yaml are checked against the code, since no Docker engine runs here:
 * the commands they run exist, the settings they set are settings the server reads and that it
 * accepts together, the ports agree, and the cluster's URLs name the services that provide them.
 */
const read = (file: string) => readFileSync(join(projectRoot, file), 'utf8');
const dockerfile = read('Dockerfile');
const compose = parse(read('compose.yaml'), { merge: true }) as {
  services: Record<string, { command?: string[]; environment?: Record<string, string>; ports?: string[]; healthcheck?: { test: string[] }; image?: string; build?: string }>;
};
/** The commands the CLI dispatches (src/cli/main.ts). */
const commands = new Set([...read('src/cli/main.ts').matchAll(/command === '([a-z-]+)'\) return/g)].map((m) => m[1]!));
/** `${NAME:?…}` replaced by a value a person would give. */
const substitute = (env: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{(\w+):\?[^}]*\}/g, (_, name: string) => `${name.toLowerCase()}-0123456789abcdef0123456789abcdef`)]));

/** The Dockerfile's instructions, continuation lines joined. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
  .map((l) => l.trim());
const runtime = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));
const imageEnv = Object.fromEntries(
  runtime.filter((l) => l.startsWith('ENV ')).flatMap((l) => [...l.slice(4).matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);
const json = (prefix: string): string[] => JSON.parse(runtime.find((l) => l.startsWith(prefix))!.slice(prefix.length).replace(/^.*?(\[)/, '$1')) as string[];

describe('Dockerfile', () => {
  test('Debian with Chromium at the path the server is given, production dependencies only, not root', () => {
    assert.match(runtime[0]!, /^FROM node:20-bookworm/, 'Debian (bookworm), Node.js 20 as package.json wants');
    assert.ok(runtime.some((l) => /apt-get install .*\bchromium\b/.test(l)));
    assert.equal(imageEnv.CHROMIUM_PATH, '/usr/bin/chromium');
    assert.ok(runtime.some((l) => /npm ci --omit=dev\b/.test(l)));
    const user = runtime.find((l) => l.startsWith('USER '));
    assert.ok(user && !/\broot\b|\b0\b/.test(user), 'a USER that is not root');
  });

  test('its settings are settings the server reads, and valid together', () => {
    for (const name of Object.keys(imageEnv)) if (name !== 'NODE_ENV') assert.ok(SETTING_NAMES.includes(name), `${name} is a setting`);
    const config = loadConfig(imageEnv);
    assert.equal(config.host, '0.0.0.0', 'reachable from outside the container');
    assert.ok(runtime.includes(`EXPOSE ${config.port}`), `EXPOSE ${config.port}`);
  });

  test('it starts the built CLI, its health check is a command the CLI has, and what it copies exists and is not ignored', () => {
    const entry = json('ENTRYPOINT');
    assert.deepEqual(entry.slice(-2), ['node', 'dist/cli.js']);
    // dist/cli.js: the entry named `cli`, written to dist/ (its chunks beside it, in dist/cli-chunks/).
    assert.match(read('scripts/build.mjs'), /entryPoints: \{ cli: join\(root, 'src\/cli\/main\.ts'\) \}, outdir: dist\b/);
    const cmd = json('CMD');
    assert.ok(commands.has(cmd[0]!), `CMD ${cmd[0]}`);
    const health = json('HEALTHCHECK');
    assert.deepEqual(health.slice(0, 2), ['node', 'dist/cli.js']);
    assert.ok(commands.has(health[2]!), `health check command ${health[2]}`);
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter(Boolean);
    for (const line of instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      for (const source of line.split(/\s+/).slice(1, -1)) {
        assert.ok(existsSync(join(projectRoot, source)), `COPY ${source}: exists`);
        assert.ok(!ignored.includes(source), `COPY ${source}: not in .dockerignore`);
      }
    }
    assert.ok(ignored.includes('node_modules') && ignored.includes('dist'), 'the build context leaves out node_modules and dist');
  });
});

describe('compose.yaml', () => {
  const services = compose.services;
  const domcast = Object.entries(services).filter(([, s]) => s.build !== undefined);

  test('two API nodes and a worker of the image, with Redis and PostgreSQL', () => {
    assert.equal(domcast.filter(([, s]) => s.command?.[0] === 'serve').length, 2);
    assert.equal(domcast.filter(([, s]) => s.command?.[0] === 'worker').length, 1);
    for (const [name, s] of domcast) assert.ok(commands.has(s.command![0]!), `${name}: ${s.command![0]} is a command`);
    assert.ok(services.redis && services.postgres);
  });

  test('each node\'s settings are settings the server reads, valid together with the image\'s: cluster mode on', () => {
    assert.equal(domcast.length, 3);
    for (const [name, s] of domcast) {
      const env = { ...imageEnv, ...substitute(s.environment ?? {}) };
      for (const key of Object.keys(s.environment ?? {})) assert.ok(SETTING_NAMES.includes(key), `${name}: ${key} is a setting`);
      const config = loadConfig(env);
      assert.ok(config.cluster, `${name}: cluster mode`);
      const redis = new URL(config.cluster.redisUrl);
      assert.ok(services[redis.hostname], `${name}: DOMCAST_REDIS_URL names the service ${redis.hostname}`);
      assert.deepEqual(services[redis.hostname]!.healthcheck?.test, ['CMD', 'redis-cli', 'ping']);
      const pg = new URL(config.databaseUrl!);
      const postgres = services[pg.hostname];
      assert.ok(postgres, `${name}: DOMCAST_DATABASE_URL names the service ${pg.hostname}`);
      assert.equal(pg.username, postgres.environment?.POSTGRES_USER);
      assert.equal(decodeURIComponent(pg.password), postgres.environment?.POSTGRES_PASSWORD);
      assert.equal(pg.pathname.slice(1), postgres.environment?.POSTGRES_DB);
      for (const port of s.ports ?? []) assert.equal(Number(port.split(':').at(-1)), config.port, `${name}: ${port} maps to the port the server listens on`);
    }
  });

  test('API nodes are published on distinct host ports; the worker is checked by its heartbeat', () => {
    const published = domcast.flatMap(([, s]) => (s.ports ?? []).map((p) => p.split(':').slice(0, -1).join(':')));
    assert.equal(new Set(published).size, published.length);
    const [, worker] = domcast.find(([, s]) => s.command?.[0] === 'worker')!;
    assert.equal(worker.ports, undefined, 'a worker serves no HTTP');
    assert.deepEqual(worker.healthcheck?.test, ['CMD', 'node', 'dist/cli.js', 'health', '--worker']);
  });
});
