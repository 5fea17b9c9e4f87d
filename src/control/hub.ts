import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Page } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import type { Logger } from '../common/index.js';
import { CloseCode, type ControlInput, type ControlServerFrame } from '../protocol/index.js';
import { TakeRefused, type RevokeReason, type Session, type SessionRegistry } from '../session/index.js';
import { auditKey } from './keys.js';
import { InputMissed, PageInput } from './input.js';

/** Why a control socket may not open (a close code and its reason). */
export interface ControlRefusal {
  code: number;
  reason: string;
}

export interface ControlHubOptions {
  registry: SessionRegistry;
  /** The page a running session drives now (the tab the run is on). */
  page: (sessionId: string) => Page | undefined;
  /** Origin and control token: the token's id, or why not. Whether the run still grants it is checked here. */
  authorize: (sessionId: string, token: string | null, req: IncomingMessage) => Promise<{ jti: string } | ControlRefusal>;
  log: Logger;
  /** Input messages a controller may send per second (a bucket of twice that); more are refused. */
  inputPerSecond?: number;
}

/** A person's input rate: pointer moves come at most every 16 ms from the viewer, keys far slower. */
const INPUT_PER_SECOND = 100;
/** Inputs waiting to be applied, per controller: past it, moves are dropped and the rest refused. */
const MAX_QUEUED = 64;
const MAX_MESSAGE_BYTES = 8192;

const coord = z.number().finite().min(-100_000).max(100_000);
const node = z.number().int().min(0).max(2 ** 31);
const mods = z.number().int().min(0).max(15).optional();
const inputSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('move'), id: node, x: coord, y: coord, mods }),
  z.strictObject({ kind: z.literal('click'), id: node, x: coord, y: coord, mods, button: z.enum(['left', 'middle', 'right']).optional(), clicks: z.number().int().min(1).max(3).optional() }),
  z.strictObject({ kind: z.literal('wheel'), id: node, x: coord, y: coord, mods, dx: z.number().finite().min(-10_000).max(10_000), dy: z.number().finite().min(-10_000).max(10_000) }),
  z.strictObject({ kind: z.literal('key'), phase: z.enum(['down', 'up']), key: z.string().min(1).max(32), code: z.string().max(32), mods, repeat: z.boolean().optional() }),
  z.strictObject({ kind: z.literal('text'), text: z.string().min(1).max(2000) }),
]);
const messageSchema = z.union([
  z.strictObject({ t: z.enum(['take', 'release', 'ping']) }),
  inputSchema.and(z.object({ t: z.literal('input') })),
]);

const FINAL_CLOSE: Record<RevokeReason, { code: number; reason: string }> = {
  released: { code: CloseCode.normal, reason: 'control released' },
  revoked: { code: CloseCode.unauthorized, reason: 'control was taken away (revoked)' },
  expired: { code: CloseCode.unauthorized, reason: 'this control link has expired' },
  ended: { code: CloseCode.normal, reason: 'the run ended' },
};

/** One person's control socket. */
class Controller {
  private queue: ControlInput[] = [];
  private draining = false;
  private input: PageInput | null = null;
  private tokens: number;
  private refilled = Date.now();
  private readonly detach: () => void;

  constructor(
    readonly ws: WebSocket,
    readonly session: Session,
    readonly jti: string,
    private readonly hub: ControlHub,
  ) {
    this.tokens = hub.inputPerSecond * 2;
    const control = session.control;
    const onChange = (): void => this.sendState();
    const onRevoked = (id: string, reason: RevokeReason): void => {
      if (id !== this.jti) return;
      this.send({ t: 'control', state: reason, view: control.view });
      const close = FINAL_CLOSE[reason];
      this.ws.close(close.code, close.reason);
    };
    control.on('change', onChange);
    control.on('revoked', onRevoked);
    this.detach = () => {
      control.off('change', onChange);
      control.off('revoked', onRevoked);
    };
    ws.on('message', (data, binary) => {
      try {
        this.onMessage(data, binary);
      } catch (err) {
        hub.options.log.error({ err, session: session.id }, 'control message failed');
        this.ws.close(CloseCode.internalError, 'internal error');
      }
    });
    ws.on('close', () => {
      this.detach();
      this.input?.close();
      this.queue = [];
      // A socket replaced by a newer one for the same token leaves that one's hold alone.
      if (hub.closed(this)) control.drop(this.jti);
    });
    this.sendState();
  }

  /** This token's view of the lock: its own hold, or another person's (`busy`), or nobody's. */
  private sendState(): void {
    const view = this.session.control.view;
    const state = view.holder === this.jti ? view.state : view.holder !== null ? 'busy' : 'free';
    this.send({ t: 'control', state, view });
  }

  send(frame: ControlServerFrame): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private onMessage(data: WebSocket.RawData, binary: boolean): void {
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer).length;
    if (binary || size > MAX_MESSAGE_BYTES) return this.ws.close(CloseCode.badRequest, 'messages are JSON text of at most 8 KiB');
    let parsed: z.infer<typeof messageSchema>;
    try {
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8');
      parsed = messageSchema.parse(JSON.parse(text));
    } catch {
      return this.ws.close(CloseCode.badRequest, 'unknown or malformed control message (docs/PROTOCOL.md, Control socket)');
    }
    const control = this.session.control;
    switch (parsed.t) {
      case 'ping':
        return this.send({ t: 'ping', serverTime: Date.now() });
      case 'take':
        try {
          control.take(this.jti);
        } catch (err) {
          if (!(err instanceof TakeRefused)) throw err;
          this.send({ t: 'control', state: err.code === 'busy' ? 'busy' : 'revoked', reason: err.message, view: control.view });
        }
        return;
      case 'release':
        return control.release(this.jti);
      case 'input':
        return this.enqueue(inputOf(parsed));
    }
  }

  private enqueue(input: ControlInput): void {
    const control = this.session.control;
    if (control.holder !== this.jti || control.state !== 'held') {
      return this.send({ t: 'refused', kind: input.kind, reason: control.holder === this.jti ? 'wait: a step is running; control comes at its end' : 'take control first' });
    }
    const now = Date.now();
    this.tokens = Math.min(this.hub.inputPerSecond * 2, this.tokens + ((now - this.refilled) * this.hub.inputPerSecond) / 1000);
    this.refilled = now;
    if (this.tokens < 1) {
      if (input.kind !== 'move') this.send({ t: 'refused', kind: input.kind, reason: `too fast: at most ${this.hub.inputPerSecond} inputs a second` });
      return;
    }
    this.tokens -= 1;
    if (this.queue.length >= MAX_QUEUED) {
      if (input.kind !== 'move') this.send({ t: 'refused', kind: input.kind, reason: 'too many inputs waiting' });
      return;
    }
    this.queue.push(input);
    if (!this.draining) void this.drain();
  }

  /** Inputs reach the page one at a time, in the order sent. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let input = this.queue.shift(); input; input = this.queue.shift()) {
        const control = this.session.control;
        if (control.holder !== this.jti || control.state !== 'held') {
          this.queue = [];
          break;
        }
        const page = this.hub.options.page(this.session.id);
        if (!page) {
          this.send({ t: 'refused', kind: input.kind, reason: 'the run has no page now' });
          continue;
        }
        if (this.input?.page !== page) {
          this.input?.close();
          this.input = new PageInput(page);
        }
        if (input.kind !== 'move') control.input(audit(this.jti, input));
        try {
          await this.input.apply(input);
        } catch (err) {
          if (!(err instanceof InputMissed)) this.hub.options.log.debug({ err: (err as Error).message, session: this.session.id }, 'control input failed');
          this.send({ t: 'refused', kind: input.kind, reason: err instanceof InputMissed ? err.message : 'the page did not take the input' });
        }
      }
    } finally {
      this.draining = false;
    }
  }
}

/** The input a message carries, without its `t`. */
function inputOf(message: ControlInput & { t: 'input' }): ControlInput {
  const input: Partial<ControlInput & { t: string }> = { ...message };
  delete input.t;
  return input as ControlInput;
}

/** What the audit trail keeps of an input: never typed text (a character key is `character`). */
function audit(token: string, input: Exclude<ControlInput, { kind: 'move' }>) {
  switch (input.kind) {
    case 'click':
    case 'wheel':
      return { token, kind: input.kind, node: input.id, ...(input.mods ? { mods: input.mods } : {}) };
    case 'key':
      return { token, kind: input.kind, key: `${input.phase === 'up' ? 'up ' : ''}${auditKey(input.key)}`, ...(input.mods ? { mods: input.mods } : {}) };
    case 'text':
      return { token, kind: input.kind };
  }
}

const CONTROL_PATH = /^\/workflows\/control\/([^/]+)\/?$/;

/** `WS /workflows/control/{session_id}?token=<control token>`: a person's input to a run's page (docs/PROTOCOL.md). */
export class ControlHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4 * MAX_MESSAGE_BYTES });
  /** One socket per control token: a new one (a reload) replaces the old. */
  private readonly byToken = new Map<string, Controller>();
  readonly inputPerSecond: number;

  constructor(readonly options: ControlHubOptions) {
    this.inputPerSecond = options.inputPerSecond ?? INPUT_PER_SECOND;
  }

  /** True when the request is a control socket's (the caller must then leave the socket alone). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return false;
    }
    const match = CONTROL_PATH.exec(url.pathname);
    if (!match) return false;
    let sessionId = '';
    try {
      sessionId = decodeURIComponent(match[1] ?? '');
    } catch {
      // an undecodable id is an unknown session
    }
    const onError = (): void => void socket.destroy();
    socket.on('error', onError);
    this.admit(req, socket, head, sessionId, url.searchParams.get('token'))
      .catch((err: unknown) => {
        this.options.log.error({ err }, 'control upgrade failed');
        socket.destroy();
      })
      .finally(() => socket.off('error', onError));
    return true;
  }

  private async admit(req: IncomingMessage, socket: Duplex, head: Buffer, sessionId: string, token: string | null): Promise<void> {
    const granted = await this.options.authorize(sessionId, token, req);
    const session = this.options.registry.get(sessionId);
    let refusal: ControlRefusal | null = 'code' in granted ? granted : null;
    if (!refusal && (!session || session.finished)) refusal = { code: CloseCode.visualOff, reason: 'this run has ended; there is nothing to control' };
    if (!refusal && 'jti' in granted && !session!.control.granted(granted.jti)) refusal = { code: CloseCode.unauthorized, reason: 'this control link was revoked or has expired' };
    if (socket.destroyed) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', (err) => this.options.log.debug({ err: err.message }, 'control socket error'));
      if (refusal || !session || !('jti' in granted)) {
        const r = refusal ?? { code: CloseCode.internalError, reason: 'internal error' };
        this.options.log.info({ code: r.code, reason: r.reason }, 'control socket refused');
        ws.close(r.code, r.reason);
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      this.byToken.get(granted.jti)?.ws.close(CloseCode.normal, 'this control link was opened elsewhere');
      this.byToken.set(granted.jti, new Controller(ws, session, granted.jti, this));
    });
  }

  /** A controller's socket closed; true when it was the token's current one. */
  closed(c: Controller): boolean {
    if (this.byToken.get(c.jti) !== c) return false;
    this.byToken.delete(c.jti);
    return true;
  }

  close(): void {
    for (const ws of this.wss.clients) ws.close(CloseCode.goingAway, 'server shutting down');
    this.wss.close();
  }
}
