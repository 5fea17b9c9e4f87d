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
  options: Omit<recordOptions<eventWithTime>, 'emit'>;
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

function start(config: PageRecorderConfig): void {
  const send = (window as unknown as Record<string, (json: string) => Promise<void>>)[config.bindingName];
  if (typeof send !== 'function') return;
  let buffer: eventWithTime[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;

  const flush = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return Promise.resolve();
    const batch = buffer;
    buffer = [];
    // Serialized here so the server gets one string per batch, not a structured-clone walk per event.
    return send(JSON.stringify(batch)).catch(() => undefined);
  };

  record({
    ...config.options,
    emit(event) {
      buffer.push(event);
      if (buffer.length >= config.maxBatch) void flush();
      else if (timer === undefined) timer = setTimeout(() => void flush(), config.flushMs);
    },
  });

  window.__domcast = { flush, takeFullSnapshot: () => record.takeFullSnapshot(true) };
  window.addEventListener('pagehide', () => void flush());
  document.addEventListener('visibilitychange', () => void flush());
}

if (window === window.top && !window.__domcast && window.__domcastConfig) start(window.__domcastConfig);
