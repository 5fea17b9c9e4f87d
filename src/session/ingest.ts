import type { AssetRewriter } from '../assets/rewrite.js';
import type { FrameRemap } from '../protocol/index.js';
import { TokenBucket } from './budget.js';
import { ingestPool, type IngestPool } from './ingest-pool.js';
import { batchLimits, INGEST_REFILL_FRACTION, INLINE_MAX_CHARS, PREPARE_BUDGET_MS, PREPARE_REFILL_MS_PER_S, type RecordingLimits } from './limits.js';
import { prepareBatch, type BatchLimits, type PreparedBatch } from './prepare.js';

/** Where prepared batches go, in the order the page sent them. */
export interface IngestTarget {
  /** Appends the batch; returns why part of it was refused, if it was. */
  accept(batch: PreparedBatch): string | null;
  /** The log is past its bound: recording stops, the run goes on. */
  stop(reason: string): void;
  /** The page sends past its budgets: recording stops and the run must end (its traffic costs the server's loop and the store). */
  flood(reason: string): void;
  /** The run ended: batches are dropped unread. */
  isFinished(): boolean;
  /** Recording stopped: batches are dropped unread, but still count against the page's budget of characters. */
  isStopped(): boolean;
}

/**
 * Takes a page's batches into its session: small ones on the event loop at once, large ones in a
 * worker thread, always in the page's order. Each page has two budgets, characters sent and time
 * spent preparing them; past either, its recording stops (a clear status) and its run is ended: a
 * page's batches share the browser's one DevTools connection with every other run, so a page that
 * floods it slows them all, whatever the server does with what arrives. With `assets`, the events'
 * asset URLs are rewritten as they are prepared: its state (which nodes are style text…) moves on
 * batch by batch, here or through the worker, which is handed it with a batch and hands it back.
 */
export class PageIngest {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private readonly chars: TokenBucket;
  private readonly cost = new TokenBucket(PREPARE_BUDGET_MS, PREPARE_REFILL_MS_PER_S);
  private readonly batchLimits: BatchLimits;

  constructor(
    limits: RecordingLimits,
    private readonly target: IngestTarget,
    private readonly pool: IngestPool = ingestPool,
    private readonly assets?: AssetRewriter,
  ) {
    this.chars = new TokenBucket(limits.maxSessionChars, limits.maxSessionChars * INGEST_REFILL_FRACTION);
    this.batchLimits = batchLimits(limits);
  }

  /**
   * Resolves once the batch is in the log (or refused): why part of it was refused, or null.
   * `frame`: the batch is a cross-origin frame's of the page (same budgets, same order).
   */
  ingest(json: string, frame?: FrameRemap): Promise<string | null> {
    if (this.target.isFinished()) return Promise.resolve(null);
    // Charged before anything else, oversized batches and those of a stopped recording too: a page cannot make us read (or refuse) without limit.
    const flooded = this.charge(json.length);
    if (flooded) return Promise.resolve(flooded);
    if (this.target.isStopped()) return Promise.resolve(null);
    if (json.length > this.batchLimits.maxBatchChars) {
      return Promise.resolve(this.target.accept({ entries: [], rejected: 1, refused: `batch of ${json.length} chars is over ${this.batchLimits.maxBatchChars}` }));
    }
    if (this.queued === 0 && json.length <= INLINE_MAX_CHARS) return Promise.resolve(this.prepareHere(json, frame));
    this.queued++;
    const done = this.tail.then(async () => {
      if (this.target.isFinished() || this.target.isStopped()) return null;
      if (json.length <= INLINE_MAX_CHARS) return this.prepareHere(json, frame);
      const assets = this.assets;
      const prepared = await this.pool.prepare(json, this.batchLimits, assets && { sessionId: assets.sessionId, state: assets.state }, frame);
      if (assets && prepared.assets) assets.adopt(prepared.assets);
      return this.finish(prepared.batch, prepared.ms);
    });
    const settled = done.finally(() => this.queued--);
    this.tail = settled.catch(() => undefined);
    return settled;
  }

  /**
   * Batches of `chars` characters in all that never reached us (the DevTools relay dropped them as
   * over VISUAL_MAX_EVENT_MB): counted against the page's budget and refused, as if read.
   */
  dropped(count: number, chars: number): string | null {
    if (this.target.isFinished()) return null;
    const flooded = this.charge(chars);
    if (flooded) return flooded;
    if (this.target.isStopped()) return null;
    return this.target.accept({ entries: [], rejected: count, refused: `${count} batch(es) of ${chars} chars in all over ${this.batchLimits.maxBatchChars}, dropped before the server read them` });
  }

  /** Charges `chars` to the page's budget of characters; past it, the run is flooded and why is returned. */
  private charge(chars: number): string | null {
    if (this.chars.take(chars)) return null;
    const reason = `the page sent more than ${this.chars.capacity} chars at once or ${Math.round(this.chars.perSecond)} a second`;
    this.target.flood(reason);
    return reason;
  }

  private prepareHere(json: string, frame?: FrameRemap): string | null {
    const start = performance.now();
    const batch = prepareBatch(json, this.batchLimits, this.assets, frame);
    return this.finish(batch, performance.now() - start);
  }

  private finish(batch: PreparedBatch, ms: number): string | null {
    if (this.target.isFinished() || this.target.isStopped()) return null;
    const refused = this.target.accept(batch);
    if (!this.cost.charge(ms)) {
      const reason = `preparing the page's batches took more than ${PREPARE_BUDGET_MS} ms at once or ${PREPARE_REFILL_MS_PER_S} ms a second`;
      this.target.flood(reason);
      return reason;
    }
    return refused;
  }
}
