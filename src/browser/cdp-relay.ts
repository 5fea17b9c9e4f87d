import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Browser } from 'playwright-core';
import { distDir } from '../common/index.js';
import type { RelayLimits, RelayReport, RelayWorkerData } from './cdp-relay-worker.js';

export type { RelayLimits } from './cdp-relay-worker.js';

/** What a page made its browser send that the relay dropped (reported at most 4 times a second per kind). */
export type RelayDrop = Extract<RelayReport, { type: 'dropped' }>;

/** A browser's relay: `drop` (RelayDrop) as things are dropped, `exit` once Chromium is gone. */
export interface CdpRelay extends EventEmitter {
  /** Chromium's browser process (the leader of its process group). */
  readonly pid: number;
  /** Where the relay listens (one client, Playwright's, is taken; for tests and diagnostics). */
  readonly wsEndpoint: string;
  on(event: 'drop', listener: (drop: RelayDrop) => void): this;
  on(event: 'exit', listener: (info: { code: number | null; signal: string | null }) => void): this;
}

const relays = new WeakMap<Browser, CdpRelay>();

/** The relay a browser's DevTools traffic goes through (every browser the launcher starts has one). */
export function relayOf(browser: Browser | null | undefined): CdpRelay | undefined {
  return browser ? relays.get(browser) : undefined;
}

/** Room around VISUAL_MAX_EVENT_MB for what is not a recording: console, exceptions, log entries, WebSocket frames. */
export function relayLimits(maxEventChars: number): RelayLimits {
  return { maxBindingChars: maxEventChars, maxOtherBytes: 1024 * 1024, otherBudgetBytes: 8 * 1024 * 1024, otherRefillBytesPerSecond: 1024 * 1024 };
}

/**
 * Starts Chromium behind a relay in a worker thread (src/browser/cdp-relay-worker.ts) and connects
 * Playwright to it. Chromium's DevTools messages reach the server's event loop only once the relay
 * found them of a size the server takes: a page's 60 MB binding call or console message is read,
 * sized and dropped in the worker, and the loop never stalls on it. The relay listens on 127.0.0.1
 * at a random path, takes one client (this one), and kills Chromium's whole process group when
 * that client goes.
 */
export async function launchRelayed(options: {
  executablePath: string;
  args: string[];
  limits: RelayLimits;
  /** The bundled worker (tests may point at their own). */
  script?: string;
}): Promise<Browser> {
  const data: RelayWorkerData = { executablePath: options.executablePath, args: options.args, limits: options.limits };
  const worker = new Worker(options.script ?? join(distDir, 'cdp-relay-worker.js'), { workerData: data });
  const relay = new EventEmitter() as CdpRelay & { pid: number; wsEndpoint: string };
  relay.pid = 0;
  relay.wsEndpoint = '';
  let exitInfo: { code: number | null; signal: string | null; stderr: string } | null = null;
  const ready = new Promise<string>((resolve, reject) => {
    worker.on('message', (r: RelayReport) => {
      if (r.type === 'ready') {
        relay.pid = r.pid;
        relay.wsEndpoint = r.wsEndpoint;
        resolve(r.wsEndpoint);
      } else if (r.type === 'dropped') relay.emit('drop', r);
      else {
        exitInfo = r;
        reject(new Error(`Chromium exited before it could be used (${r.signal ?? `code ${r.code}`}): ${r.stderr.trim().slice(-600)}`));
        relay.emit('exit', { code: r.code, signal: r.signal });
      }
    });
    worker.on('error', (err) => {
      reject(err);
      relay.emit('exit', { code: null, signal: null });
    });
  });
  const wsEndpoint = await ready;
  let browser: Browser;
  try {
    // Loaded when a browser is first needed: importing Playwright costs ~0.85 CPU-seconds, which a
    // process that never starts one (an API node, `domcast health` in a container) need not pay.
    const { chromium } = await import('playwright-core');
    browser = await chromium.connectOverCDP(wsEndpoint, { timeout: 30_000 });
  } catch (err) {
    await worker.terminate();
    const info = exitInfo as { stderr: string } | null;
    throw info ? new Error(`${(err as Error).message}\n${info.stderr.trim().slice(-600)}`) : err;
  }
  relays.set(browser, relay);
  // When Playwright lets go (close, or Chromium died), the relay kills what is left and ends.
  browser.on('disconnected', () => {
    setTimeout(() => void worker.terminate(), 5000).unref();
  });
  return browser;
}
