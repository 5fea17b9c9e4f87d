import { randomUUID } from 'node:crypto';
import { Session, type SessionInit } from './session.js';

/**
 * Finished sessions' events kept in memory, all together, when nothing else holds them (without
 * the recordings store, which releases each one once written). Past this the oldest are released.
 */
export const FINISHED_LOGS_MAX_CHARS = 64 * 1024 * 1024;

/**
 * Live sessions plus the most recent finished ones, so a viewer opened after a run ended still
 * sees its final page. Finished sessions beyond `keepFinished` are forgotten, oldest first, and
 * their events are held only up to FINISHED_LOGS_MAX_CHARS in all.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly options: { keepFinished?: number; onCreate?: (session: Session) => void } = {},
  ) {}

  /** A new session; its id is given only by a cluster worker (the API node that queued the run chose it). */
  create(init: Omit<SessionInit, 'id'> & { id?: string }): Session {
    const session = new Session({ ...init, id: init.id ?? randomUUID() });
    this.sessions.set(session.id, session);
    this.options.onCreate?.(session);
    this.evictWhenEnded(session);
    return session;
  }

  /**
   * Holds a session this process did not create: another node's, copied for viewers here (cluster
   * mode, src/cluster/mirror.ts). It replaces one of the same id; the store is not told (the node
   * running it keeps the recording).
   */
  adopt(session: Session): void {
    this.sessions.set(session.id, session);
    this.evictWhenEnded(session);
  }

  private evictWhenEnded(session: Session): void {
    session.on('status', () => {
      if (session.finished) this.evict();
    });
  }

  /** Drops an adopted copy (cluster mode) that is no longer followed, if it is still the one held. */
  forget(id: string, session: Session): void {
    if (this.sessions.get(id) === session) this.sessions.delete(id);
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  get activeCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (!s.finished) n++;
    return n;
  }

  all(): IterableIterator<Session> {
    return this.sessions.values();
  }

  /** Forgets a finished session (the caller removes it from the store). */
  delete(id: string): boolean {
    return this.sessions.get(id)?.finished === true && this.sessions.delete(id);
  }

  private evict(): void {
    const keep = this.options.keepFinished ?? 200;
    const finished = [...this.sessions.values()].filter((s) => s.finished);
    for (const s of finished.slice(0, Math.max(0, finished.length - keep))) this.sessions.delete(s.id);
    let held = 0;
    for (const s of finished.slice(-keep).reverse()) {
      held += s.log.retainedChars;
      // After the other status listeners: a channel ending its viewers may still send them this log.
      if (held > FINISHED_LOGS_MAX_CHARS) queueMicrotask(() => s.log.release());
    }
  }
}
