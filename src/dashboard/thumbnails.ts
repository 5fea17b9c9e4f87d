/**
 * Live thumbnails: each visible running run's page, as DOM, scaled into a small box. One rrweb
 * Replayer per box, fed by the run's WebSocket with a viewer token, as the viewer is (src/viewer/live.ts);
 * never polled screenshots. At most MAX_LIVE at once, and only for boxes on screen.
 */
import { EventType, Replayer, type eventWithTime } from 'rrweb';
import type { ServerFrame, WireEvent } from '../protocol/index.js';
import { eventCleaner, makeInert } from '../viewer/inert.js';
import { api, sessionPath, type Links } from './api.js';

export const MAX_LIVE = 6;
/** Every event is "in the past" relative to this, so rrweb casts it at once. */
const FAR_FUTURE = Number.MAX_SAFE_INTEGER;
/** After a thumbnail's socket closed on its own, wait this long before opening another for it. */
const RETRY_MS = 5000;

class Thumb {
  private ws: WebSocket | null = null;
  private replayer: Replayer | null = null;
  private clean = eventCleaner();
  private lastSeq = 0;
  private size = { width: 1280, height: 720 };
  private closed = false;
  private readonly resize = new ResizeObserver(() => this.fit());

  constructor(
    readonly id: string,
    private readonly box: HTMLElement,
    private readonly onGone: (id: string) => void,
  ) {
    this.resize.observe(box);
    void this.open();
  }

  private async open(): Promise<void> {
    try {
      // GET /workflows/{id} hands the signed-in dashboard a fresh viewer token for this run.
      const links = await api<Links>('GET', sessionPath(this.id));
      if (this.closed || !links.visual_stream_url) return this.gone();
      const ws = new WebSocket(links.visual_stream_url);
      this.ws = ws;
      ws.onmessage = (m) => this.onFrame(JSON.parse(String(m.data)) as ServerFrame);
      ws.onclose = () => this.gone();
    } catch {
      this.gone();
    }
  }

  private gone(): void {
    if (!this.closed) this.onGone(this.id);
  }

  private onFrame(frame: ServerFrame): void {
    if (frame.t === 'reset') {
      this.replayer?.destroy();
      this.replayer = null;
      this.apply(frame.events);
      this.lastSeq = frame.from + frame.events.length - 1;
    } else if (frame.t === 'events') {
      const skip = this.lastSeq + 1 - frame.from;
      if (skip < 0) return this.ws?.close();
      const fresh = frame.events.slice(skip);
      this.apply(fresh);
      this.lastSeq += fresh.length;
    } else if (frame.t === 'end') {
      this.box.dataset.ended = 'true';
    }
  }

  private apply(events: WireEvent[]): void {
    if (events.length === 0) return;
    const r = this.replayer ?? this.newReplayer();
    for (const e of events) {
      r.addEvent(this.clean(e) as eventWithTime);
      // Nothing before the latest page is needed again: a long run does not grow the dashboard's memory.
      if (e.type === EventType.Meta) queueMicrotask(() => this.forgetBefore(r, e));
    }
  }

  private forgetBefore(r: Replayer, meta: WireEvent): void {
    const events = r.service.state.context.events as WireEvent[];
    const at = events.indexOf(meta);
    if (at > 0) events.splice(0, at);
  }

  private newReplayer(): Replayer {
    this.clean = eventCleaner();
    const r = new Replayer([], {
      root: this.box,
      liveMode: true,
      useVirtualDom: false,
      triggerFocus: false,
      showWarning: false,
      showDebug: false,
      pauseAnimation: false,
      mouseTail: false,
    });
    makeInert(r);
    r.wrapper.setAttribute('aria-hidden', 'true');
    r.on('resize', (d) => {
      this.size = d as { width: number; height: number };
      this.fit();
    });
    r.startLive(FAR_FUTURE);
    this.replayer = r;
    this.box.dataset.live = 'true';
    return r;
  }

  /** Scales the recorded page (its own width) down to the box's width, top-aligned. */
  private fit(): void {
    const wrapper = this.replayer?.wrapper;
    if (!wrapper) return;
    const scale = this.box.clientWidth / this.size.width;
    wrapper.style.transform = `scale(${scale})`;
  }

  destroy(): void {
    this.closed = true;
    this.resize.disconnect();
    this.ws?.close();
    this.replayer?.destroy();
    this.replayer = null;
    delete this.box.dataset.live;
  }
}

/** Which boxes get a live thumbnail: the first MAX_LIVE running runs whose box is on screen. */
export class Thumbnails {
  private readonly live = new Map<string, Thumb>();
  /** Thumbnails whose socket closed on their own, and when another may be opened for them. */
  private readonly closedAt = new Map<string, number>();
  private readonly visible = new Set<string>();
  private readonly boxes = new Map<string, HTMLElement>();
  private order: string[] = [];
  private readonly observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const id = (e.target as HTMLElement).dataset.session ?? '';
      if (e.isIntersecting) this.visible.add(id);
      else this.visible.delete(id);
    }
    this.update();
  });

  /** The running runs' boxes, in list order (newest first). Others lose their thumbnail. */
  sync(running: { id: string; box: HTMLElement }[]): void {
    const wanted = new Map(running.map((r) => [r.id, r.box]));
    for (const [id, box] of this.boxes) {
      if (wanted.get(id) === box) continue;
      this.observer.unobserve(box);
      this.boxes.delete(id);
      this.visible.delete(id);
    }
    for (const [id, box] of wanted) {
      if (this.boxes.has(id)) continue;
      box.dataset.session = id;
      this.boxes.set(id, box);
      this.observer.observe(box);
    }
    this.order = running.map((r) => r.id);
    this.update();
  }

  /** Thumbnails open now (for tests and the bound). */
  get count(): number {
    return this.live.size - this.closedAt.size;
  }

  private update(): void {
    const chosen = new Set(this.order.filter((id) => this.visible.has(id)).slice(0, MAX_LIVE));
    const now = Date.now();
    for (const [id, thumb] of this.live) {
      const closed = this.closedAt.get(id);
      // A closed one keeps showing its last page while chosen, until it may be opened again.
      if (chosen.has(id) && (closed === undefined || closed > now)) continue;
      thumb.destroy();
      this.live.delete(id);
      this.closedAt.delete(id);
    }
    for (const id of chosen) {
      const box = this.boxes.get(id);
      if (this.live.has(id) || !box) continue;
      this.live.set(id, new Thumb(id, box, (gone) => this.closedAt.set(gone, Date.now() + RETRY_MS)));
    }
  }
}
