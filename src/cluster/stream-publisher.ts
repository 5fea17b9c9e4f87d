import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RrwebEventType } from '../protocol/index.js';
import type { Batch, SessionLog } from '../session/index.js';
import { streamKeys, withStreamCommands, type StreamCommands, type StreamKeys } from './stream-keys.js';

export interface PublisherOptions {
  /** Key prefix, shared by every node of the cluster. */
  prefix: string;
  /**
   * Characters of batches sent but not yet acknowledged. Past it (Redis down, or slower than the
   * page) nothing more is sent; once Redis answers again the stream is seeded afresh from the
   * log's checkpoint, which holds everything, so memory stays bounded and nothing is lost.
   */
  maxInFlightChars?: number;
  /**
   * The session's view (status, steps…; src/cluster/view.ts) as JSON, sent with every batch that
   * holds a custom event (the server's status and step events are custom events) and with seeds.
   */
  view?: () => string;
  /** Told about each time the stream had to start again, and why. */
  onResync?: (reason: string) => void;
}

/** How the server writes a custom event (src/session/prepare.ts, toEntry): `type` comes first. */
const CUSTOM_EVENT_START = `{"type":${RrwebEventType.Custom},`;
const DEFAULT_MAX_IN_FLIGHT_CHARS = 32 * 1024 * 1024;
const RESYNC_RETRY_MS = 250;

/**
 * Copies one session's log to its Redis stream, batch by batch, in log order, for the API nodes
 * to tail. The log (on the worker) stays the source of truth: when the stream is lost or refuses
 * a batch, it is seeded again from the log's checkpoint under a new epoch, and the tails rebuild.
 */
export class StreamPublisher {
  private readonly redis: Redis & StreamCommands;
  private readonly keys: StreamKeys;
  private epochValue = '';
  /** First seqs of the batches sent since the checkpoint's entry: the entry holding a new checkpoint's Meta is among them. */
  private entryFroms: number[] = [];
  private checkpointSeq = 0;
  private inFlightChars = 0;
  /** Set while the stream must start again; batches are not sent until it has. */
  private resync: Promise<void> | null = null;
  /** A seed is due: batches are not sent (the seed will hold them). */
  private pendingSeed = false;
  /** The last seed marker's sequence part (stream-scripts.ts, SEED_SCRIPT). */
  private seedStamp = 0;
  /** The last batch sent (settled either way): the end waits for it. */
  private lastSent: Promise<unknown> = Promise.resolve();
  /** The last seq Redis acknowledged in this epoch. */
  private ackedSeq = 0;
  private unsubscribe: (() => void) | null = null;
  private closed = false;
  private readonly maxInFlightChars: number;
  resyncs = 0;

  constructor(
    redis: Redis,
    readonly sessionId: string,
    private readonly log: SessionLog,
    private readonly options: PublisherOptions,
  ) {
    this.redis = withStreamCommands(redis);
    this.keys = streamKeys(options.prefix, sessionId);
    this.maxInFlightChars = options.maxInFlightChars ?? DEFAULT_MAX_IN_FLIGHT_CHARS;
  }

  get epoch(): string {
    return this.epochValue;
  }

  /** Seeds the stream with what the log holds and follows it from there. */
  async start(): Promise<void> {
    // Batches wait for the seed, which holds them (it is taken from the log when sent).
    this.pendingSeed = true;
    this.unsubscribe = this.log.subscribe((batch) => this.send(batch));
    // A queued run's stream (an API node wrote it empty, and viewers may have its epoch from their
    // hello already): the run goes on under that epoch, so that their `since` holds on any node.
    const [epoch, seq] = await this.redis.hmget(this.keys.meta, 'epoch', 'seq').catch(() => [null, null]);
    await this.seed(epoch !== null && seq === '0' ? epoch : undefined);
  }

  private send(batch: Batch): void {
    if (this.closed || this.pendingSeed) return;
    let chars = 0;
    for (const e of batch.events) chars += e.length;
    if (this.inFlightChars + chars > this.maxInFlightChars) {
      this.startResync('Redis is behind: more than the bound of characters in flight');
      return;
    }
    this.entryFroms.push(batch.from);
    let cp = 0;
    let cpid = 0;
    if (this.log.checkpointSeq !== this.checkpointSeq && this.log.checkpointSeq > 0) {
      cp = this.log.checkpointSeq;
      cpid = this.entryHolding(cp);
      this.checkpointSeq = cp;
      this.entryFroms = this.entryFroms.filter((from) => from >= cpid);
    }
    this.inFlightChars += chars;
    const epoch = this.epochValue;
    const view = this.options.view && batch.events.some((e) => e.startsWith(CUSTOM_EVENT_START)) ? this.options.view() : '';
    const last = batch.from + batch.events.length - 1;
    this.lastSent = this.redis
      .domcastLogAppend(this.keys.stream, this.keys.meta, String(batch.from), batch.events.length, batch.events.join('\n'), batch.timestamps.join(','), cp, cpid, epoch, view)
      .then(
        (reply) => {
          this.inFlightChars -= chars;
          if (reply[0] === 'ok' && epoch === this.epochValue) this.ackedSeq = Math.max(this.ackedSeq, last);
          if (reply[0] === 'ok' || reply[0] === 'ended' || epoch !== this.epochValue) return;
          this.startResync(reply[0] === 'gap' ? `the stream ended at seq ${reply[1]}, not ${batch.from - 1}` : 'the stream is gone');
        },
        (err: unknown) => {
          this.inFlightChars -= chars;
          if (epoch === this.epochValue) this.startResync(`writing to Redis failed: ${String(err)}`);
        },
      );
  }

  /** The first seq of the entry that holds `seq`: the latest batch sent that starts at or before it. */
  private entryHolding(seq: number): number {
    let best = seq;
    for (const from of this.entryFroms) if (from <= seq) best = from;
    return best;
  }

  /** The stream must start again: a seed is due, and is sent again until one succeeds with none due after it. */
  private startResync(reason: string): void {
    if (this.closed) return;
    if (!this.pendingSeed) {
      this.resyncs++;
      this.options.onResync?.(reason);
    }
    this.pendingSeed = true;
    this.resync ??= this.seedUntilDone().finally(() => {
      this.resync = null;
    });
  }

  private async seedUntilDone(): Promise<void> {
    while (this.pendingSeed && !this.closed) {
      try {
        await this.seed();
      } catch {
        this.pendingSeed = true;
        await new Promise((r) => setTimeout(r, RESYNC_RETRY_MS));
      }
    }
  }

  /**
   * Writes everything from the log's checkpoint as the stream's one entry under a new epoch. It is
   * taken from the log and sent at once, on the connection every batch goes by, so each batch the
   * log tells of afterwards reaches Redis after it; a batch skipped while a seed was pending is in
   * the next seed.
   */
  private seed(keepEpoch?: string): Promise<string> {
    const slice = this.log.fromCheckpoint();
    const epoch = keepEpoch ?? randomUUID();
    this.epochValue = epoch;
    this.checkpointSeq = this.log.checkpointSeq;
    // A released log (the run ended, the store has it) holds no events: the stream starts after them.
    const from = slice.events.length > 0 ? slice.from : this.log.lastSeq + 1;
    this.entryFroms = [from];
    this.pendingSeed = false;
    this.seedStamp = Math.max(Date.now(), this.seedStamp + 1);
    const view = this.options.view?.() ?? '';
    this.ackedSeq = 0;
    const last = from + slice.events.length - 1;
    return this.redis
      .domcastLogSeed(this.keys.stream, this.keys.meta, epoch, from, slice.events.length, slice.events.join('\n'), '', this.checkpointSeq || from, this.seedStamp, view)
      .then((reply) => {
        if (epoch === this.epochValue) this.ackedSeq = last;
        return reply;
      });
  }

  /**
   * Checks that the stream is still the one this publisher wrote (after Redis came back, it may be
   * gone, or an older snapshot of it), and starts it again if not.
   */
  async verify(): Promise<void> {
    if (this.closed || this.pendingSeed) return;
    const epoch = this.epochValue;
    const acked = this.ackedSeq;
    const [current, seq] = await this.redis.hmget(this.keys.meta, 'epoch', 'seq');
    if (epoch !== this.epochValue || this.pendingSeed) return;
    // Gone, or brought back from an older snapshot (same epoch, fewer events): start again either way.
    if (current !== epoch) this.startResync('the stream is gone (Redis restarted or the key was removed)');
    else if (Number(seq) < acked) this.startResync(`the stream holds up to seq ${seq}, not ${acked} (Redis came back from an older snapshot)`);
  }

  /** The run ended: the tails are told and the stream expires after `ttlMs` (its recording is stored by then). */
  async end(status: string, ttlMs: number): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    // Every batch sent is settled, and any seed a refusal among them started, before the end.
    await this.lastSent.catch(() => {});
    await this.resync;
    if (this.closed) return;
    const reply = await this.redis.domcastLogEnd(this.keys.stream, this.keys.meta, status, this.epochValue, ttlMs);
    if (reply === 'lost') {
      await this.seed();
      await this.redis.domcastLogEnd(this.keys.stream, this.keys.meta, status, this.epochValue, ttlMs);
    }
    this.closed = true;
  }

  /** Stops following the log (the process is going away); the stream stays as it is. */
  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }
}
