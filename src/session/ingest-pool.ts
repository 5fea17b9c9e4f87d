import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { distDir } from '../common/index.js';
import type { RewriteState } from '../assets/rewrite.js';
import type { FrameRemap } from '../protocol/index.js';
import type { AssetJob, IngestReply, IngestRequest } from './ingest-worker.js';
import type { BatchLimits, PreparedBatch } from './prepare.js';

/** Heap of one ingest worker: a batch that needs more is refused (the worker is replaced), the server is not touched. */
const WORKER_HEAP_MB = 512;

/** A batch prepared by a worker, and the worker's time on it. */
export interface Prepared {
  batch: PreparedBatch;
  ms: number;
  /** The asset rewrite's state after the batch; absent when the job had none or the worker died on it. */
  assets?: RewriteState;
}

interface Pending {
  resolve: (result: Prepared) => void;
}

/** One worker thread, started when first needed and replaced when it dies (a batch that ran it out of memory). */
class IngestWorker {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly script: string) {}

  get load(): number {
    return this.pending.size;
  }

  prepare(json: string, limits: BatchLimits, assets?: AssetJob, frame?: FrameRemap): Promise<Prepared> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      if (this.pending.size === 0) worker.ref(); // a batch in the works keeps the process up; an idle worker does not
      this.pending.set(id, { resolve });
      const req: IngestRequest = { id, json, limits, ...(assets ? { assets } : {}), ...(frame ? { frame } : {}) };
      worker.postMessage(req);
    });
  }

  private start(): Worker {
    const worker = new Worker(this.script, { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    worker.on('message', (reply: IngestReply) => {
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      p?.resolve({ batch: reply.result, ms: reply.ms, ...(reply.assets ? { assets: reply.assets } : {}) });
    });
    const fail = (why: string): void => {
      if (this.worker !== worker) return;
      this.worker = null;
      const refused = `batch could not be prepared: ${why}`;
      for (const p of this.pending.values()) p.resolve({ batch: { entries: [], rejected: 1, refused }, ms: 0 });
      this.pending.clear();
    };
    worker.on('error', (err) => fail(err.message));
    worker.on('exit', (code) => fail(`the ingest worker exited (${code})`));
    // After the listeners, which would otherwise keep it referenced.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    await w?.terminate();
  }
}

/**
 * Worker threads that prepare large page batches. A session's batches are prepared one at a time
 * (its order is kept by the session), so one page keeps at most one worker busy; the least loaded
 * worker takes the next batch.
 */
export class IngestPool {
  private readonly workers: IngestWorker[];

  /** `script`: the bundled worker (tests may bundle their own). */
  constructor(size = 2, script = join(distDir, 'ingest-worker.js')) {
    this.workers = Array.from({ length: size }, () => new IngestWorker(script));
  }

  prepare(json: string, limits: BatchLimits, assets?: AssetJob, frame?: FrameRemap): Promise<Prepared> {
    let best = this.workers[0]!;
    for (const w of this.workers) if (w.load < best.load) best = w;
    return best.prepare(json, limits, assets, frame);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

/** The process's pool: workers are unref'd, so an idle pool keeps nothing alive. */
export const ingestPool = new IngestPool();
