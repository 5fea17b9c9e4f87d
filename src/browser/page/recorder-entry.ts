/**
 * Runs inside the recorded page (bundled to dist/page/recorder.js and injected before any page script).
 * Starts rrweb once, in the top frame only: rrweb creates a hidden iframe of its own, and the init
 * script runs in every frame, so without the guard the page would record itself recursively.
 */
import { record } from 'rrweb';
import type { eventWithTime, recordOptions } from 'rrweb';

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
  clearTimeout: window.clearTimeout.bind(window) as (id: number) => void,
  then: Promise.prototype.then,
  resolve: Promise.resolve.bind(Promise),
  addEventListener: EventTarget.prototype.addEventListener,
};

function start(config: PageRecorderConfig): void {
  const { stringify, apply, defineProperty, freeze, setTimeout, clearTimeout, then, resolve, addEventListener } = intrinsics;
  // A raw DevTools binding: it takes one string and answers nothing (undefined).
  const send = (window as unknown as Record<string, (json: string) => unknown>)[config.bindingName];
  if (typeof send !== 'function') return;
  let buffer: eventWithTime[] = [];
  let count = 0;
  let timer: number | undefined;
  const ignore = (): undefined => undefined;

  const flush = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (count === 0) return resolve();
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
      // Not buffer.push: that is the page's to replace.
      defineProperty(buffer, count++, { value: event, writable: true, enumerable: true, configurable: true });
      if (count >= config.maxBatch) void flush();
      else if (timer === undefined) timer = setTimeout(() => void flush(), config.flushMs);
    },
  });

  // Read-only: the server flushes and checkpoints through it, a page script must not swap it out.
  defineProperty(window, '__domcast', {
    value: freeze({ flush, takeFullSnapshot: () => record.takeFullSnapshot(true) }),
    writable: false,
    configurable: false,
  });
  apply(addEventListener, window, ['pagehide', () => void flush()]);
  apply(addEventListener, document, ['visibilitychange', () => void flush()]);
}

if (window === window.top && !window.__domcast && window.__domcastConfig) start(window.__domcastConfig);
