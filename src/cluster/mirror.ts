import type { Logger } from '../common/index.js';
import { TERMINAL_STATUSES, type SessionStatus } from '../protocol/index.js';
import { Session, type SessionRegistry, type StreamMetrics } from '../session/index.js';
import type { StreamTail, TailHandler } from './stream-tail.js';
import { applyView, parseView } from './view.js';

/** A copy no viewer has watched for this long is dropped (its stream is no longer followed). */
export const IDLE_MS = 30_000;

export interface MirrorOptions {
  tail: StreamTail;
  registry: SessionRegistry;
  metrics: StreamMetrics;
  /** Viewers of a session on this node (the hub's count): a copy nobody watched for IDLE_MS is dropped. */
  viewers: (sessionId: string) => number;
  /** A copy started over (its stream has a new epoch): its viewers must reconnect (they get a reset from the new one). */
  restarted: (sessionId: string, reason: string) => void;
  log: Logger;
}

/**
 * An API node's copies of sessions that run on workers (cluster mode): a viewer asks for one, the
 * node follows its Redis stream and holds a `Session` whose log mirrors the worker's, seq for seq
 * and checkpoint for checkpoint, so the hub serves it as it serves a session of its own (hello,
 * reset, resume, fan-out). Hello carries the stream's epoch: a viewer resumes on any node.
 */
export class SessionMirrors {
  private readonly pending = new Map<string, Promise<boolean>>();
  /** The copies this node follows, and since when none of their viewers is left (null: watched). */
  private readonly copies = new Map<string, { session: Session; idleSince: number | null }>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: MirrorOptions) {
    this.timer = setInterval(() => this.dropIdle(), Math.min(5000, IDLE_MS));
    this.timer.unref();
  }

  get following(): number {
    return this.copies.size;
  }

  /** Stops following copies no viewer has watched for IDLE_MS; a viewer who comes later makes a new one. */
  dropIdle(now = Date.now()): void {
    for (const [id, copy] of this.copies) {
      if (this.options.viewers(id) > 0) copy.idleSince = null;
      else if (copy.idleSince === null) copy.idleSince = now;
      else if (now - copy.idleSince >= IDLE_MS) {
        this.copies.delete(id);
        this.options.tail.unwatch(id);
        this.options.registry.forget(id, copy.session);
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Makes sure this node holds the session, its own or a copy; false when no node runs it and its stream is gone. */
  ensure(sessionId: string): Promise<boolean> {
    if (this.options.registry.get(sessionId)) return Promise.resolve(true);
    let pending = this.pending.get(sessionId);
    if (!pending) {
      pending = this.follow(sessionId).finally(() => this.pending.delete(sessionId));
      this.pending.set(sessionId, pending);
    }
    return pending;
  }

  private follow(sessionId: string): Promise<boolean> {
    let current: Session | null = null;
    const handler: TailHandler = {
      reset: (state) => {
        const view = state.view ? parseView(state.view) : null;
        // A queued run's stream is an empty one the API node wrote; the worker that takes the run
        // starts it again under its own epoch. Nothing was shown yet: the copy goes on, its viewers stay.
        if (current && current.log.lastSeq === 0 && state.from <= 1) {
          current.log.epoch = state.epoch;
          current.log.mirror(state.from, state.events, [], state.checkpoint);
          if (view && applyView(current, view)) current.emit('status');
          return;
        }
        const session = new Session({
          id: sessionId,
          workflowName: view?.workflowName ?? '',
          steps: [],
          visual: true,
          quality: view?.quality ?? 'standard',
          metrics: this.options.metrics,
        });
        session.log.epoch = state.epoch;
        if (view) applyView(session, view);
        session.log.mirror(state.from, state.events, [], state.checkpoint);
        const previous = current;
        current = session;
        this.options.registry.adopt(session);
        this.copies.set(sessionId, { session, idleSince: null });
        if (previous) {
          this.options.log.warn({ session: sessionId, epoch: state.epoch }, 'a run’s stream started over: its viewers reconnect');
          this.options.restarted(sessionId, 'the run’s stream started over');
        }
      },
      batch: (entry) => {
        const session = current!;
        session.log.mirror(entry.seq, entry.events, entry.timestamps, entry.checkpoint);
        const view = entry.view ? parseView(entry.view) : null;
        if (view && applyView(session, view)) session.emit('status');
      },
      end: (status) => {
        const session = current!;
        // Ended: the tail follows it no more; the registry keeps it among the finished ones.
        this.copies.delete(sessionId);
        if (session.finished) return;
        session.status = TERMINAL_STATUSES.includes(status as SessionStatus) ? (status as SessionStatus) : 'interrupted';
        session.endedAt ??= Date.now();
        session.emit('status');
      },
    };
    return this.options.tail.watch(sessionId, handler);
  }
}
