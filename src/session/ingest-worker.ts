/**
 * The ingest worker (bundled to dist/ingest-worker.js): prepares large page batches off the event
 * loop. A page decides what it sends; parsing 16 MiB of `1e20` takes seconds, and it must not take
 * them from every other session's viewers.
 */
import { parentPort } from 'node:worker_threads';
import { AssetRewriter, type RewriteState } from '../assets/rewrite.js';
import type { FrameRemap } from '../protocol/index.js';
import { prepareBatch, type BatchLimits, type PreparedBatch } from './prepare.js';

/** A session's asset rewrite as its previous batch left it: the worker goes on from there and hands the state back. */
export interface AssetJob {
  sessionId: string;
  state: RewriteState;
}

export interface IngestRequest {
  id: number;
  json: string;
  limits: BatchLimits;
  assets?: AssetJob;
  /** The batch is a cross-origin frame's (prepare.ts). */
  frame?: FrameRemap;
}

export interface IngestReply {
  id: number;
  result: PreparedBatch;
  /** Time the worker spent on it: charged to the page's budget (time waiting for the worker is not). */
  ms: number;
  /** The rewrite's state after the batch, when the request had one. */
  assets?: RewriteState;
}

/** One request, start to reply (exported for tests: in the worker it runs on each message). */
export function handleRequest(req: IngestRequest): IngestReply {
  const start = performance.now();
  const rewriter = req.assets ? new AssetRewriter(req.assets.sessionId, req.assets.state) : undefined;
  let result: PreparedBatch;
  try {
    result = prepareBatch(req.json, req.limits, rewriter, req.frame);
  } catch (err) {
    result = { entries: [], rejected: 1, refused: `batch could not be prepared: ${err instanceof Error ? err.message : String(err)}` };
  }
  return { id: req.id, result, ms: performance.now() - start, ...(rewriter ? { assets: rewriter.state } : {}) };
}

parentPort?.on('message', (req: IngestRequest) => {
  parentPort?.postMessage(handleRequest(req));
});
