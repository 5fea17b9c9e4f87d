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

function start(config: PageRecorderConfig): void {
  const send = (window as unknown as Record<string, (json: string) => Promise<void>>)[config.bindingName];
  if (typeof send !== 'function') return;
  // Taken before any page script runs: a page that replaces JSON.stringify must not rewrite what we send.
  const stringify = JSON.stringify;
  let buffer: eventWithTime[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;

  const flush = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return Promise.resolve();
    const batch = buffer;
    buffer = [];
    // Serialized here so the server gets one string per batch, not a structured-clone walk per event.
    return send(stringify(batch)).catch(() => undefined);
  };

  record({
    ...config.options,
    ...(config.maskInputsWithin ? { maskInputFn: maskFieldsWithin(config.maskInputsWithin) } : {}),
    emit(event) {
      buffer.push(event);
      if (buffer.length >= config.maxBatch) void flush();
      else if (timer === undefined) timer = setTimeout(() => void flush(), config.flushMs);
    },
  });

  // Read-only: the server flushes and checkpoints through it, a page script must not swap it out.
  Object.defineProperty(window, '__domcast', {
    value: Object.freeze({ flush, takeFullSnapshot: () => record.takeFullSnapshot(true) }),
    writable: false,
    configurable: false,
  });
  window.addEventListener('pagehide', () => void flush());
  document.addEventListener('visibilitychange', () => void flush());
}

if (window === window.top && !window.__domcast && window.__domcastConfig) start(window.__domcastConfig);
