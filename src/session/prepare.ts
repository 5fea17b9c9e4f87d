import type { AssetRewriter, RewriteBudget } from '../assets/rewrite.js';
import { RrwebEventType, type FrameRemap, type WireEvent } from '../protocol/index.js';
import { remapFrameEvent } from './frame-remap.js';

/** An event ready for the log: its JSON text (what every consumer gets), its type and page timestamp. */
export interface LogEntry {
  json: string;
  type: number;
  timestamp: number;
}

/** What a page's batch may be. Every figure is checked on what the server would keep, not only on what arrived. */
export interface BatchLimits {
  /** The batch as it arrives, in UTF-16 units; longer ones are refused unread. */
  maxBatchChars: number;
  /** One event as the server writes it out (JSON.stringify can make a page's `1e20` 21 digits long). */
  maxEventChars: number;
  /** Events in one batch (our recorder sends at most 500). */
  maxBatchEvents: number;
  /** Nesting of arrays and objects in one event: deeper ones would overflow the stack when written out. */
  maxDepth: number;
}

export interface PreparedBatch {
  entries: LogEntry[];
  /** Entries that are not rrweb-shaped events (dropped one by one), or 1 for a batch refused whole. */
  rejected: number;
  /** Why the batch, or part of it, was refused, when that is worth a log line. */
  refused?: string;
}

/** Tags of Custom events only the server may write: a page that forges them would fake steps or a status. */
export const SERVER_TAG_PREFIX = 'domcast.';

function isServerCustom(e: WireEvent): boolean {
  if (e.type !== RrwebEventType.Custom) return false;
  const tag = (e.data as { tag?: unknown } | null | undefined)?.tag;
  return typeof tag === 'string' && tag.startsWith(SERVER_TAG_PREFIX);
}

function isEvent(e: unknown): e is WireEvent {
  return typeof e === 'object' && e !== null && typeof (e as WireEvent).type === 'number' && Number.isFinite((e as WireEvent).timestamp);
}

/**
 * How long JSON.stringify(value) would be, without building it and without recursion, or why it
 * may not be written: deeper than `maxDepth`, or longer than `budget`. Strings count as their
 * length plus quotes: escapes were paid for in the text the page sent; a lone surrogate, which
 * the page could send raw and JSON.stringify writes as six characters, counts six.
 */
export function measureJson(value: unknown, budget: number, maxDepth: number): number | 'deep' | 'long' {
  let total = 0;
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const top = stack.pop()!;
    const v = top.value;
    if (typeof v === 'string') total += v.isWellFormed() ? v.length + 2 : v.length * 6 + 2;
    else if (typeof v === 'number') total += Number.isFinite(v) ? String(v).length : 4;
    else if (typeof v === 'boolean') total += v ? 4 : 5;
    else if (v === null) total += 4;
    else if (typeof v === 'object') {
      if (top.depth >= maxDepth) return 'deep';
      if (Array.isArray(v)) {
        total += 2 + Math.max(0, v.length - 1);
        for (const item of v) stack.push({ value: item, depth: top.depth + 1 });
      } else {
        const keys = Object.keys(v);
        total += 2 + Math.max(0, keys.length - 1);
        for (const key of keys) {
          total += key.length + 3;
          stack.push({ value: (v as Record<string, unknown>)[key], depth: top.depth + 1 });
        }
      }
    }
    if (total > budget) return 'long';
  }
  return total;
}

/** Characters rewriting asset URLs may add to a batch besides as many as it has: enough for any page's URLs, not for a page made of them. */
export const REWRITE_SLACK_CHARS = 64 * 1024;

/**
 * Turns a page's batch (JSON text) into log entries. Entries that are not shaped like rrweb events,
 * and custom events with a tag only the server may write, are dropped one by one; one event that
 * may not be kept (too long once written out, or too deep to write out) refuses the whole batch,
 * and so does anything that throws: the log, the store and the live stream see all of the rest of
 * a batch or none of it. With `assets`, the events' asset URLs are rewritten (and its state
 * moves on) before anything is measured: the bounds hold on what is kept. Pure and synchronous
 * but for `assets`: it runs on the event loop for small batches and in the ingest worker for
 * large ones. With `frame`, the batch is a cross-origin frame's: its events are first moved into
 * the frame's range and its snapshots attached to its `<iframe>` (frame-remap.ts); what has no
 * place in the page's stream is left out, not counted as rejected.
 */
export function prepareBatch(json: string, limits: BatchLimits, assets?: AssetRewriter, frame?: FrameRemap): PreparedBatch {
  if (json.length > limits.maxBatchChars) return { entries: [], rejected: 1, refused: `batch of ${json.length} chars is over ${limits.maxBatchChars}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return { entries: [], rejected: 1 };
  }
  if (!Array.isArray(parsed)) return { entries: [], rejected: 1 };
  if (parsed.length > limits.maxBatchEvents) return { entries: [], rejected: 1, refused: `batch of ${parsed.length} entries is over ${limits.maxBatchEvents}` };
  const shaped = (parsed as unknown[]).filter(isEvent);
  const kept = shaped.filter((e) => !isServerCustom(e));
  const rejected = parsed.length - kept.length;
  const forged = shaped.length - kept.length;
  const events = frame ? kept.map((e) => remapFrameEvent(e, frame)).filter((e): e is WireEvent => e !== null) : kept;
  let added = 0;
  if (assets) {
    const budget: RewriteBudget = { chars: json.length + REWRITE_SLACK_CHARS };
    try {
      for (const event of events) assets.rewrite(event, budget);
    } catch (err) {
      return { entries: [], rejected: rejected + events.length, refused: `asset URLs could not be rewritten: ${err instanceof Error ? err.message : String(err)}` };
    }
    added = Math.max(0, json.length + REWRITE_SLACK_CHARS - budget.chars);
  }
  // Most batches cannot outgrow the bound: JSON.stringify writes at most six characters per one it was given,
  // or added by the rewrite (and the walk below measures strings short, so it says 'long' only when that could be true).
  const mayGrowPast = (json.length + added) * 6 > limits.maxEventChars;
  // Each level of nesting takes at least one character of the text: a short batch cannot nest too deep.
  const mayNestTooDeep = json.length > limits.maxDepth;
  const entries: LogEntry[] = [];
  for (const [i, event] of events.entries()) {
    const size = mayGrowPast || mayNestTooDeep ? measureJson(event, limits.maxEventChars, limits.maxDepth) : 0;
    if (size === 'deep') return { entries: [], rejected: rejected + events.length, refused: `event ${i} nests deeper than ${limits.maxDepth}` };
    if (size === 'long') return { entries: [], rejected: rejected + events.length, refused: `event ${i} is over ${limits.maxEventChars} chars once written out` };
    let text: string;
    try {
      text = JSON.stringify(event);
    } catch (err) {
      return { entries: [], rejected: rejected + events.length, refused: `event ${i} could not be written out: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (text.length > limits.maxEventChars) return { entries: [], rejected: rejected + events.length, refused: `event ${i} is over ${limits.maxEventChars} chars once written out` };
    entries.push({ json: text, type: event.type, timestamp: event.timestamp });
  }
  return forged > 0 ? { entries, rejected, refused: `${forged} page-sent custom event(s) with a reserved ${SERVER_TAG_PREFIX}* tag` } : { entries, rejected };
}

/** A server-side event (steps, status) as a log entry. */
export function toEntry(event: WireEvent): LogEntry {
  return { json: JSON.stringify(event), type: event.type, timestamp: event.timestamp };
}
