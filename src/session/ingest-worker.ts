/**
 * The ingest worker (bundled to dist/ingest-worker.js): prepares large page batches off the event
 * loop. A page decides what it sends; parsing 16 MiB of `1e20` takes seconds, and it must not take
 * them from every other session's viewers.
 */
import { parentPort } from 'node:worker_threads';
import { prepareBatch, type BatchLimits, type PreparedBatch } from './prepare.js';

export interface IngestRequest {
  id: number;
  json: string;
  limits: BatchLimits;
}

export interface IngestReply {
  id: number;
  result: PreparedBatch;
  /** Time the worker spent on it: charged to the page's budget (time waiting for the worker is not). */
  ms: number;
}

parentPort?.on('message', (req: IngestRequest) => {
  const start = performance.now();
  let result: PreparedBatch;
  try {
    result = prepareBatch(req.json, req.limits);
  } catch (err) {
    result = { entries: [], rejected: 1, refused: `batch could not be prepared: ${err instanceof Error ? err.message : String(err)}` };
  }
  const reply: IngestReply = { id: req.id, result, ms: performance.now() - start };
  parentPort?.postMessage(reply);
});
