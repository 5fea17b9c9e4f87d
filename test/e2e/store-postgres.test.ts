import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { projectRoot } from '../../src/common/index.js';
import type { WireEvent } from '../../src/protocol/index.js';
import { WsViewer, execute, startStack, waitFor } from '../helpers/stack.js';
import { createTestDatabase, query, type TestDatabase } from '../helpers/postgres.js';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase('e2e_store');
});
after(() => database.drop());

/** The built CLI (dist/cli.js), as a user runs it, in a folder of its own so that no SQLite store is near. */
function domcast(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), ...args], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-pg-cli-')), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** Two servers, one after the other, on one database and folders of their own: links signed alike. */
const env = () => ({ BROWSER_ISOLATION: 'run', DOMCAST_DATABASE_URL: database.url, VIEWER_TOKEN_SECRET: 'pg-e2e-viewer-token-secret-0123456789abcdef' });

test('with DOMCAST_DATABASE_URL a run is kept in PostgreSQL: another server on the database lists it, exports it and serves its screenshot', async () => {
  const first = await startStack(env());
  let id: string;
  let streamed: string[];
  try {
    assert.equal(first.server.deps.store.location, database.url.replace('postgres://postgres@', ''));
    const { body } = await execute(first.base, {
      workflow: {
        name: 'pg tour',
        steps: [
          { type: 'navigation', url: `${first.site.url}/index.html` },
          { type: 'screenshot' },
          { type: 'input', cssSelector: '#username', value: 'ada' },
          { type: 'wait', ms: 300 },
        ],
      },
      inputs: {},
      visual_enabled: true,
    });
    id = body.session_id;
    const viewer = await WsViewer.open(body.visual_stream_url!);
    await viewer.closed;
    streamed = viewer.received.map((r) => r.json);
    assert.ok(streamed.length > 2, `${streamed.length} events`);
    const session = first.server.deps.registry.get(id)!;
    await waitFor('the run to end', () => session.finished);
    assert.equal(session.status, 'succeeded', session.error ?? '');
    assert.equal(existsSync(join(first.server.deps.config.dataDir, 'domcast.db')), false, 'no SQLite store was made beside it');
  } finally {
    await first.close();
  }
  const [row] = await query<{ status: string; chunks: number; assets: number }>(
    database.url,
    `SELECT status, (SELECT count(*)::int FROM chunks WHERE session_id = $1) AS chunks, (SELECT count(*)::int FROM session_assets WHERE session_id = $1) AS assets
      FROM sessions WHERE id = $1`,
    [id],
  );
  assert.equal(row?.status, 'succeeded');
  assert.ok(row.chunks > 0, 'its events are in the chunks table');
  assert.ok(row.assets > 0, 'the assets its browser captured are in PostgreSQL too');
  const exported = await domcast(['export', id], { DOMCAST_DATABASE_URL: database.url });
  assert.equal(exported.code, 0, exported.stderr);
  assert.equal((JSON.parse(exported.stdout) as unknown[]).length, streamed.length, 'domcast export reads it from PostgreSQL');

  const second = await startStack(env());
  try {
    const list = (await (await fetch(`${second.base}/workflows/sessions`)).json()) as { sessions: { session_id: string; status: string }[] };
    assert.deepEqual(list.sessions.map((s) => [s.session_id, s.status]), [[id, 'succeeded']]);
    const record = (await (await fetch(`${second.base}/workflows/${id}`)).json()) as { status: string; steps: unknown[]; events: { total: number } };
    assert.equal(record.status, 'succeeded');
    assert.equal(record.steps.length, 4);
    assert.equal(record.events.total, streamed.length);
    const res = await fetch(`${second.base}/workflows/${id}/events`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-encoding'), 'gzip');
    const events = (await res.json()) as WireEvent[];
    assert.deepEqual(events.map((e) => JSON.stringify(e)), streamed, 'the export is exactly what the viewer was sent');
    const shot = await fetch(`${second.base}/workflows/${id}/steps/1/screenshot`);
    assert.equal(shot.status, 200);
    assert.equal(shot.headers.get('content-type'), 'image/png');
    assert.deepEqual([...new Uint8Array(await shot.arrayBuffer()).slice(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG');
    assert.equal((await fetch(`${second.base}/workflows/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${second.base}/workflows/${id}/events`)).status, 404);
  } finally {
    await second.close();
  }
  const left = await query<{ n: number }>(
    database.url,
    'SELECT ((SELECT count(*) FROM sessions) + (SELECT count(*) FROM chunks) + (SELECT count(*) FROM screenshots) + (SELECT count(*) FROM session_assets) + (SELECT count(*) FROM assets))::int AS n',
  );
  assert.equal(left[0]?.n, 0, 'deleting it removed everything it had in the database');
});

test('a server whose database cannot be reached does not start, and says where it tried without the password', async () => {
  await assert.rejects(startStack({ DOMCAST_DATABASE_URL: 'postgres://ada:s3cret@127.0.0.1:1/recordings' }), (err: unknown) => {
    assert.match(String(err), /cannot reach PostgreSQL at 127\.0\.0\.1:1\/recordings \(DOMCAST_DATABASE_URL\)/);
    assert.doesNotMatch(String(err), /s3cret/);
    return true;
  });
  const served = await domcast(['serve'], { DOMCAST_DATABASE_URL: 'postgres://ada:s3cret@127.0.0.1:1/recordings' });
  assert.equal(served.code, 1);
  assert.match(served.stderr, /^domcast: cannot reach PostgreSQL at 127\.0\.0\.1:1\/recordings \(DOMCAST_DATABASE_URL\): [^\n]+\n$/, 'one line, no stack trace');
  assert.doesNotMatch(served.stdout + served.stderr, /s3cret/);
});
