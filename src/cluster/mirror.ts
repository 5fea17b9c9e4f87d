import type { Logger } from '../common/index.js';
import { TERMINAL_STATUSES, type SessionStatus } from '../protocol/index.js';
import { Session, type SessionRegistry, type StreamMetrics } from '../session/index.js';
import type { StreamTail, TailHandler } from './stream-tail.js';
import { applyView, parseView } from './view.js';

export interface MirrorOptions {
  tail: StreamTail;
  registry: SessionRegistry;
  metrics: StreamMetrics;
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

  constructor(private readonly options: MirrorOptions) {}

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
        session.log.mirror(state.from, state.events, [], state.from);
        const previous = current;
        current = session;
        this.options.registry.adopt(session);
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
        if (session.finished) return;
        session.status = TERMINAL_STATUSES.includes(status as SessionStatus) ? (status as SessionStatus) : 'interrupted';
        session.endedAt ??= Date.now();
        session.emit('status');
      },
    };
    return this.options.tail.watch(sessionId, handler);
  }
}
