import type { BrowserContext, Page } from 'playwright-core';
import { readBuiltAsset } from '../common/index.js';
import type { PageRecorderConfig } from './page/recorder-entry.js';

export type VisualQuality = 'standard' | 'high';

/** Per-run privacy controls (elements marked `data-domcast-private` are always blocked on top of these). */
export interface PrivacyOptions {
  /** Every input's value is recorded as asterisks. */
  maskAllInputs: boolean;
  /** Text inside matching elements is recorded as asterisks. */
  maskTextSelector?: string;
  /** Matching elements are recorded as empty placeholders of the same size. */
  blockSelector?: string;
}

/** The one binding through which a page hands batches of rrweb events to the server. */
const BINDING = '__domcastEmit';

/** Batching: a burst leaves the page as one call; nothing waits longer than FLUSH_MS (the issue allows 50). */
const FLUSH_MS = 10;
const MAX_BATCH = 500;

function recordOptions(quality: VisualQuality): PageRecorderConfig['options'] {
  const common = {
    // Passwords stay masked (rrweb's default, stated so nobody drops it by accident).
    maskInputOptions: { password: true },
    inlineStylesheet: true,
    // Viewers must not fetch from the recorded site: images travel as data URLs.
    inlineImages: true,
    collectFonts: false,
  };
  if (quality === 'high') {
    return {
      ...common,
      recordCanvas: true,
      sampling: { mousemove: 0, mousemoveCallback: 50, scroll: 16, input: 'all', canvas: 10 },
      dataURLOptions: { type: 'image/webp', quality: 0.6 },
    };
  }
  return {
    ...common,
    recordCanvas: false,
    // input: 'all': 'last' records only on change (blur), so a viewer would not see typing as it happens.
    sampling: { mousemove: 50, mousemoveCallback: 100, scroll: 100, input: 'all' },
  };
}

let bundle: string | undefined;

/** The init script: config, then the rrweb bundle (guarded to start once, in the top frame). */
export function recorderScript(quality: VisualQuality): string {
  bundle ??= readBuiltAsset('page/recorder.js');
  const config: PageRecorderConfig = { bindingName: BINDING, flushMs: FLUSH_MS, maxBatch: MAX_BATCH, options: recordOptions(quality) };
  return `window.__domcastConfig = ${JSON.stringify(config)};\n${bundle}`;
}

export interface RecorderHandle {
  /** Pushes out whatever the page still buffers; resolves once the server has received it. */
  flush(): Promise<void>;
  /** Asks the page for a fresh Meta + FullSnapshot (a new checkpoint). */
  takeFullSnapshot(): Promise<void>;
}

/**
 * Injects the recorder into every document of `page` before its own scripts run. Each batch arrives
 * as the JSON text of an array of rrweb events; only the top frame of `page` is accepted.
 */
export async function attachRecorder(
  context: BrowserContext,
  page: Page,
  quality: VisualQuality,
  onBatch: (json: string) => void,
): Promise<RecorderHandle> {
  await context.exposeBinding(BINDING, (source, json: unknown) => {
    if (source.page !== page || source.frame !== page.mainFrame() || typeof json !== 'string') return;
    onBatch(json);
  });
  await context.addInitScript({ content: recorderScript(quality) });
  const callPage = async (fn: 'flush' | 'takeFullSnapshot'): Promise<void> => {
    if (page.isClosed()) return;
    await page
      .evaluate(async (name) => {
        await window.__domcast?.[name]();
      }, fn)
      .catch(() => undefined); // the page may be navigating or gone; the next document records afresh
  };
  return { flush: () => callPage('flush'), takeFullSnapshot: () => callPage('takeFullSnapshot') };
}
