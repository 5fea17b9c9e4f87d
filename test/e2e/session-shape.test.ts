import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WsViewer, execute, startStack, waitFor } from '../helpers/stack.js';

type Json = Record<string, unknown>;

/** Fresh on every call: a new viewer token each time. */
const LINKS = ['viewer_url', 'visual_stream_url', 'viewer_token_expires_at'];

/** Every key path of a JSON value (`failure.reason`, `steps[1].state`, …), to compare shapes. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => keyPaths(v, `${prefix}[${i}]`));
  if (value === null || typeof value !== 'object') return [prefix];
  return Object.entries(value as Json).flatMap(([k, v]) => [`${prefix}.${k}`, ...keyPaths(v, `${prefix}.${k}`)]);
}

const withoutLinks = (body: Json): Json => Object.fromEntries(Object.entries(body).filter(([k]) => !LINKS.includes(k)));

async function status(base: string, id: string): Promise<Json> {
  const res = await fetch(`${base}/workflows/${id}`);
  assert.equal(res.status, 200);
  return (await res.json()) as Json;
}

test('GET /workflows/{id} answers in one shape, with the same values, live, ended, and read from the store after a restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'domcast-shape-'));
  const first = await startStack({ DOMCAST_DATA_DIR: dataDir });
  let id: string;
  let ended: Json;
  let running: Json;
  try {
    const { body } = await execute(first.base, {
      workflow: {
        name: 'shape',
        steps: [
          { type: 'navigation', url: `${first.site.url}/` },
          { type: 'wait', ms: 1500 },
          { type: 'extract_page_content', output: 'page' },
          { type: 'click', cssSelector: '#no-such-button', timeoutMs: 500, description: 'a button that is not there' },
        ],
      },
      inputs: {},
      visual_enabled: true,
    });
    id = body.session_id;
    const viewer = await WsViewer.open(body.visual_stream_url!);
    running = await waitFor('the wait step', async () => {
      const s = await status(first.base, id);
      return s.current_step === 1 ? s : null;
    });
    await viewer.closed;
    // Once the store serves the recording, nothing of the run is left only in memory.
    ended = await waitFor('the run to end and its log to leave memory', async () => {
      const s = await status(first.base, id);
      return s.status === 'failed' && (s.events as { retained: number }).retained === 0 ? s : null;
    }, 30_000, 200);
  } finally {
    await first.close();
  }

  const second = await startStack({ DOMCAST_DATA_DIR: dataDir });
  try {
    const restored = await status(second.base, id);
    assert.deepEqual(keyPaths(restored).sort(), keyPaths(ended).sort(), 'the same keys, nested ones too');
    assert.deepEqual(Object.keys(running).sort(), Object.keys(ended).sort(), 'a running run has the same top-level keys');
    assert.deepEqual(withoutLinks(restored), withoutLinks(ended), 'the same values');
    for (const k of LINKS) assert.equal(typeof restored[k], 'string', k);

    // What the issue found missing after a restart is there, and says what happened.
    assert.equal(restored.status, 'failed');
    assert.equal(restored.current_step, null);
    assert.equal(running.current_step, 1);
    const failure = restored.failure as Json;
    assert.equal(failure.step, 3);
    assert.equal(failure.type, 'click');
    assert.equal(failure.selector, '#no-such-button');
    assert.match(String(failure.reason), /no-such-button|timeout|Timeout/);
    assert.equal(failure.screenshot_url, `/workflows/${id}/steps/3/screenshot`);
    const latency = restored.latency_ms as { average: number | null; p95: number | null };
    assert.equal(typeof latency.average, 'number', 'a viewer watched: the latency was measured and kept');
    assert.equal(typeof (restored.outputs as Json).page, 'string');

    // The sessions list shows each run in that same shape.
    const list = (await (await fetch(`${second.base}/workflows/sessions`)).json()) as { sessions: Json[] };
    assert.deepEqual(list.sessions, [withoutLinks(restored)]);
  } finally {
    await second.close();
  }
});
