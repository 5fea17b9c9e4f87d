import type { BatchLimits } from './prepare.js';

/** How much of a page's recording the server holds, and how fast a page may hand it over. */
export interface RecordingLimits {
  /** Events past the checkpoint before a fresh one is asked for (VISUAL_EVENT_BUFFER_SIZE). */
  bufferEvents: number;
  /**
   * A session's log in memory, in characters of JSON (VISUAL_SESSION_MAX_MB): past half of it after
   * the checkpoint a fresh checkpoint is asked for; a batch that would take the log past all of it
   * stops the recording.
   */
  maxSessionChars: number;
  /** One event, written out (VISUAL_MAX_EVENT_MB); also the largest batch text taken from a page. */
  maxEventChars: number;
}

export const MIB = 1024 * 1024;

export const DEFAULT_LIMITS: RecordingLimits = { bufferEvents: 1000, maxSessionChars: 64 * MIB, maxEventChars: 16 * MIB };

/** A page that never answers a checkpoint request stops being recorded at this many events in memory. */
export const HARD_EVENTS_FACTOR = 10;

/**
 * A page may hand over its whole in-memory bound at once, then a thirty-second of it per second
 * (2 MiB/s with the defaults): more than a real page sends once loaded (a first snapshot with
 * inlined images is a few MiB, then KiB a second), far less than a page calling the binding in a
 * loop. What a page sends crosses the browser's one DevTools connection, shared by every run.
 */
export const INGEST_REFILL_FRACTION = 1 / 32;

/**
 * Time spent preparing a page's batches (parse, size, write out), on the event loop or in a
 * worker: up to 3 s at once, 0.3 s per second after that. `1e20` parses at ~4 MB/s here, ordinary
 * events at ~100 MB/s: an ordinary page uses a few percent of this.
 */
export const PREPARE_BUDGET_MS = 3000;
export const PREPARE_REFILL_MS_PER_S = 300;

/** Batches up to this many characters are prepared on the event loop (at most a few ms, whatever they hold); larger ones in a worker. */
export const INLINE_MAX_CHARS = 16 * 1024;

/** Nesting deeper than rrweb needs (a DOM 512 deep, the HTML parser's limit, is ~1,030) and shallower than the stack allows. */
export const MAX_EVENT_DEPTH = 2000;

/** Our recorder sends at most 500 events a batch. */
export const MAX_BATCH_EVENTS = 5000;

export function batchLimits(limits: RecordingLimits): BatchLimits {
  return { maxBatchChars: limits.maxEventChars, maxEventChars: limits.maxEventChars, maxBatchEvents: MAX_BATCH_EVENTS, maxDepth: MAX_EVENT_DEPTH };
}
