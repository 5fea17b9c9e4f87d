import { createRequire } from 'node:module';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import type { WebSocket } from 'ws';

/**
 * permessage-deflate, compressed once per frame instead of once per viewer.
 *
 * `ws` compresses each message separately for each connection (context takeover), on the thread
 * pool, four at a time per process: with 1,000 viewers of one session that capped delivery at about
 * 2,000 frames/s (10% of what was needed), queued frames grew memory by 300 MB and heartbeats waited
 * behind them (docs/BENCHMARKS.md, Load). Here a frame is deflated once, on its own (no context, so
 * any viewer's inflater takes it whatever it received before), and the same bytes are written to
 * every viewer that negotiated the extension. The price is ratio on small frames (about 2× instead
 * of 9×); large ones (snapshots, resets) compress as before.
 *
 * This writes through the socket's `Sender` (`Sender.frame`, `sender.sendFrame`: public in ws's
 * code, not in its docs); `ws` itself never compresses (its threshold is out of reach), so its own
 * sends and ours never interleave with a compression in progress and stay in order.
 */

/** Frames shorter than this go uncompressed: deflate without context gains little on them. */
export const COMPRESS_MIN_BYTES = 1024;

/**
 * For `new WebSocketServer({ perMessageDeflate })`: negotiate the extension, but never compress in
 * ws; and say `server_no_context_takeover`, which is what we do, so clients need not keep a window.
 */
export const NEGOTIATE_ONLY = { threshold: Number.MAX_SAFE_INTEGER, serverMaxWindowBits: 15, serverNoContextTakeover: true } as const;

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

const { Sender } = createRequire(import.meta.url)('ws') as { Sender?: SenderClass };
const TEXT = 0x1;
const deflatedFrames = new WeakMap<Buffer, Buffer>();

/** The frame's deflate payload: a raw stream of it alone, sync-flushed, minus the 00 00 ff ff tail (RFC 7692 §7.2.1). */
function deflated(frame: Buffer): Buffer {
  let out = deflatedFrames.get(frame);
  if (!out) {
    const raw = deflateRawSync(frame, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    out = raw.subarray(0, raw.length - 4);
    deflatedFrames.set(frame, out);
  }
  return out;
}

/** True when this viewer can take our frames: it negotiated deflate with the full 32 KiB window we compress with. */
function takesSharedDeflate(ws: WebSocket): boolean {
  const internals = ws as unknown as SocketInternals;
  const params = internals._extensions?.['permessage-deflate']?.params;
  if (!params || typeof internals._sender?.sendFrame !== 'function' || !Sender) return false;
  const bits = params.server_max_window_bits;
  return bits === undefined || bits === true || Number(bits) >= 15;
}

/**
 * Sends a JSON text frame that may go to many viewers. Pass the same Buffer to every viewer of a
 * batch: it is compressed the first time and the result reused (held as long as the Buffer is).
 */
export function sendShared(ws: WebSocket, frame: Buffer | string): void {
  if (ws.readyState !== ws.OPEN) return;
  const buf = typeof frame === 'string' ? Buffer.from(frame) : frame;
  if (buf.length < COMPRESS_MIN_BYTES || !takesSharedDeflate(ws)) {
    ws.send(buf, { binary: false, compress: false });
    return;
  }
  const sender = (ws as unknown as Required<SocketInternals>)._sender as { sendFrame: (list: Buffer[]) => void };
  sender.sendFrame(Sender!.frame(deflated(buf), { fin: true, rsv1: true, opcode: TEXT, mask: false, readOnly: true }));
}
