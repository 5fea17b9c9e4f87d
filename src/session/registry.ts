import { randomUUID } from 'node:crypto';
import { Session, type SessionInit } from './session.js';

/**
 * Live sessions plus the most recent finished ones, so a viewer opened after a run ended still
 * sees its final page. Finished sessions beyond `keepFinished` are forgotten, oldest first.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly options: { keepFinished?: number; onCreate?: (session: Session) => void } = {},
  ) {}

  create(init: Omit<SessionInit, 'id'>): Session {
    const session = new Session({ ...init, id: randomUUID() });
    this.sessions.set(session.id, session);
    this.options.onCreate?.(session);
    session.on('status', () => {
      if (session.finished) this.evict();
    });
    return session;
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
  }
}
