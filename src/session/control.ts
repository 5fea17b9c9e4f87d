import { EventEmitter } from 'node:events';
import type { ControlCustomPayload, ControlState, ControlView, HumanRequest } from '../protocol/index.js';

/** Control links alive at once per run; minting one more is refused until some expire or are revoked. */
export const MAX_CONTROL_GRANTS = 8;

/** Why a control token stopped working: the person let go, the API took it away, it expired, or the run ended. */
export type RevokeReason = 'released' | 'revoked' | 'expired' | 'ended';
/** How a hold ended: its token stopped working, or the person's socket closed (the token still works). */
export type ReleaseReason = RevokeReason | 'dropped';

export interface ControlEvents {
  /** The state or the request changed: viewers are told (a status frame). */
  change: [];
  /** A control token stopped working: its socket (if any) closes with this reason. */
  revoked: [jti: string, reason: RevokeReason];
  /** The token that waited at a step's end holds control now. */
  held: [jti: string];
}

/** Why a person may not take control: another token holds it, or this one no longer works. */
export class TakeRefused extends Error {
  constructor(
    readonly code: 'busy' | 'unknown',
    message: string,
  ) {
    super(message);
  }
}

/**
 * One run's lock between a person and its workflow (issue 16). The workflow asks `beforeStep` before
 * each step and waits while a person holds control; a person who takes control while a step runs
 * waits for that step's end (`waiting`), never interrupts it. A `human` step waits until a person
 * took control and released it. Control tokens are granted here (their ids), so they can be
 * revoked before they expire; the session's end revokes them all.
 */
export class SessionControl extends EventEmitter<ControlEvents> {
  /** Granted control tokens: id → expiry (ms since the epoch). */
  private readonly grants = new Map<string, number>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  state: ControlState = 'free';
  holder: string | null = null;
  since: number | null = null;
  request: HumanRequest | null = null;
  /** A workflow step is in flight (a human step does not count: a person may take control during it). */
  private stepRunning = false;
  private ended = false;
  /** Woken on every change of state: the workflow's waits check again. */
  private wakers = new Set<() => void>();
  /** Ends of holds, for a human step waiting for one (released or revoked, not expired). */
  private releases = 0;

  constructor(private readonly audit: (payload: ControlCustomPayload) => void) {
    super();
  }

  get view(): ControlView {
    return { state: this.state, holder: this.holder, since: this.since, request: this.request };
  }

  /** Records a control token minted for this run; false when MAX_CONTROL_GRANTS are alive already, or the run ended. */
  grant(jti: string, expiresAt: number): boolean {
    if (this.ended) return false;
    for (const [id, exp] of this.grants) if (exp <= Date.now()) this.forget(id);
    if (this.grants.size >= MAX_CONTROL_GRANTS) return false;
    this.grants.set(jti, expiresAt);
    const timer = setTimeout(() => this.revoke(jti, 'expired'), Math.max(0, expiresAt - Date.now()));
    timer.unref();
    this.expiryTimers.set(jti, timer);
    return true;
  }

  /** The token was granted here, and is neither revoked nor expired. */
  granted(jti: string): boolean {
    const exp = this.grants.get(jti);
    return exp !== undefined && exp > Date.now() && !this.ended;
  }

  private forget(jti: string): void {
    this.grants.delete(jti);
    clearTimeout(this.expiryTimers.get(jti));
    this.expiryTimers.delete(jti);
  }

  /** The token stops working (released from the viewer, revoked by the API, expired, the run ended); a hold it had ends. */
  revoke(jti: string, reason: RevokeReason): void {
    if (!this.grants.has(jti)) return;
    this.forget(jti);
    if (this.holder === jti) this.endHold(reason);
    this.emit('revoked', jti, reason);
  }

  /** Every control token of this run stops working (DELETE /workflows/{id}/control); how many there were. */
  revokeAll(reason: RevokeReason): number {
    const ids = [...this.grants.keys()];
    for (const id of ids) this.revoke(id, reason);
    return ids.length;
  }

  /**
   * A person asks for control: `held` at once between steps (or during a human step), `waiting`
   * while a step runs (held at its end, announced by `held`). Throws TakeRefused when another token holds it.
   */
  take(jti: string): 'held' | 'waiting' {
    if (!this.granted(jti)) throw new TakeRefused('unknown', 'this control link was revoked or has expired');
    if (this.holder === jti) return this.state === 'held' ? 'held' : 'waiting';
    if (this.holder !== null) throw new TakeRefused('busy', 'another person holds control of this run');
    this.holder = jti;
    this.since = Date.now();
    this.audit({ action: 'take', token: jti });
    if (this.stepRunning) {
      this.set('waiting');
      this.audit({ action: 'wait', token: jti });
    } else this.hold();
    return this.state === 'held' ? 'held' : 'waiting';
  }

  private hold(): void {
    this.set('held');
    this.audit({ action: 'hold', token: jti(this.holder) });
    this.emit('held', jti(this.holder));
  }

  /** The holder lets go (the Release button): its token is spent. */
  release(jti: string): void {
    this.revoke(jti, 'released');
  }

  /** The holder's socket closed: the hold ends (the workflow goes on) but the token still works, to take control again. */
  drop(jti: string): void {
    if (this.holder === jti) this.endHold('dropped');
  }

  private endHold(reason: ReleaseReason): void {
    const token = jti(this.holder);
    this.holder = null;
    this.since = null;
    const action = ({ released: 'release', revoked: 'revoke', expired: 'expire', ended: 'end', dropped: 'release' } as const)[reason];
    this.audit({ action, token, ...(reason === 'dropped' ? { reason: 'the control socket closed' } : {}) });
    if (reason === 'released' || reason === 'revoked') this.releases++;
    this.set('free');
  }

  /** An input was applied to the page, for the audit trail. */
  input(payload: Omit<ControlCustomPayload, 'action'>): void {
    this.audit({ action: 'input', ...payload });
  }

  private set(state: ControlState): void {
    this.state = state;
    this.changed();
  }

  private changed(): void {
    this.emit('change');
    const wakers = this.wakers;
    this.wakers = new Set();
    for (const wake of wakers) wake();
  }

  /** Resolves at the next change of state, or when `signal` aborts. */
  private next(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', wake);
        this.wakers.delete(wake);
        resolve();
      };
      this.wakers.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  /** The workflow, before each step: waits while a person holds control, then counts the step as running. */
  async beforeStep(signal?: AbortSignal): Promise<void> {
    while (this.state !== 'free' && !signal?.aborted && !this.ended) await this.next(signal);
    this.stepRunning = true;
  }

  /** The step ended (whichever way): a person waiting for it holds control now. */
  afterStep(): void {
    this.stepRunning = false;
    if (this.state === 'waiting') this.hold();
  }

  /**
   * A `human` step: asks for a person (every viewer and the API show the request) and resolves
   * once a person who took control released it (or the API revoked it); rejects after `timeoutMs`.
   */
  async human(step: number, description: string | null, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    this.stepRunning = false;
    const until = Date.now() + timeoutMs;
    this.request = { step, description, until };
    const releasesBefore = this.releases;
    this.changed();
    // The timer says when time is up, not Date.now(): a timer can fire a little before Date.now()
    // reaches `until`, and the step then waited with nothing left to wake it (seen in the unit suite).
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.changed();
    }, timeoutMs);
    try {
      while (this.releases === releasesBefore) {
        if (signal?.aborted || this.ended) throw new Error('the run ended while it waited for a person');
        if (timedOut || Date.now() >= until) {
          throw new Error(
            this.state === 'free'
              ? `no person took control and released it within ${timeoutMs} ms`
              : `the person who took control did not release it within ${timeoutMs} ms`,
          );
        }
        await this.next(signal);
      }
    } finally {
      clearTimeout(timer);
      this.request = null;
      this.changed();
    }
  }

  /** The run is over: every token is revoked, nothing waits any more. */
  end(): void {
    if (this.ended) return;
    this.revokeAll('ended');
    this.ended = true;
    this.request = null;
    this.changed();
  }
}

function jti(holder: string | null): string {
  return holder ?? '';
}
