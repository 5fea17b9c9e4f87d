/**
 * Recordings-store figures: write throughput of the store alone, and bytes on disk per minute of
 * the demo workflow. (Latency with the store on vs off is measured by run.ts with its latency probe.)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, projectRoot } from '../src/common/index.js';
import { SqliteStore } from '../src/store/index.js';
import { execute, startStack, waitFor } from '../test/helpers/stack.js';

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

/** A mutation event shaped like the churn page's (~320 bytes). */
function syntheticEvent(i: number): string {
  return JSON.stringify({
    type: 3,
    timestamp: 1_760_000_000_000 + i,
    data: {
      source: 0,
      texts: [{ id: 40 + (i % 50), value: `row ${i} ${'x'.repeat(20)}` }],
      attributes: [{ id: 90 + (i % 20), attributes: { class: i % 2 ? 'on' : 'off', 'data-n': String(i) } }],
      removes: [],
      adds: [{ parentId: 12, nextId: null, node: { type: 2, tagName: 'li', attributes: { class: 'row' }, childNodes: [], id: 1000 + i } }],
    },
  });
}

export async function measureStoreWrites(events = 200_000, sessions = 10, batch = 50) {
  const dir = mkdtempSync(join(tmpdir(), 'domcast-bench-store-'));
  const store = new SqliteStore(dir, createLogger('silent'));
  try {
    const payload = Array.from({ length: batch }, (_, i) => syntheticEvent(i));
    const bytes = payload.reduce((n, e) => n + e.length, 0) * (events / batch);
    const started = process.hrtime.bigint();
    const next = new Array<number>(sessions).fill(1);
    for (let i = 0; i < events / batch; i++) {
      const s = i % sessions;
      store.append(`s${s}`, next[s]!, payload);
      next[s]! += batch;
      // Let the store's timer and gzip run as they would beside a live server.
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    await store.flush();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const onDisk = await store.sizeBytes();
    return {
      events,
      sessions,
      batch,
      seconds: round(seconds, 2),
      events_per_s: Math.round(events / seconds),
      json_mb: round(bytes / 1e6),
      on_disk_mb: round(onDisk / 1e6, 2),
      compression_ratio: round(bytes / onDisk),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes the demo workflow's recording takes on disk, per minute of run. */
export async function measureDiskPerMinute() {
  const stack = await startStack();
  try {
    const before = await stack.server.deps.store.sizeBytes();
    const workflow = JSON.parse(readFileSync(join(projectRoot, 'workflows', 'demo.json'), 'utf8')) as unknown;
    const { body } = await execute(stack.base, { workflow, inputs: { site_url: stack.site.url, username: 'ada', password: 'pw' }, visual_enabled: true });
    const session = stack.server.deps.registry.get(body.session_id)!;
    await waitFor('the demo run to end', () => session.finished, 90_000, 100);
    await stack.server.deps.store.flush();
    const bytes = (await stack.server.deps.store.sizeBytes()) - before;
    const minutes = (session.endedAt! - session.startedAt!) / 60_000;
    return {
      run_s: round(minutes * 60),
      events: session.log.totalEvents,
      event_json_kb: round(session.log.totalBytes / 1024),
      on_disk_kb: round(bytes / 1024),
      on_disk_kb_per_minute: round(bytes / 1024 / minutes),
    };
  } finally {
    await stack.close();
  }
}
