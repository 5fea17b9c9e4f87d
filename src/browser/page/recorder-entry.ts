/**
 * Runs inside the recorded page (bundled to dist/page/recorder.js and injected before any page script).
 * Starts rrweb once per document, in the top frame and in each frame its parent cannot read (another
 * origin), which records itself and sends through the binding of its own window, never through the
 * page. Same-origin frames, rrweb's own hidden iframe among them, are recorded by the frame above:
 * the init script runs in every frame, and without the guard they would be recorded twice.
 */
import { EventType, record } from 'rrweb';
import type { eventWithTime, recordOptions } from 'rrweb';
import { absoluteCssUrls } from './absolute-css.js';
import { CHECKPOINT_MARK, FRAME_HELLO, SNAPSHOT_MARK } from './checkpoint-mark.js';

export interface PageRecorderConfig {
  bindingName: string;
  flushMs: number;
  maxBatch: number;
  /** Field values inside elements matching this are masked, besides passwords (functions cannot travel in the JSON config). */
  maskInputsWithin?: string;
  options: Omit<recordOptions<eventWithTime>, 'emit' | 'maskInputFn'>;
}

interface DomcastPageApi {
  flush: () => Promise<void>;
  takeFullSnapshot: () => void;
  /**
   * This page's recording becomes what the session shows (its tab was switched to): sends what it
   * buffered, then CHECKPOINT_MARK, then a fresh Meta + FullSnapshot, so the server can take
   * everything after the mark. Starts recording first if the binding was not there when the
   * document loaded (a popup's first document runs before the server can add it).
   */
  checkpoint: () => Promise<void>;
  /** A frame that records itself says so (FRAME_HELLO), if the binding is there now (the server adds it late to out-of-process frames). */
  hello: () => void;
  /**
   * rrweb's id of `node` (an `<iframe>` of this document or of a same-origin frame under it), or -1;
   * what was buffered is sent first, so the node's own event reaches the server before anything
   * attached to it.
   */
  idOf: (node: Node) => number;
  /**
   * Take control: where the element rrweb recorded as `id` is, in CSS px of the top frame's viewport
   * (elements of same-origin frames included), or null when this page's recording has no such element.
   * With `reveal`, an element out of view is scrolled into it first (a click must land on it).
   */
  locate: (id: number, reveal: boolean) => ElementBox | null;
}

/** An element's border box in the top viewport, CSS px. */
export interface ElementBox {
  x: number;
  y: number;
  width: number;
  height: number;
}


declare global {
  interface Window {
    __domcastConfig?: PageRecorderConfig;
    __domcast?: DomcastPageApi;
  }
}

/** rrweb calls this only for the field types masked in maskInputOptions; it keeps what is not secret in clear. */
function maskFieldsWithin(selector: string): (text: string, element: HTMLElement) => string {
  return (text, element) => {
    // By tag, not instanceof: fields in same-origin iframes belong to another realm.
    const password = element.tagName === 'INPUT' && ((element as HTMLInputElement).type === 'password' || element.hasAttribute('data-rr-is-password'));
    return password || element.closest(selector) ? '*'.repeat(text.length) : text;
  };
}

/**
 * What the recorder's own code calls, taken before any page script runs: a page may replace
 * Array.prototype.push, JSON.stringify, setTimeout, Promise.prototype.then or addEventListener
 * afterwards (to drop our snapshots, say) and our code still calls the originals. (rrweb's own
 * code uses the page's globals; what a page does to them changes only its own recording, and the
 * server bounds that whatever it holds.)
 */
const intrinsics = {
  stringify: JSON.stringify,
  apply: Reflect.apply,
  defineProperty: Object.defineProperty,
  freeze: Object.freeze,
  setTimeout: window.setTimeout.bind(window) as (fn: () => void, ms: number) => number,
  now: performance.now.bind(performance) as () => number,
  clearTimeout: window.clearTimeout.bind(window) as (id: number) => void,
  then: Promise.prototype.then,
  resolve: Promise.resolve.bind(Promise),
  addEventListener: EventTarget.prototype.addEventListener,
  closest: Element.prototype.closest,
  getBoundingClientRect: Element.prototype.getBoundingClientRect,
  scrollIntoView: Element.prototype.scrollIntoView,
};

interface Recording {
  flush: () => Promise<void>;
  takeFullSnapshot: () => void;
  send: (text: string) => unknown;
}

/** The DevTools binding, if the server has added it to this document: it takes one string and answers nothing. */
function binding(config: PageRecorderConfig): ((text: string) => unknown) | null {
  const send = (window as unknown as Record<string, unknown>)[config.bindingName];
  return typeof send === 'function' ? (send as (text: string) => unknown) : null;
}

function start(config: PageRecorderConfig, send: (text: string) => unknown): Recording {
  const { stringify, apply, defineProperty, setTimeout, clearTimeout, then, resolve, now } = intrinsics;
  let buffer: eventWithTime[] = [];
  let count = 0;
  let timer: number | undefined;
  /** A flush is queued as a microtask (at the end of the task that emitted). */
  let queued = false;
  let lastFlush = -Infinity;
  const ignore = (): undefined => undefined;
  const nodeOf = (id: number): Node | null => record.mirror.getNode(id);

  const flush = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (count === 0) return resolve();
    lastFlush = now();
    const batch = buffer;
    buffer = [];
    count = 0;
    // Serialized here so the server gets one string per batch, not a structured-clone walk per event.
    const sent = resolve(apply(send, window, [stringify(batch)]) as undefined);
    return apply(then, sent, [ignore, ignore]) as Promise<void>;
  };

  record({
    ...config.options,
    ...(config.maskInputsWithin ? { maskInputFn: maskFieldsWithin(config.maskInputsWithin) } : {}),
    emit(event) {
      absoluteCssUrls(event, nodeOf, document.baseURI);
      // Not buffer.push: that is the page's to replace.
      defineProperty(buffer, count++, { value: event, writable: true, enumerable: true, configurable: true });
      if (event.type === EventType.FullSnapshot) {
        // Sent at once, then the mark: the server asks the cross-origin frames under this one for theirs.
        void flush();
        apply(send, window, [SNAPSHOT_MARK]);
      } else if (count >= config.maxBatch) void flush();
      else if (timer === undefined && !queued) {
        // Leading edge: after flushMs of quiet, what this task emits leaves as soon as the task
        // ends (rrweb emits a task's mutations together); within flushMs of the last batch, events
        // wait for the rest of that window and leave as one batch (a busy page makes at most one
        // call per flushMs, besides full batches).
        const quietFor = now() - lastFlush;
        if (quietFor >= config.flushMs) {
          queued = true;
          apply(then, resolve(), [
            () => {
              queued = false;
              void flush();
            },
          ]);
        } else timer = setTimeout(() => void flush(), config.flushMs - quietFor);
      }
    },
  });

  return { flush, takeFullSnapshot: () => record.takeFullSnapshot(true), send: (text) => apply(send, window, [text]) };
}

/**
 * `inFrame`: a frame that records itself starts only when the server asks (checkpoint()), once the
 * frame above it is in the stream; until then it only says it is there.
 */
function install(config: PageRecorderConfig, inFrame: boolean): void {
  const { apply, defineProperty, freeze, resolve, addEventListener } = intrinsics;
  const found = binding(config);
  let recording: Recording | null = found && !inFrame ? start(config, found) : null;
  const hello = (): void => {
    const send = binding(config);
    if (inFrame && send) apply(send, window, [FRAME_HELLO]);
  };
  const blocked = `.rr-block, ${config.options.blockSelector ?? '.rr-block'}`;
  const idOf = (node: Node): number => {
    if (!recording) return -1;
    // A frame inside a blocked region (data-domcast-private, block_selector) is recorded as an empty
    // box, as the region is: its document must not be attached to it. Same-origin frames up to here included.
    for (let el: Element | null = node as Element; el; el = el.ownerDocument.defaultView?.frameElement ?? null) {
      if (apply(intrinsics.closest, el, [blocked])) return -1;
    }
    void recording.flush();
    return record.mirror.getId(node);
  };
  const flush = (): Promise<void> => (recording ? recording.flush() : resolve());
  const checkpoint = async (): Promise<void> => {
    if (recording) {
      await recording.flush();
      recording.send(CHECKPOINT_MARK);
      recording.takeFullSnapshot();
    } else {
      const late = binding(config);
      if (!late) return;
      apply(late, window, [CHECKPOINT_MARK]);
      recording = start(config, late); // rrweb's first Meta + FullSnapshot
    }
    await recording.flush();
  };
  const locate = (id: number, reveal: boolean): ElementBox | null => {
    const node = recording ? record.mirror.getNode(id) : null;
    if (!node || node.nodeType !== 1) return null;
    const rect = (el: Element): DOMRect => apply(intrinsics.getBoundingClientRect, el, []) as DOMRect;
    let r = rect(node as Element);
    if (reveal && (r.bottom < 0 || r.right < 0 || r.top > window.innerHeight || r.left > window.innerWidth)) {
      apply(intrinsics.scrollIntoView, node, [{ block: 'center', inline: 'center' }]);
      r = rect(node as Element);
    }
    let x = r.left;
    let y = r.top;
    // An element of a same-origin frame: its frame's content box, up to the top frame.
    for (let win = node.ownerDocument?.defaultView ?? null; win && win !== window; ) {
      const frame = win.frameElement;
      if (!frame) return null;
      const f = rect(frame);
      x += f.left + frame.clientLeft;
      y += f.top + frame.clientTop;
      win = frame.ownerDocument.defaultView;
    }
    return { x, y, width: r.width, height: r.height };
  };
  // Read-only: the server flushes and checkpoints through it, a page script must not swap it out.
  defineProperty(window, '__domcast', {
    value: freeze({ flush, takeFullSnapshot: () => recording?.takeFullSnapshot(), checkpoint, hello, idOf, locate }),
    writable: false,
    configurable: false,
  });
  apply(addEventListener, window, ['pagehide', () => void flush()]);
  apply(addEventListener, document, ['visibilitychange', () => void flush()]);
  hello();
}

/** This frame's parent cannot be read from here (another origin, or a sandbox): rrweb there sees nothing of this document. */
function parentOutOfReach(): boolean {
  try {
    return !window.parent.document;
  } catch {
    return true;
  }
}

if (!window.__domcast && window.__domcastConfig) {
  if (window === window.top) install(window.__domcastConfig, false);
  else if (parentOutOfReach()) install(window.__domcastConfig, true);
}
