import type { WebSocket } from 'ws';
import type { Duplex } from 'node:stream';
import type { Batch, Session, Slice } from '../session/index.js';
import { eventsFrames, resetFrames, statusFrame } from './frames.js';
import { sendShared, shareOneWindow, startOver, unsentBytes } from './shared-deflate.js';

/**
 * Fan-out: one Channel per watched session. Each batch the session's log appends is framed once and
 * the same bytes go to every viewer that is caught up; a viewer past its byte bound is marked
 * lagging and skipped until it drains (the hub's sweep then sends it a reset). Admission,
 * liveness and the hub-wide bounds are the hub's (hub.ts).
 */

/** What a channel asks of its hub. */
export interface ChannelHost {
  /** The per-viewer bound while all viewers together hold `total` unsent bytes. */
  boundFor(total: number): number;
  /** Unsent bytes of every other channel's viewers. */
  bufferedBesides(channel: Channel): number;
  /** `end` and a close, once the session is over and all of it was sent. */
  sendEnd(ws: WebSocket, session: Session): void;
  channelFailed(channel: Channel, err: unknown): void;
  channelClosed(channel: Channel): void;
}

export interface Viewer {
  ws: WebSocket;
  /** The TCP socket under `ws`: ended at once when the viewer is refused. */
  socket: Duplex;
  /** The session it asked for (cut to 64 characters), for the log. */
  sessionId: string;
  /** Set while the socket is backed up; such a viewer gets a `reset` once it drains. */
  lagging: boolean;
  alive: boolean;
  /** The seq this viewer needs next: events before it reached it already (in its reset, resume slice or a frame). */
  next: number;
}

/**
 * With this many viewers or more, a channel sends at most one frame every COALESCE_MS: a batch that
 * finds the channel quiet for that long goes out at once; batches that follow sooner wait together
 * until COALESCE_MS after the last frame and go out as one. A crowd gets fewer, larger messages (each
 * costs every viewer a wake-up and the server a write per socket) for at most COALESCE_MS of added
 * delay, and none on a quiet page. Smaller audiences get every batch at once.
 */
const COALESCE_MIN_VIEWERS = 250;
const COALESCE_MS = 40;

/** All viewers of one session; each batch is framed once and the same bytes go to every viewer. */
export class Channel {
  readonly viewers = new Set<Viewer>();
  private readonly unsubscribe: () => void;
  private readonly onStatus = (): void => {
    try {
      this.status();
    } catch (err) {
      this.hub.channelFailed(this, err);
    }
  };

  constructor(
    readonly session: Session,
    private readonly hub: ChannelHost,
  ) {
    this.unsubscribe = session.log.subscribe((batch) => this.onBatch(batch));
    session.on('status', this.onStatus);
  }

  /** Unsent bytes of this channel's viewers, as of its last broadcast. */
  buffered = 0;
  /** Events appended to the log but not yet sent (coalescing for a crowd); contiguous seqs from `from`. */
  private pending: { from: number; events: string[]; timestamps: number[] } | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  /** When the last events frame went out (performance.now()). */
  private lastBroadcast = -Infinity;

  private onBatch(batch: Batch): void {
    if (this.pending) {
      batch.heldBack = true;
      this.pending.events.push(...batch.events);
      this.pending.timestamps.push(...batch.timestamps);
      return;
    }
    const quietFor = performance.now() - this.lastBroadcast;
    if (this.viewers.size < COALESCE_MIN_VIEWERS || quietFor >= COALESCE_MS) return this.broadcast(batch);
    batch.heldBack = true;
    this.pending = { from: batch.from, events: [...batch.events], timestamps: [...batch.timestamps] };
    this.flushTimer = setTimeout(() => this.flush(), COALESCE_MS - quietFor);
  }

  /** Sends what is pending now (before a status, an end, or when the coalescing window closes). */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const pending = this.pending;
    this.pending = null;
    if (pending) {
      this.broadcast(pending);
      this.session.delivered(pending.timestamps);
    }
  }

  private broadcast(slice: Slice): void {
    this.lastBroadcast = performance.now();
    const frames = eventsFrames('events', slice);
    const to = slice.from + slice.events.length - 1;
    let sum = 0;
    for (const v of this.viewers) sum += unsentBytes(v.ws);
    const bound = this.hub.boundFor(this.hub.bufferedBesides(this) + sum);
    const recipients: Viewer[] = [];
    for (const v of this.viewers) {
      if (v.lagging) continue;
      if (unsentBytes(v.ws) > bound) {
        v.lagging = true;
        continue;
      }
      if (v.next > to) continue; // joined after these events were logged: its reset had them
      recipients.push(v);
    }
    // Viewers whose inflaters hold different windows (one just joined, or got a reset) get this
    // batch compressed alone, and share one window from then on (shared-deflate.ts).
    if (frames[0] && !shareOneWindow(recipients.filter((v) => v.next === slice.from).map((v) => v.ws))) startOver(frames[0]);
    for (const v of recipients) {
      // Joined halfway through a coalesced slice: only the rest, in frames of its own.
      const own = v.next > slice.from ? eventsFrames('events', { from: v.next, events: slice.events.slice(v.next - slice.from) }) : frames;
      for (const frame of own) {
        sendShared(v.ws, frame);
        sum += frame.length;
      }
      v.next = to + 1;
    }
    this.buffered = sum;
  }

  private status(): void {
    this.flush();
    const frame = statusFrame(this.session);
    for (const v of this.viewers) sendShared(v.ws, frame);
    if (!this.session.streaming) for (const v of [...this.viewers]) this.end(v);
  }

  /** Everything is delivered (sends are queued in order): say so and close (normally, unless the server is going). */
  end(v: Viewer): void {
    if (v.lagging) this.reset(v);
    this.hub.sendEnd(v.ws, this.session);
    this.remove(v);
  }

  reset(v: Viewer): void {
    v.lagging = false;
    for (const frame of resetFrames(this.session.log)) sendShared(v.ws, frame);
    v.next = this.session.log.lastSeq + 1;
  }

  remove(v: Viewer): void {
    // Called from end() and again from the socket's close event: only the first call counts.
    if (!this.viewers.delete(v)) return;
    if (this.viewers.size === 0) this.close();
  }

  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.pending = null;
    this.unsubscribe();
    this.session.off('status', this.onStatus);
    this.hub.channelClosed(this);
  }
}
