import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../common/index.js';
import { CloseCode } from '../protocol/index.js';
import type { Session, SessionRegistry } from '../session/index.js';
import { Channel, type ChannelHost, type Viewer } from './channel.js';
import { endFrame, eventsFrames, helloFrame, pingFrame, resetFrames } from './frames.js';
import { closeShared, COMPRESS_MIN_BYTES, compressed, fallback, letWsCompress, NEGOTIATE_ONLY, SHARED_DEFLATE_PROBLEM, sendShared, unsentBytes } from './shared-deflate.js';

/** Why a viewer may not connect (a close code and its reason), or null when it may. */
export interface Refusal {
  code: number;
  reason: string;
}

export type Authorize = (sessionId: string, token: string | null, req: IncomingMessage) => Promise<Refusal | null>;

export interface HubOptions {
  registry: SessionRegistry;
  /** Checks the viewer's token and origin before anything about the session is sent. */
  authorize: Authorize;
  maxConnections: number;
  maxConnectionsPerIp: number;
  enabled: boolean;
  /** Runs are kept in the store (DOMCAST_RECORDINGS): viewers may rewind. */
  recordings: boolean;
  log: Logger;
  /** A viewer whose socket holds more than this many unsent bytes stops getting events until it drains. */
  maxBufferedBytes?: number;
  /**
   * All viewers together: past this many unsent bytes, the per-viewer bound drops to
   * `pressureBufferedBytes`, so many slow viewers cannot add up to more than about this.
   */
  maxTotalBufferedBytes?: number;
  pressureBufferedBytes?: number;
  /** A viewer that does not answer a ping before the next one is dropped: dead ones go within two intervals. */
  pingIntervalMs?: number;
  /** Compress each frame once for all viewers (src/stream/shared-deflate.ts); default: when the installed ws allows it. */
  sharedDeflate?: boolean;
  /**
   * Called before a viewer is admitted, once its token is good: cluster mode makes sure this node
   * holds the session (a copy of a worker's, src/cluster/mirror.ts).
   */
  prepare?: (sessionId: string) => Promise<unknown>;
  /** The viewer's address, for VISUAL_MAX_CONNECTIONS_PER_IP (behind trusted proxies, the client's); default: the socket's peer. */
  clientAddress?: (req: IncomingMessage) => string;
}

/** Viewers send almost nothing: at most this many messages per window, each at most MAX_INBOUND_BYTES. */
const MAX_INBOUND_MESSAGES = 20;
const INBOUND_WINDOW_MS = 10_000;
const MAX_INBOUND_BYTES = 4096;

/** A close reason may be at most 123 bytes of UTF-8 (RFC 6455); longer ones are cut at a character. */
function fitReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** How long the `prepare` hook (cluster mode: following a worker's session) may take before the viewer is told to try again. */
const PREPARE_TIMEOUT_MS = 5000;

const SESSION_PATH = /^\/workflows\/visual\/([^/]+)\/?$/;

/** The WebSocket side of `WS /workflows/visual/{session_id}` (see docs/PROTOCOL.md). */
export class StreamHub implements ChannelHost {
  readonly epoch = randomUUID();
  readonly maxBufferedBytes: number;
  private readonly maxTotalBufferedBytes: number;
  private readonly pressureBufferedBytes: number;
  /** As of the last check (every 250 ms): unsent bytes of all viewers, and viewers waiting for a reset. */
  readonly backlog = { bufferedBytes: 0, lagging: 0, resets: 0 };
  private readonly wss: WebSocketServer;
  /** Frames are compressed once for all viewers; false when the installed ws lacks what that needs (then ws compresses per viewer). */
  readonly sharedDeflate: boolean;
  private readonly channels = new Map<string, Channel>();
  private connections = 0;
  private readonly perAddress = new Map<string, number>();
  /** Set by beginShutdown(): no new viewers; sessions that end close their viewers with 1001. */
  shuttingDown = false;
  private readonly timer: NodeJS.Timeout;
  private readonly drainTimer: NodeJS.Timeout;
  connectionsRefused = 0;
  /** Viewers that came back with `since` (a resume), and those of them whose gap could not be filled (a reset). */
  readonly reconnections = { total: 0, reset: 0 };
  /** Sockets of viewers now connected, and what those already gone were sent (on the wire: frames, pings, the upgrade). */
  private readonly sockets = new Set<Duplex>();
  private bytesSentClosed = 0;

  constructor(private readonly options: HubOptions) {
    this.maxBufferedBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024;
    this.maxTotalBufferedBytes = options.maxTotalBufferedBytes ?? 256 * 1024 * 1024;
    this.pressureBufferedBytes = Math.min(this.maxBufferedBytes, options.pressureBufferedBytes ?? 512 * 1024);
    this.sharedDeflate = options.sharedDeflate ?? SHARED_DEFLATE_PROBLEM === null;
    if (!this.sharedDeflate && SHARED_DEFLATE_PROBLEM !== null) {
      options.log.warn({ problem: SHARED_DEFLATE_PROBLEM }, 'shared deflate is off: ws compresses for each viewer (slower with large audiences)');
    }
    this.wss = new WebSocketServer({
      noServer: true,
      // Frames past this never reach us (ws closes with 1009); smaller ones over our limit get a reason.
      maxPayload: 16 * MAX_INBOUND_BYTES,
      // Negotiated here, but compressed by sendShared: once per frame, not once per viewer.
      // Without shared deflate, ws's own per-message compression (with its context per viewer).
      perMessageDeflate: this.sharedDeflate ? NEGOTIATE_ONLY : { threshold: COMPRESS_MIN_BYTES },
    });
    this.timer = setInterval(() => this.tick(), options.pingIntervalMs ?? 10_000);
    this.timer.unref();
    this.drainTimer = setInterval(() => this.checkLaggards(), 250);
    this.drainTimer.unref();
  }

  get connectionCount(): number {
    return this.connections;
  }

  /** Bytes written to viewer sockets since start. */
  get bytesSent(): number {
    let total = this.bytesSentClosed;
    for (const s of this.sockets) total += (s as Partial<Socket>).bytesWritten ?? 0;
    return total;
  }

  /** Viewers watching one session now. */
  viewerCount(sessionId: string): number {
    return this.channels.get(sessionId)?.viewers.size ?? 0;
  }

  /**
   * What a viewer who connected now would get first (hello, then the reset from the latest
   * checkpoint), as JSON texts for the viewer page to carry (routes/viewer.ts): a late joiner then
   * draws the page without waiting for its socket, which resumes after it with `since`. Null when
   * the session is not streaming here, has nothing yet, or its reset is over `maxChars`; and, given
   * the page's request, when its socket would be refused now (VISUAL_WEBSOCKET_MAX_CONNECTIONS, or
   * VISUAL_MAX_CONNECTIONS_PER_IP for its address): the page then carries nothing, and its socket
   * is told why.
   */
  startFrames(sessionId: string, maxChars: number, req?: IncomingMessage): string[] | null {
    if (!this.options.enabled || this.shuttingDown) return null;
    if (req && this.overLimits(this.addressOf(req))) return null;
    const session = this.options.registry.get(sessionId);
    if (!session?.visual || !session.streaming || session.log.lastSeq === 0 || session.log.released) return null;
    const reset = resetFrames(session.log);
    if (reset.reduce((n, f) => n + f.length, 0) > maxChars) return null;
    return [helloFrame(session, session.log.epoch ?? this.epoch, this.options.recordings), ...reset.map((f) => f.toString())];
  }

  /** How frames to viewers are compressed, for /health/visual. */
  get compression(): { mode: 'shared' | 'ws'; problem: string | null; ws_compressed_frames: number; against_window_frames: number; alone_frames: number } {
    return {
      mode: this.sharedDeflate ? 'shared' : 'ws',
      problem: SHARED_DEFLATE_PROBLEM,
      ws_compressed_frames: fallback.frames,
      against_window_frames: compressed.against_window,
      alone_frames: compressed.alone,
    };
  }

  /**
   * True when the request is ours (the caller then must not touch the socket). The viewer is
   * authorized before anything else: a socket counts against the limits only once its token and
   * origin are good, so a flood of bad tokens holds no slot a real viewer needs.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return false;
    }
    const match = SESSION_PATH.exec(url.pathname);
    if (!match) return false;
    let sessionId: string;
    try {
      sessionId = decodeURIComponent(match[1] ?? '');
    } catch {
      sessionId = '';
    }
    // Until ws owns the socket, an error on it (a peer that resets) is ours to swallow.
    const onError = (): void => {
      socket.destroy();
    };
    socket.on('error', onError);
    this.upgrade(req, socket, head, sessionId, url.searchParams)
      .catch((err: unknown) => {
        this.options.log.error({ err }, 'viewer upgrade failed');
        socket.destroy();
      })
      .finally(() => socket.off('error', onError));
    return true;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, sessionId: string, params: URLSearchParams): Promise<void> {
    let denied: Refusal | null = this.shuttingDown ? { code: CloseCode.goingAway, reason: 'server shutting down' } : null;
    if (!denied) {
      denied = await this.options.authorize(sessionId, params.get('token'), req).catch((err: unknown) => {
        this.options.log.error({ err, session: sessionId.slice(0, 64) }, 'viewer authorization failed');
        return { code: CloseCode.internalError, reason: 'internal error' };
      });
    }
    if (!denied && this.options.prepare) {
      // Bounded: a viewer waiting here is not yet counted against the connection limits.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`preparing the session took more than ${PREPARE_TIMEOUT_MS} ms`)), PREPARE_TIMEOUT_MS);
      });
      denied = await Promise.race([this.options.prepare(sessionId), timeout]).finally(() => clearTimeout(timer)).then(
        () => null,
        (err: unknown) => {
          this.options.log.error({ err, session: sessionId.slice(0, 64) }, 'preparing the session for a viewer failed');
          return { code: CloseCode.tryAgainLater, reason: 'the session is not available here now; try again' };
        },
      );
    }
    if (socket.destroyed) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const viewer: Viewer = { ws, socket, sessionId: sessionId.slice(0, 64), lagging: false, alive: true, next: 1 };
      this.sockets.add(socket);
      ws.once('close', () => {
        if (this.sockets.delete(socket)) this.bytesSentClosed += (socket as Partial<Socket>).bytesWritten ?? 0;
      });
      if (!this.sharedDeflate) letWsCompress(ws);
      ws.on('error', (err) => this.options.log.debug({ err: err.message, session: viewer.sessionId }, 'viewer socket error'));
      const refusal = denied ?? this.count(ws, this.addressOf(req));
      if (refusal) return this.refuse(viewer, refusal.code, refusal.reason);
      this.guardInbound(viewer);
      try {
        this.admit(viewer, sessionId, params);
      } catch (err) {
        this.options.log.error({ err, session: sessionId.slice(0, 64) }, 'viewer admission failed');
        this.refuse(viewer, CloseCode.internalError, 'internal error');
      }
    });
  }

  /** Closes with the code and reason, then ends the connection at once instead of waiting for the peer's close. */
  private refuse(v: Pick<Viewer, 'ws' | 'socket' | 'sessionId'>, code: number, reason: string): void {
    this.connectionsRefused++;
    this.options.log.info({ code, reason, session: v.sessionId }, 'viewer refused');
    if (v.ws.readyState === v.ws.OPEN) v.ws.close(code, fitReason(reason));
    v.socket.end();
    setTimeout(() => v.socket.destroy(), 1000).unref();
  }

  /** The viewer's address, as VISUAL_MAX_CONNECTIONS_PER_IP counts it. */
  private addressOf(req: IncomingMessage): string {
    return this.options.clientAddress?.(req) ?? req.socket.remoteAddress ?? 'unknown';
  }

  /** Why a viewer from `address` may not connect now (the connection limits), or null. */
  private overLimits(address: string): Refusal | null {
    if (this.connections >= this.options.maxConnections) {
      return { code: CloseCode.tryAgainLater, reason: `too many viewer connections (limit ${this.options.maxConnections})` };
    }
    if ((this.perAddress.get(address) ?? 0) >= this.options.maxConnectionsPerIp) {
      return { code: CloseCode.tooManyFromAddress, reason: `too many viewer connections from your address (limit ${this.options.maxConnectionsPerIp})` };
    }
    return null;
  }

  /** Counts an authorized viewer against the limits, or says why it may not connect. */
  private count(ws: WebSocket, address: string): Refusal | null {
    const refusal = this.overLimits(address);
    if (refusal) return refusal;
    this.connections++;
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    ws.once('close', () => {
      this.connections--;
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
    return null;
  }

  /**
   * Viewers may send `{"t":"ping"}` (answered with the server's clock), rarely; anything else is a
   * protocol error that closes the socket with its reason. Oversized frames are closed by ws (1009).
   */
  private guardInbound(viewer: Viewer): void {
    const { ws } = viewer;
    let windowStart = Date.now();
    let count = 0;
    const onMessage = (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void => {
      const now = Date.now();
      if (now - windowStart > INBOUND_WINDOW_MS) {
        windowStart = now;
        count = 0;
      }
      if (++count > MAX_INBOUND_MESSAGES) return this.refuse(viewer, CloseCode.policy, `too many messages (at most ${MAX_INBOUND_MESSAGES} per 10 s)`);
      if (isBinary) return this.refuse(viewer, CloseCode.badRequest, 'binary frames are not accepted');
      const size = Buffer.isBuffer(data) ? data.length : Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
      if (size > MAX_INBOUND_BYTES) return this.refuse(viewer, CloseCode.messageTooBig, `messages are at most ${MAX_INBOUND_BYTES} bytes`);
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        return this.refuse(viewer, CloseCode.badRequest, 'messages must be JSON; the only one is {"t":"ping"}');
      }
      if (typeof message !== 'object' || message === null || (message as { t?: unknown }).t !== 'ping') {
        return this.refuse(viewer, CloseCode.badRequest, 'unknown message; the only one is {"t":"ping"}');
      }
      sendShared(ws, pingFrame());
    };
    ws.on('message', (data, isBinary) => {
      try {
        onMessage(data, isBinary);
      } catch (err) {
        this.options.log.error({ err, session: viewer.sessionId }, 'viewer message failed');
        this.refuse(viewer, CloseCode.internalError, 'internal error');
      }
    });
  }

  private admit(viewer: Viewer, sessionId: string, params: URLSearchParams): void {
    const { ws } = viewer;
    if (!this.options.enabled) return this.refuse(viewer, CloseCode.visualOff, 'visual streaming is disabled on this server');
    const session = this.options.registry.get(sessionId);
    if (!session) return this.refuse(viewer, CloseCode.notFound, `unknown session ${sessionId.slice(0, 64)}`);
    if (!session.visual) return this.refuse(viewer, CloseCode.visualOff, `session ${session.id} runs with visual_enabled=false`);
    const sinceParam = params.get('since');
    let since: number | null = null;
    if (sinceParam !== null) {
      if (!/^\d{1,15}$/.test(sinceParam)) return this.refuse(viewer, CloseCode.badRequest, 'since must be a non-negative integer seq');
      since = Number(sinceParam);
    }

    ws.on('pong', () => (viewer.alive = true));

    // A copy of another node's session numbers as that node does: its epoch holds on every node.
    const epoch = session.log.epoch ?? this.epoch;
    sendShared(ws, helloFrame(session, epoch, this.options.recordings));
    const channel = session.streaming ? this.channel(session) : null;
    const sameEpoch = params.get('epoch') === epoch;
    const slice = since !== null && sameEpoch ? session.log.since(since) : null;
    // `page=1`: the since is where the viewer page's own start left off (startFrames), not a resume.
    const resumed = since !== null && params.get('page') !== '1';
    if (resumed) this.reconnections.total++;
    if (slice) {
      if (slice.events.length > 0) for (const frame of eventsFrames('events', slice)) sendShared(ws, frame);
    } else if (session.log.lastSeq > 0 && !session.log.released) {
      // A released log (an ended run, kept by the store) has no reset: hello says `recorded`, the recording is at /events.
      for (const frame of resetFrames(session.log)) sendShared(ws, frame);
      if (resumed) this.reconnections.reset++;
    }
    // Both reach the end of the log, events still waiting in the channel's coalescing buffer included.
    viewer.next = session.log.lastSeq + 1;
    if (!channel) {
      this.sendEnd(ws, session);
      return;
    }
    ws.on('close', () => channel.remove(viewer));
    channel.viewers.add(viewer);
  }

  private channel(session: Session): Channel {
    let c = this.channels.get(session.id);
    if (!c) {
      c = new Channel(session, this);
      this.channels.set(session.id, c);
    }
    return c;
  }

  /** The session's copy started over (cluster mode): its viewers are closed (1012) and reconnect to the new one. */
  restart(sessionId: string, reason: string): void {
    const channel = this.channels.get(sessionId);
    if (!channel) return;
    for (const v of [...channel.viewers]) {
      channel.remove(v);
      closeShared(v.ws, CloseCode.restarted, fitReason(reason));
    }
  }

  /** A channel could not tell its viewers of a status change: they are closed (1011) and may reconnect. */
  channelFailed(channel: Channel, err: unknown): void {
    this.options.log.error({ err, session: channel.session.id }, 'viewer channel failed');
    for (const v of [...channel.viewers]) {
      channel.remove(v);
      this.refuse(v, CloseCode.internalError, 'internal error');
    }
  }

  channelClosed(channel: Channel): void {
    if (this.channels.get(channel.session.id) === channel) this.channels.delete(channel.session.id);
  }

  /** Liveness: protocol pings (two unanswered and the viewer is dropped) and app pings carrying server time. */
  private tick(): void {
    const ping = Buffer.from(pingFrame());
    for (const channel of this.channels.values()) {
      for (const v of channel.viewers) {
        if (!v.alive) {
          v.ws.terminate();
          continue;
        }
        v.alive = false;
        v.ws.ping();
        sendShared(v.ws, ping);
      }
    }
  }

  /** Viewers that fell behind get a reset as soon as their socket has drained. */
  private checkLaggards(): void {
    let buffered = 0;
    let lagging = 0;
    for (const channel of this.channels.values()) {
      for (const v of channel.viewers) {
        const amount = unsentBytes(v.ws);
        buffered += amount;
        if (!v.lagging) continue;
        if (amount < 64 * 1024) {
          channel.reset(v);
          this.backlog.resets++;
        } else lagging++;
      }
    }
    this.backlog.bufferedBytes = buffered;
    this.backlog.lagging = lagging;
  }

  /** The per-viewer bound while all viewers together hold `total` unsent bytes: lower once past the budget. */
  boundFor(total: number): number {
    return total > this.maxTotalBufferedBytes ? this.pressureBufferedBytes : this.maxBufferedBytes;
  }

  /** Unsent bytes of every other channel's viewers (as of their last broadcasts): one number per session. */
  bufferedBesides(channel: Channel): number {
    let total = 0;
    for (const c of this.channels.values()) if (c !== channel) total += c.buffered;
    return total;
  }

  /** The session is over and all of it was sent: `end`, then a close (1001 while the server is going, else 1000). */
  sendEnd(ws: WebSocket, session: Session): void {
    sendShared(ws, endFrame(session));
    if (this.shuttingDown) closeShared(ws, CloseCode.goingAway, 'server shutting down');
    else if (session.streamEndReason !== null) closeShared(ws, CloseCode.normal, 'recording stopped');
    else closeShared(ws, CloseCode.normal, 'session ended');
  }

  /** From now on no viewer is admitted; viewers of sessions that end are closed with 1001. */
  beginShutdown(): void {
    this.shuttingDown = true;
  }

  close(): void {
    this.shuttingDown = true;
    clearInterval(this.timer);
    clearInterval(this.drainTimer);
    for (const ws of this.wss.clients) ws.close(CloseCode.goingAway, 'server shutting down');
    this.wss.close();
  }
}
