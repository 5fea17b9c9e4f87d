import WebSocket from 'ws';
import type { ServerFrame } from '../../src/protocol/index.js';

/** A viewer that keeps only what these tests check: seqs in order, resets, frames. */
export class SeqViewer {
  lastSeq = 0;
  /** Seq of the first event it received (from its first reset or events frame). */
  firstSeq = 0;
  frames = 0;
  resets = 0;
  gaps = 0;
  duplicates = 0;
  readonly ws: WebSocket;

  constructor(url: string) {
    // No compression, so the bytes queued for it are the bytes sent (random payloads would not shrink anyway).
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.open = new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as ServerFrame;
      if (frame.t === 'reset' || frame.t === 'events') this.frames++;
      if ((frame.t === 'reset' || frame.t === 'events') && this.firstSeq === 0 && frame.events.length > 0) this.firstSeq = frame.from;
      if (frame.t === 'reset') {
        this.resets++;
        this.lastSeq = frame.from + frame.events.length - 1;
      } else if (frame.t === 'events') {
        if (frame.from > this.lastSeq + 1) this.gaps++;
        if (frame.from <= this.lastSeq) this.duplicates++;
        this.lastSeq = Math.max(this.lastSeq, frame.from + frame.events.length - 1);
      }
    });
  }

  /** Settles once the socket is open (or failed), however late it is asked. */
  private readonly open: Promise<void>;

  opened(): Promise<void> {
    return this.open;
  }

  /** Stops reading its socket: the server's sends pile up, as with a frozen or very slow client. */
  stall(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  resume(): void {
    (this.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  }
}
