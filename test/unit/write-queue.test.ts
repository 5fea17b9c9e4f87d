import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/common/index.js';
import type { StoredSession } from '../../src/store/index.js';
import { WriteQueue, type WriteBatch } from '../../src/store/write-queue.js';

function meta(id: string, status: string): StoredSession {
  return { id, workflow: 'w', inputs: {}, status, error: null, visual: true, createdAt: 1, startedAt: null, endedAt: null, steps: [], outputs: {}, eventCount: 0, byteCount: 0 };
}

/** A database that fails its next `failures` writes, and keeps what it was given once it works. */
function flakyDatabase(failures: number) {
  const written: WriteBatch[] = [];
  return {
    written,
    write(batch: WriteBatch): Promise<void> {
      if (failures-- > 0) return Promise.reject(new Error('connection refused'));
      written.push(batch);
      return Promise.resolve();
    },
  };
}

const event = (t: number) => `{"type":3,"timestamp":${t}}`;

describe('WriteQueue', () => {
  test('a batch whose write failed is written with the next one, older first, nothing lost or written twice', async () => {
    const db = flakyDatabase(2);
    const queue = new WriteQueue((b) => db.write(b), createLogger('silent'));
    queue.saveSession(meta('s', 'running'));
    queue.append('s', 1, [event(1), event(2)]);
    await queue.flush();
    queue.append('s', 3, [event(3)]);
    queue.saveScreenshot('s', 0, Buffer.from('png'));
    await queue.flush();
    assert.equal(db.written.length, 0);
    assert.equal(queue.eventsWritten, 0);
    queue.saveSession(meta('s', 'succeeded'));
    await queue.flush();
    assert.equal(db.written.length, 1, 'one write holds everything that waited');
    const [batch] = db.written;
    assert.deepEqual(batch!.sessions.map((s) => s.status), ['running', 'succeeded'], 'the newest record is written last');
    assert.deepEqual(batch!.chunks.map((c) => [c.firstSeq, c.lastSeq, gunzipSync(c.data).toString()]), [
      [1, 2, `[${event(1)},${event(2)}]`],
      [3, 3, `[${event(3)}]`],
    ]);
    assert.equal(batch!.screenshots.length, 1);
    assert.equal(queue.eventsWritten, 3);
    await queue.flush();
    assert.equal(db.written.length, 1, 'nothing is left to write');
  });

  test('while writes keep failing, what waits stays within the bound: the oldest events go first, and it is said', async () => {
    const db = flakyDatabase(6);
    const lines: string[] = [];
    const log = createLogger('error');
    log.error = ((obj: unknown, msg?: string) => void lines.push(`${msg ?? ''} ${JSON.stringify(obj)}`)) as typeof log.error;
    // Random bytes in base64 compress little: each chunk is about 3 KiB gzipped.
    const bulky = (n: number) => JSON.stringify({ type: 3, timestamp: n, blob: randomBytes(3000).toString('base64') });
    const queue = new WriteQueue((b) => db.write(b), log, { maxPendingBytes: 10 * 1024 });
    for (let seq = 1; seq <= 6; seq++) {
      queue.append('s', seq, [bulky(seq)]);
      await queue.flush();
    }
    assert.ok(lines.some((l) => l.includes('dropped the oldest of what waits to be written') && /"droppedEvents":[1-9]/.test(l)), lines.join('\n'));
    await queue.flush();
    const [kept] = db.written;
    assert.ok(kept!.chunks.reduce((n, c) => n + c.data.length, 0) <= 10 * 1024, 'at most the bound was kept');
    const seqs = kept!.chunks.map((c) => c.firstSeq);
    assert.ok(seqs.length >= 1 && seqs[0]! > 1, `the oldest went: ${seqs.join(', ')}`);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => 7 - seqs.length + i), 'the newest stayed, in order');
    assert.equal(queue.eventsWritten, seqs.length);
  });
});
