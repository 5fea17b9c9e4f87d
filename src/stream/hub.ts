import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../common/index.js';
import { CloseCode } from '../protocol/index.js';
import type { Batch, Session, SessionRegistry } from '../session/index.js';
import { endFrame, eventsFrame, helloFrame, pingFrame, resetFrame, statusFrame } from './frames.js';

export interface HubOptions {
  registry: SessionRegistry;
  maxConnections: number;
  enabled: boolean;
  /** Runs are kept in the store (DOMCAST_RECORDINGS): viewers may rewind. */
  recordings: boolean;
  log: Logger;
  /** A viewer whose socket holds more than this many unsent bytes stops getting events until it drains. */
  maxBufferedBytes?: number;
  pingIntervalMs?: number;
}

interface Viewer {
  ws: WebSocket;
  /** Set while the socket is backed up; such a viewer gets a `reset` once it drains. */
  lagging: boolean;
  alive: boolean;
}

/** All viewers of one session; each batch is framed once and the same bytes go to every viewer. */
class Channel {
  readonly viewers = new Set<Viewer>();
  private readonly unsubscribe: () => void;
  private readonly onStatus = () => this.status();

  constructor(
    readonly session: Session,
    private readonly hub: StreamHub,
  ) {
    this.unsubscribe = session.log.subscribe((batch) => this.broadcast(batch));
    session.on('status', this.onStatus);
  }

  private broadcast(batch: Batch): void {
    const frame = eventsFrame('events', batch);
    for (const v of this.viewers) {
      if (v.lagging) continue;
      if (v.ws.bufferedAmount > this.hub.maxBufferedBytes) {
        v.lagging = true;
        continue;
      }
      v.ws.send(frame, { binary: false });
    }
  }

  private status(): void {
    const frame = statusFrame(this.session);
    for (const v of this.viewers) v.ws.send(frame, { binary: false });
    if (this.session.finished) for (const v of [...this.viewers]) this.end(v);
  }

  /** Everything is delivered (sends are queued in order): say so and close normally. */
  end(v: Viewer): void {
    if (v.lagging) this.reset(v);
    v.ws.send(endFrame(this.session));
    v.ws.close(CloseCode.normal, 'session ended');
    this.remove(v);
  }

  reset(v: Viewer): void {
    v.lagging = false;
    v.ws.send(resetFrame(this.session.log), { binary: false });
  }

  remove(v: Viewer): void {
    // Called from end() and again from the socket's close event: only the first call counts.
    if (!this.viewers.delete(v)) return;
    if (this.viewers.size === 0) this.close();
  }

  close(): void {
    this.unsubscribe();
    this.session.off('status', this.onStatus);
    this.hub.channelClosed(this);
  }
}

const SESSION_PATH = /^\/workflows\/visual\/([^/]+)\/?$/;

/** The WebSocket side of `WS /workflows/visual/{session_id}` (see docs/PROTOCOL.md). */
export class StreamHub {
  readonly epoch = randomUUID();
  readonly maxBufferedBytes: number;
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 4096,
    perMessageDeflate: { threshold: 1024, serverMaxWindowBits: 15, concurrencyLimit: 4 },
  });
  private readonly channels = new Map<string, Channel>();
  private connections = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly drainTimer: NodeJS.Timeout;
  connectionsRefused = 0;

  constructor(private readonly options: HubOptions) {
    this.maxBufferedBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024;
    this.timer = setInterval(() => this.tick(), options.pingIntervalMs ?? 10_000);
    this.timer.unref();
    this.drainTimer = setInterval(() => this.checkLaggards(), 250);
    this.drainTimer.unref();
  }

  get connectionCount(): number {
    return this.connections;
  }

  /** True when the request is ours (the caller then must not touch the socket). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = SESSION_PATH.exec(url.pathname);
    if (!match) return false;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, decodeURIComponent(match[1] ?? ''), url.searchParams));
    return true;
  }

  private refuse(ws: WebSocket, code: number, reason: string): void {
    this.connectionsRefused++;
    this.options.log.info({ code, reason }, 'viewer refused');
    ws.close(code, reason);
  }

  private accept(ws: WebSocket, sessionId: string, params: URLSearchParams): void {
    if (this.connections >= this.options.maxConnections) {
      return this.refuse(ws, CloseCode.tryAgainLater, `too many viewer connections (limit ${this.options.maxConnections})`);
    }
    if (!this.options.enabled) return this.refuse(ws, CloseCode.visualOff, 'visual streaming is disabled on this server');
    const session = this.options.registry.get(sessionId);
    if (!session) return this.refuse(ws, CloseCode.notFound, `unknown session ${sessionId.slice(0, 64)}`);
    if (!session.visual) return this.refuse(ws, CloseCode.visualOff, `session ${session.id} runs with visual_enabled=false`);
    const sinceParam = params.get('since');
    let since: number | null = null;
    if (sinceParam !== null) {
      if (!/^\d{1,15}$/.test(sinceParam)) return this.refuse(ws, CloseCode.badRequest, 'since must be a non-negative integer seq');
      since = Number(sinceParam);
    }

    this.connections++;
    const viewer: Viewer = { ws, lagging: false, alive: true };
    ws.on('pong', () => (viewer.alive = true));
    ws.on('error', (err) => this.options.log.debug({ err: err.message }, 'viewer socket error'));

    ws.send(helloFrame(session, this.epoch, this.options.recordings));
    const channel = session.finished ? null : this.channel(session);
    const sameEpoch = params.get('epoch') === this.epoch;
    const slice = since !== null && sameEpoch ? session.log.since(since) : null;
    if (slice) {
      if (slice.events.length > 0) ws.send(eventsFrame('events', slice), { binary: false });
    } else if (session.log.lastSeq > 0) {
      ws.send(resetFrame(session.log), { binary: false });
    }
    ws.on('close', () => {
      this.connections--;
      channel?.remove(viewer);
    });
    if (!channel) {
      ws.send(endFrame(session));
      ws.close(CloseCode.normal, 'session ended');
      return;
    }
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

  channelClosed(channel: Channel): void {
    if (this.channels.get(channel.session.id) === channel) this.channels.delete(channel.session.id);
  }

  /** Liveness: protocol pings (two unanswered and the viewer is dropped) and app pings carrying server time. */
  private tick(): void {
    const ping = pingFrame();
    for (const channel of this.channels.values()) {
      for (const v of channel.viewers) {
        if (!v.alive) {
          v.ws.terminate();
          continue;
        }
        v.alive = false;
        v.ws.ping();
        v.ws.send(ping);
      }
    }
  }

  /** Viewers that fell behind get a reset as soon as their socket has drained. */
  private checkLaggards(): void {
    for (const channel of this.channels.values()) {
      for (const v of channel.viewers) if (v.lagging && v.ws.bufferedAmount < 64 * 1024) channel.reset(v);
    }
  }

  close(): void {
    clearInterval(this.timer);
    clearInterval(this.drainTimer);
    for (const ws of this.wss.clients) ws.close(CloseCode.goingAway, 'server shutting down');
    this.wss.close();
  }
}
