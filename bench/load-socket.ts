/**
 * The WebSocket client under each load-bench viewer, in two interchangeable implementations:
 *
 * - `raw` (the default): a minimal RFC 6455 client on a plain TCP socket that offers
 *   permessage-deflate as browsers do (`permessage-deflate; client_max_window_bits`) and inflates
 *   with context takeover, synchronously: each message is inflated on its own with the previous
 *   32 KiB of inflated output as the dictionary, which for raw deflate is exactly the sliding window
 *   the server's compressor refers back to. With 1,000 viewers in one process, `ws`'s client
 *   inflates every compressed message on the libuv thread pool and the hops cost more than the
 *   inflating: the client process then saturates a core long before the server does.
 * - `ws`: the `ws` package's client, for cross-checking the raw one (BENCH_CLIENT=ws).
 *
 * The raw client also decodes identical messages once per process (`SharedDecode`, on unless
 * BENCH_CLIENT_SHARED_DECODE=0): see there.
 *
 * Both report text messages as Buffers, answer pings, and can stop reading (slow viewers) while
 * still sending unsolicited pongs, which keep the server's heartbeat satisfied.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants as zlib, inflateRawSync } from 'node:zlib';
import WebSocket from 'ws';

export interface ViewerSocket {
  /** The close code the server sent (1006 when the connection ended without one). */
  readonly closed: Promise<number>;
  /** TCP bytes read so far: frames as they crossed the wire. */
  wireBytesRead(): number;
  /** Stop reading (the kernel's buffers fill, then the server's). */
  pause(): void;
  resume(): void;
  /** An unsolicited pong (RFC 6455 §5.5.3): a heartbeat that needs no reading. */
  pong(): void;
  terminate(): void;
}

export interface OpenOptions {
  /** Offer permessage-deflate (browsers always do). */
  deflate: boolean;
  /** Share decoded messages between the sockets of this process (raw client only): see SharedDecode. */
  shared?: SharedDecode | null;
  /** Every text or binary message, whole and inflated, from the first one on. */
  onMessage: (data: Buffer) => void;
}

export type ClientKind = 'raw' | 'ws';

/** Which client the viewers use (BENCH_CLIENT; raw unless `ws`). */
export const clientKind = (): ClientKind => (process.env.BENCH_CLIENT === 'ws' ? 'ws' : 'raw');
/** Whether the viewers of a client process share decoding (raw client only; BENCH_CLIENT_SHARED_DECODE=0 turns it off). */
export const sharedDecodeOn = (): boolean => clientKind() === 'raw' && process.env.BENCH_CLIENT_SHARED_DECODE !== '0';

export function openSocket(kind: ClientKind, url: string, options: OpenOptions): Promise<ViewerSocket> {
  return kind === 'ws' ? openWs(url, options) : RawSocket.open(url, options);
}

// ---------------------------------------------------------------------------------------------

interface Decoded {
  /** The message's payload as it crossed the wire (compressed or not). */
  readonly wire: Buffer;
  readonly compressed: boolean;
  /** The message itself: the same Buffer object for every socket that received these bytes. */
  readonly message: Buffer;
}

/**
 * Decodes each distinct message once for all the viewers of a client process.
 *
 * 1,000 browsers watching one session each inflate and parse every frame on a machine of their own.
 * Simulated in one process, that work would be done 1,000 times on this machine's two cores, and the
 * load generator, not the server, would then set the latency measured. Without context takeover
 * a compressed message inflates on its own, and the hub writes the very
 * same bytes to every viewer of a frame (src/stream/shared-deflate.ts). So a socket whose payload is
 * byte for byte one decoded a moment ago, by any socket of this process, is given that decoded
 * message: the same Buffer object, which lets the viewer reuse its parse too. Each viewer still
 * receives, frames and compares its own bytes, and checks its own seqs; a message that differs in a
 * single byte is decoded on its own. With context takeover (which the server negotiates since
 * 2026-12-05, so that short frames refer to the ones before) a message's meaning depends on what came
 * before on that socket: it is shared between sockets that received the same compressed messages
 * before it (`decodeAfter`).
 */
export class SharedDecode {
  /** Recent messages by wire length (lengths rarely collide within a short window). */
  private readonly byLength = new Map<number, Decoded[]>();
  private readonly order: Decoded[] = [];
  hits = 0;
  misses = 0;

  constructor(private readonly capacity = 256) {}

  decode(wire: Buffer, compressed: boolean, decode: () => Buffer): Buffer {
    const candidates = this.byLength.get(wire.length);
    if (candidates) {
      for (const c of candidates) {
        if (c.compressed === compressed && c.wire.equals(wire)) {
          this.hits++;
          return c.message;
        }
      }
    }
    this.misses++;
    // A copy: `wire` is a slice of a socket's read buffer, which may be reused.
    const copy = Buffer.from(wire);
    const entry: Decoded = { wire: copy, compressed, message: compressed ? decode() : copy };
    if (candidates) candidates.push(entry);
    else this.byLength.set(wire.length, [entry]);
    this.order.push(entry);
    if (this.order.length > this.capacity) {
      const old = this.order.shift();
      if (old) {
        const list = this.byLength.get(old.wire.length);
        const at = list?.indexOf(old) ?? -1;
        if (list && at >= 0) list.splice(at, 1);
        if (list && list.length === 0) this.byLength.delete(old.wire.length);
      }
    }
    return entry.message;
  }

  /** First compressed messages of sockets with context takeover (their window was empty): held weakly, so that a node no socket is at goes. */
  private readonly firsts = new Map<number, WeakRef<ContextNode>[]>();

  /**
   * With context takeover: the message after `at` (null: the socket's first compressed one) whose
   * bytes are `wire`. Two sockets that reached the same node received the same compressed messages
   * so far, so their windows are the same and the same bytes mean the same message: decoded once.
   * Nodes hold the nodes after them, sockets hold the node they are at; a node no socket can reach
   * any more is collected.
   */
  decodeAfter(at: ContextNode | null, wire: Buffer, inflate: (window: Buffer) => Buffer): ContextNode {
    if (!at) {
      const refs = (this.firsts.get(wire.length) ?? []).filter((r) => r.deref() !== undefined);
      for (const r of refs) {
        const c = r.deref()!;
        if (c.wire.equals(wire)) {
          this.hits++;
          return c;
        }
      }
      this.misses++;
      const message = inflate(NO_WINDOW);
      const node: ContextNode = { wire: Buffer.from(wire), message, window: windowAfter(NO_WINDOW, message), next: new Map() };
      if (refs.length < 16) refs.push(new WeakRef(node));
      this.firsts.set(wire.length, refs);
      return node;
    }
    const candidates = at.next.get(wire.length);
    for (const c of candidates ?? []) {
      if (c.wire.equals(wire)) {
        this.hits++;
        return c;
      }
    }
    this.misses++;
    const message = inflate(at.window);
    const node: ContextNode = { wire: Buffer.from(wire), message, window: windowAfter(at.window, message), next: new Map() };
    // Sockets that diverged from one node stay few; past that, a node's followers are not kept.
    if (at.next.size < 16) {
      if (candidates) candidates.push(node);
      else at.next.set(wire.length, [node]);
    }
    return node;
  }
}

/** A point in the compressed messages a socket has received (see SharedDecode.decodeAfter). */
export interface ContextNode {
  readonly wire: Buffer;
  readonly message: Buffer;
  /** The last WINDOW_BYTES inflated up to and including this message. */
  readonly window: Buffer;
  readonly next: Map<number, ContextNode[]>;
}

const NO_WINDOW = Buffer.alloc(0);

function windowAfter(window: Buffer, out: Buffer): Buffer {
  return out.length >= WINDOW_BYTES ? Buffer.from(out.subarray(out.length - WINDOW_BYTES)) : Buffer.concat([window, out]).subarray(-WINDOW_BYTES);
}

// ---------------------------------------------------------------------------------------------

function openWs(url: string, options: OpenOptions): Promise<ViewerSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: options.deflate });
    let socket: Socket | null = null;
    const vs: ViewerSocket = {
      closed: new Promise((done) => ws.on('close', (code) => done(code))),
      wireBytesRead: () => socket?.bytesRead ?? 0,
      pause: () => ws.pause(),
      resume: () => ws.resume(),
      pong: () => {
        if (ws.readyState === WebSocket.OPEN) ws.pong();
      },
      terminate: () => ws.terminate(),
    };
    ws.on('upgrade', (res) => (socket = res.socket));
    ws.on('message', (data: Buffer) => options.onMessage(data));
    ws.once('open', () => resolve(vs));
    ws.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------

const OP_CONTINUATION = 0x0;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
/** What a sync-flushed deflate block ends with; permessage-deflate strips it from each message (RFC 7692 §7.2.1). */
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** A compressed message inflated after `window` (the inflater's last 32 KiB; raw deflate's dictionary is exactly that). */
function inflateWith(data: Buffer, window: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([data, DEFLATE_TAIL]), { windowBits: 15, finishFlush: zlib.Z_SYNC_FLUSH, ...(window.length > 0 ? { dictionary: window } : {}) });
}

const UPGRADE_TIMEOUT_MS = 20_000;
/** The LZ77 window of deflate with 15 window bits: how far back a compressed message may refer. */
const WINDOW_BYTES = 32 * 1024;

class RawSocket implements ViewerSocket {
  readonly closed: Promise<number>;
  private closeCode = 1006;
  private deflate = false;
  /** The server said `server_no_context_takeover`: each message inflates on its own, no window to keep. */
  private noContext = false;
  /** The latest WINDOW_BYTES of inflated output: the context a compressed message may refer to. */
  private window: Buffer = Buffer.alloc(0);
  /** With shared decoding and context takeover: where this socket is in the messages decoded once for all (its window is the node's). */
  private context: ContextNode | null = null;
  /** Received bytes not yet parsed into frames. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** A fragmented message being assembled. */
  private fragments: Buffer[] = [];
  private fragmentedCompressed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly onMessage: (data: Buffer) => void,
    private readonly shared: SharedDecode | null,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve(this.closeCode)));
    socket.on('error', () => socket.destroy());
  }

  static open(url: string, options: OpenOptions): Promise<ViewerSocket> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname);
      socket.setNoDelay(true);
      const raw = new RawSocket(socket, options.onMessage, options.shared ?? null);
      let head = Buffer.alloc(0);
      const onHandshake = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onHandshake);
        clearTimeout(timer);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? '')) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${lines[0] ?? 'no status line'}`));
          return;
        }
        const extensions = lines.find((l) => /^sec-websocket-extensions:/i.test(l)) ?? '';
        raw.deflate = /permessage-deflate/i.test(extensions);
        raw.noContext = /server_no_context_takeover/i.test(extensions);
        socket.on('data', (data: Buffer) => raw.receive(data));
        resolve(raw);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) raw.receive(rest);
      };
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no upgrade within ${UPGRADE_TIMEOUT_MS} ms`));
      }, UPGRADE_TIMEOUT_MS);
      socket.once('close', () => clearTimeout(timer));
      socket.on('data', onHandshake);
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('connection closed during the upgrade')));
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          (options.deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' : '') +
          '\r\n',
      );
    });
  }

  wireBytesRead(): number {
    return this.socket.bytesRead;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  pong(): void {
    this.sendControl(OP_PONG, Buffer.alloc(0));
  }

  terminate(): void {
    this.socket.destroy();
  }

  private receive(data: Buffer): void {
    this.chunks.push(data);
    this.buffered += data.length;
    try {
      for (;;) {
        const frame = this.nextFrame();
        if (!frame) return;
        this.onFrame(frame.fin, frame.rsv1, frame.opcode, frame.payload);
      }
    } catch (err) {
      // A frame this client cannot read (bad deflate data, say) or a handler that threw: the viewer is done.
      process.stderr.write(`[load-socket] ${err instanceof Error ? err.message : String(err)}\n`);
      this.closeCode = 1002;
      this.socket.destroy();
    }
  }

  /** Takes exactly `n` buffered bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks, this.buffered);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }

  /** The next whole frame, or null until more bytes arrive. Server frames are never masked. */
  private nextFrame(): { fin: boolean; rsv1: boolean; opcode: number; payload: Buffer } | null {
    if (this.buffered < 2) return null;
    const head = this.chunks[0] && this.chunks[0].length >= 10 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    if (head !== this.chunks[0]) this.chunks = [head];
    const b0 = head[0] ?? 0;
    const b1 = head[1] ?? 0;
    let length = b1 & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (this.buffered < 4) return null;
      length = head.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (this.buffered < 10) return null;
      length = Number(head.readBigUInt64BE(2));
      offset = 10;
    }
    if (this.buffered < offset + length) return null;
    this.take(offset);
    return { fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, payload: this.take(length) };
  }

  private onFrame(fin: boolean, rsv1: boolean, opcode: number, payload: Buffer): void {
    if (opcode === OP_PING) return this.sendControl(OP_PONG, payload);
    if (opcode === OP_PONG) return;
    if (opcode === OP_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.sendControl(OP_CLOSE, payload.subarray(0, 2));
      this.socket.end();
      return;
    }
    if (opcode !== OP_CONTINUATION) this.fragmentedCompressed = rsv1;
    if (!fin) {
      this.fragments.push(payload);
      return;
    }
    const whole = this.fragments.length > 0 ? Buffer.concat([...this.fragments, payload]) : payload;
    this.fragments = [];
    const compressed = this.fragmentedCompressed;
    if (this.shared && (this.noContext || !compressed)) return this.onMessage(this.shared.decode(whole, compressed, () => this.inflate(whole)));
    if (this.shared) {
      if (!this.deflate) throw new Error('a compressed frame on a connection without permessage-deflate');
      this.context = this.shared.decodeAfter(this.context, whole, (window) => inflateWith(whole, window));
      return this.onMessage(this.context.message);
    }
    this.onMessage(compressed ? this.inflate(whole) : whole);
  }

  private inflate(data: Buffer): Buffer {
    if (!this.deflate) throw new Error('a compressed frame on a connection without permessage-deflate');
    const out = inflateWith(data, this.noContext ? NO_WINDOW : this.window);
    // As a browser does: with context takeover the window carries over; without, nothing is kept.
    if (!this.noContext) this.window = out.length >= WINDOW_BYTES ? out.subarray(out.length - WINDOW_BYTES) : Buffer.concat([this.window, out]).subarray(-WINDOW_BYTES);
    return out;
  }

  /** Client frames are masked (RFC 6455 §5.3). */
  private sendControl(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const mask = randomBytes(4);
    const masked = Buffer.alloc(payload.length);
    for (let i = 0; i < payload.length; i++) masked[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
    this.socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]));
  }
}
