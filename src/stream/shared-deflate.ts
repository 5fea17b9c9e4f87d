import { promisify } from 'node:util';
import { constants as zlibConstants, deflateRaw, deflateRawSync } from 'node:zlib';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

/**
 * permessage-deflate, compressed once per frame instead of once per viewer.
 *
 * `ws` compresses each message separately for each connection (context takeover), on the thread
 * pool, four at a time per process: with 1,000 viewers of one session that capped delivery at about
 * 2,000 frames/s (10% of what was needed), queued frames grew memory by 300 MB and heartbeats waited
 * behind them (docs/BENCHMARKS.md, Load). Here a frame is deflated once, on its own (no context, so
 * any viewer's inflater takes it whatever it received before), and the same bytes are written to
 * every viewer that negotiated the extension.
 *
 * Context without a compressor per viewer: the extension is negotiated with context takeover, so
 * each viewer's inflater keeps the last 32 KiB it inflated. We track that window (`Window`): every
 * viewer that received the same compressed frames shares one object. A frame for such viewers is
 * compressed once with their window as the dictionary, which lets a 200 B mutation refer to the one
 * before it (about 20–40 B on the wire instead of 120–200). At most one window per frame gets this;
 * a viewer whose window differs gets the frame compressed alone, after which its window is that
 * frame's and it meets the others again when a channel starts its audience over (`startOver`: one
 * frame compressed alone for all, sent whenever a channel's viewers' windows differ, as after a join).
 *
 * This writes through the socket's `Sender` (`Sender.frame`, `sender.sendFrame`: exported by ws's
 * public entry, not in its docs; package.json pins ws exactly); `ws` itself never compresses (its
 * threshold is out of reach), so its own sends and ours never interleave with a compression in
 * progress and stay in order. At load, `SHARED_DEFLATE_PROBLEM` checks that what we rely on is
 * there and frames as we expect; if not, the hub lets ws compress as usual (slower for crowds) and
 * /health/visual says so.
 */

/** Frames shorter than this go uncompressed when compressed alone: deflate without context gains little on them. */
export const COMPRESS_MIN_BYTES = 1024;
/** Frames this long or longer are compressed against the viewer's window: even a short one mostly repeats what came before. */
export const COMPRESS_WITH_WINDOW_MIN_BYTES = 64;

/**
 * For `new WebSocketServer({ perMessageDeflate })`: negotiate the extension, but never compress in
 * ws; with context takeover (the default), so that clients keep their window and frames may refer
 * to it. A client that asks for `server_no_context_takeover` gets it, and frames compressed alone.
 */
export const NEGOTIATE_ONLY = { threshold: Number.MAX_SAFE_INTEGER, serverMaxWindowBits: 15 } as const;

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
interface SenderClass {
  frame(data: Buffer, options: FrameOptions): Buffer[];
}
interface SocketInternals {
  _sender?: { sendFrame?: (list: Buffer[]) => void };
  _extensions?: Record<string, { params?: Record<string, unknown> } | undefined>;
}

const TEXT = 0x1;

/**
 * Why `candidate` cannot serve as ws's `Sender` for shared deflate, or null when it can: it must
 * frame a compressed text message exactly as RFC 6455 says, and its instances must write frames.
 */
export function senderProblem(candidate: unknown): string | null {
  const S = candidate as Partial<SenderClass> & { prototype?: { sendFrame?: unknown } } | undefined;
  if (typeof S !== 'function' && typeof S !== 'object') return 'ws exports no Sender';
  if (typeof S?.frame !== 'function') return 'ws.Sender has no static frame()';
  if (typeof S.prototype?.sendFrame !== 'function') return 'ws.Sender has no sendFrame()';
  try {
    const out = S.frame(Buffer.from('ok'), { fin: true, rsv1: true, opcode: TEXT, mask: false, readOnly: true });
    const bytes = Array.isArray(out) ? Buffer.concat(out) : null;
    // FIN + RSV1 + text opcode, unmasked length 2, then the payload.
    if (!bytes?.equals(Buffer.from([0xc1, 0x02, 0x6f, 0x6b]))) return 'ws.Sender.frame() frames differently than expected';
  } catch (err) {
    return `ws.Sender.frame() threw: ${(err as Error).message}`;
  }
  return null;
}

const Sender = (wsModule as unknown as { Sender?: SenderClass }).Sender;
/** Why shared deflate is off in this process (the installed ws lacks what it relies on), or null. */
export const SHARED_DEFLATE_PROBLEM = senderProblem(Sender);

/** Sockets of a hub without shared deflate: ws compresses what it sends them itself. */
const wsCompresses = new WeakSet<WebSocket>();
/** Frames sent through ws's own compression path since start (0 unless shared deflate is off). */
export const fallback = { frames: 0 };

/** From now on this viewer's frames go through ws's own per-message compression. */
export function letWsCompress(ws: WebSocket): void {
  wsCompresses.add(ws);
}
const deflatedFrames = new WeakMap<Buffer, Buffer>();

/**
 * Frames this large are deflated on the thread pool, not the event loop (a reset of a big page is
 * megabytes: tens of ms of deflate). Until it is done, that viewer's later frames wait behind it.
 */
export const ASYNC_DEFLATE_MIN_BYTES = 128 * 1024;

const deflateRawAsync = promisify(deflateRaw);
const DEFLATE_OPTIONS = { finishFlush: zlibConstants.Z_SYNC_FLUSH };
/** The deflate of a large frame in progress, shared by every viewer waiting for it. */
const inflight = new WeakMap<Buffer, Promise<Buffer>>();

/** The frame's deflate payload: a raw stream of it alone, sync-flushed, minus the 00 00 ff ff tail (RFC 7692 §7.2.1). */
function deflated(frame: Buffer): Buffer {
  let out = deflatedFrames.get(frame);
  if (!out) {
    const raw = deflateRawSync(frame, DEFLATE_OPTIONS);
    out = raw.subarray(0, raw.length - 4);
    deflatedFrames.set(frame, out);
  }
  return out;
}

function deflateLater(frame: Buffer): Promise<Buffer> {
  let p = inflight.get(frame);
  if (!p) {
    p = deflateRawAsync(frame, DEFLATE_OPTIONS).then((raw) => {
      const out = raw.subarray(0, raw.length - 4);
      deflatedFrames.set(frame, out);
      inflight.delete(frame);
      return out;
    });
    inflight.set(frame, p);
  }
  return p;
}

/** The LZ77 window of permessage-deflate at 15 bits: what an inflater can refer back to. */
const WINDOW_BYTES = 32 * 1024;
const NO_BYTES = Buffer.alloc(0);

/**
 * The end of a viewer's inflater window as far as we know it: the last bytes (at most 32 KiB) of the
 * compressed frames it inflated, the same for every viewer that holds this object. What came before
 * `tail` is unknown, so a frame compressed against it refers to `tail` alone.
 */
class Window {
  constructor(readonly tail: Buffer) {}

  after(frame: Buffer): Window {
    if (frame.length >= WINDOW_BYTES) return new Window(Buffer.from(frame.subarray(frame.length - WINDOW_BYTES)));
    const keep = Math.min(this.tail.length, WINDOW_BYTES - frame.length);
    return new Window(Buffer.concat([this.tail.subarray(this.tail.length - keep), frame]));
  }
}

/** Each viewer's window (none until its first compressed frame). */
const windows = new WeakMap<WebSocket, Window>();
/** The window of every viewer that received this frame compressed alone. */
const windowsAfterAlone = new WeakMap<Buffer, Window>();
/** This frame compressed against one window (the first that asked), and the window after it. */
const againstWindow = new WeakMap<Buffer, { from: Window; payload: Buffer; window: Window }>();
/** Frames that every viewer gets compressed alone, so that their windows become one (`startOver`). */
const startingOver = new WeakSet<Buffer>();
/** Frames written compressed, since start: against a viewer's window, and alone. */
export const compressed = { against_window: 0, alone: 0 };

function windowAfterAlone(frame: Buffer): Window {
  let w = windowsAfterAlone.get(frame);
  if (!w) {
    w = new Window(NO_BYTES).after(frame);
    windowsAfterAlone.set(frame, w);
  }
  return w;
}

/** True when this viewer keeps its window between our frames (context takeover on our side). */
function keepsWindow(ws: WebSocket): boolean {
  return (ws as unknown as SocketInternals)._extensions?.['permessage-deflate']?.params?.server_no_context_takeover !== true;
}

/**
 * False when these viewers' inflaters hold different windows (or one holds none yet): the channel
 * then sends its next frame with `startOver`. Viewers that take no shared deflate, or keep no
 * window, do not count.
 */
export function shareOneWindow(sockets: Iterable<WebSocket>): boolean {
  let seen: Window | undefined;
  for (const ws of sockets) {
    if (!takesSharedDeflate(ws) || !keepsWindow(ws)) continue;
    const w = windows.get(ws);
    if (!w) return false;
    if (seen && w !== seen) return false;
    seen = w;
  }
  return true;
}

/** Every viewer gets this frame compressed alone: afterwards they share one window. */
export function startOver(frame: Buffer): void {
  startingOver.add(frame);
}

/** True when this viewer can take our frames: it negotiated deflate with the full 32 KiB window we compress with. */
function takesSharedDeflate(ws: WebSocket): boolean {
  const internals = ws as unknown as SocketInternals;
  const params = internals._extensions?.['permessage-deflate']?.params;
  if (!params || SHARED_DEFLATE_PROBLEM !== null || wsCompresses.has(ws) || typeof internals._sender?.sendFrame !== 'function') return false;
  const bits = params.server_max_window_bits;
  return bits === undefined || bits === true || Number(bits) >= 15;
}

type Queued = { frame: Buffer } | { close: { code: number; reason: string } };

/** A viewer's frames waiting behind a large frame being deflated, in order; a close waits too. */
interface Outbox {
  queue: Queued[];
  bytes: number;
}

const outboxes = new WeakMap<WebSocket, Outbox>();

function needsAsyncDeflate(ws: WebSocket, frame: Buffer): boolean {
  return frame.length >= ASYNC_DEFLATE_MIN_BYTES && !deflatedFrames.has(frame) && takesSharedDeflate(ws);
}

function write(ws: WebSocket, buf: Buffer): void {
  if (ws.readyState !== ws.OPEN) return;
  if (wsCompresses.has(ws)) {
    fallback.frames++;
    ws.send(buf, { binary: false });
    return;
  }
  const payload = takesSharedDeflate(ws) ? compressFor(ws, buf) : null;
  if (!payload) {
    ws.send(buf, { binary: false, compress: false });
    return;
  }
  const sender = (ws as unknown as Required<SocketInternals>)._sender as { sendFrame: (list: Buffer[]) => void };
  sender.sendFrame(Sender!.frame(payload, { fin: true, rsv1: true, opcode: TEXT, mask: false, readOnly: true }));
}

/**
 * The deflate payload of `frame` for this viewer, or null to send it as it is (an uncompressed
 * message leaves the inflater's window alone). Called as the frame is written, in the socket's order,
 * so the viewer's window moves exactly as its inflater's does.
 */
function compressFor(ws: WebSocket, frame: Buffer): Buffer | null {
  const window = keepsWindow(ws) ? windows.get(ws) : undefined;
  // Large frames are compressed alone (off the loop from ASYNC_DEFLATE_MIN_BYTES): at 32 KiB or
  // more, the window after them is theirs whatever came before, so everyone who gets them meets.
  if (window && frame.length >= COMPRESS_WITH_WINDOW_MIN_BYTES && frame.length < ASYNC_DEFLATE_MIN_BYTES && !startingOver.has(frame)) {
    let done = againstWindow.get(frame);
    if (!done) {
      const raw = deflateRawSync(frame, window.tail.length > 0 ? { ...DEFLATE_OPTIONS, dictionary: window.tail } : DEFLATE_OPTIONS);
      done = { from: window, payload: raw.subarray(0, raw.length - 4), window: window.after(frame) };
      againstWindow.set(frame, done);
    }
    if (done.from === window) {
      windows.set(ws, done.window);
      compressed.against_window++;
      return done.payload;
    }
  }
  const alone = frame.length >= COMPRESS_MIN_BYTES || (startingOver.has(frame) && frame.length >= COMPRESS_WITH_WINDOW_MIN_BYTES);
  if (!alone) return null;
  if (keepsWindow(ws)) windows.set(ws, windowAfterAlone(frame));
  compressed.alone++;
  return deflated(frame);
}

async function pump(ws: WebSocket, box: Outbox): Promise<void> {
  try {
    while (box.queue.length > 0 && ws.readyState === ws.OPEN) {
      const item = box.queue[0]!;
      if ('frame' in item && needsAsyncDeflate(ws, item.frame)) await deflateLater(item.frame);
      box.queue.shift();
      if ('frame' in item) {
        box.bytes -= item.frame.length;
        write(ws, item.frame);
      } else ws.close(item.close.code, item.close.reason);
    }
  } catch {
    ws.terminate(); // deflate failed: this viewer's stream cannot go on in order
  } finally {
    outboxes.delete(ws);
  }
}

/**
 * Sends a JSON text frame that may go to many viewers. Pass the same Buffer to every viewer of a
 * batch: it is compressed the first time and the result reused (held as long as the Buffer is).
 * Large frames are compressed off the event loop; the viewer's frames stay in order.
 */
export function sendShared(ws: WebSocket, frame: Buffer | string): void {
  if (ws.readyState !== ws.OPEN) return;
  const buf = typeof frame === 'string' ? Buffer.from(frame) : frame;
  const waiting = outboxes.get(ws);
  if (waiting) {
    waiting.queue.push({ frame: buf });
    waiting.bytes += buf.length;
    return;
  }
  if (!needsAsyncDeflate(ws, buf)) return write(ws, buf);
  const box: Outbox = { queue: [{ frame: buf }], bytes: buf.length };
  outboxes.set(ws, box);
  void pump(ws, box);
}

/** Closes after every frame already sent to this viewer has gone out. */
export function closeShared(ws: WebSocket, code: number, reason: string): void {
  const waiting = outboxes.get(ws);
  if (waiting) waiting.queue.push({ close: { code, reason } });
  else ws.close(code, reason);
}

/** Bytes not yet written to this viewer: in its socket's buffer, and waiting behind a deflate. */
export function unsentBytes(ws: WebSocket): number {
  return ws.bufferedAmount + (outboxes.get(ws)?.bytes ?? 0);
}
