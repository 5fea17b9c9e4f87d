import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { CHROMIUM_ARGS, findChromium } from '../../src/browser/index.js';
import { projectRoot } from '../../src/common/index.js';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import type { ServerFrame, WireEvent } from '../../src/protocol/index.js';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';

export interface Stack {
  server: Server;
  base: string;
  site: StaticSite;
  close(): Promise<void>;
}

/** The real server on port 0 (with a fresh data folder unless one is given) and the demo site on 127.0.0.1. */
/**
 * A server for a test file, with `env` over these defaults. Runs share one Chromium here
 * (BROWSER_ISOLATION=shared, a context per run): launching a Chromium for every run took a third of
 * the suite's time (engine.test.ts 54 -> 24 s). Files about what a browser of its own gives a run
 * (captured assets, the CPU governor, the DevTools relay's bounds, hostile pages beside ordinary
 * ones, faults) and the main live-viewer path ask for the default, BROWSER_ISOLATION=run.
 */
export async function startStack(env: Record<string, string> = {}): Promise<Stack> {
  const dataDir = env.DOMCAST_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'domcast-test-'));
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', BROWSER_ISOLATION: 'shared', ...env, DOMCAST_DATA_DIR: dataDir });
  const server = createServer(config);
  const base = await server.listen();
  const site = await serveStatic(join(projectRoot, 'demo', 'site'));
  return {
    server,
    base,
    site,
    async close() {
      await server.close();
      await site.close();
    },
  };
}

/** The WebSocket URL of a session's stream, with a valid viewer token for it (as the API would hand out). */
export async function streamUrl(stack: Stack, sessionId: string): Promise<string> {
  const token = await stack.server.deps.viewerTokens.issue(sessionId);
  return `${stack.base.replace('http', 'ws')}/workflows/visual/${encodeURIComponent(sessionId)}?token=${token}`;
}

/**
 * A second, independent Chromium in which viewers are opened. Its pages and contexts ask for
 * reduced motion unless a test says otherwise: a spinner turning in a viewer cost ~10% of a core
 * for as long as a step ran (software compositing, measured 2026-12-06), and the suite is CPU-bound.
 */
export async function launchViewerBrowser(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: findChromium({ explicitPath: process.env.CHROMIUM_PATH }), args: CHROMIUM_ARGS });
  const newContext = browser.newContext.bind(browser);
  const newPage = browser.newPage.bind(browser);
  browser.newContext = (options = {}) => newContext({ reducedMotion: 'reduce', ...options });
  browser.newPage = (options = {}) => newPage({ reducedMotion: 'reduce', ...options });
  return browser;
}

export interface ExecuteAnswer {
  status: number;
  body: { session_id: string; status: string; visual_stream_url: string | null; viewer_url: string | null; error?: string };
}

export async function execute(base: string, body: unknown, raw?: string): Promise<ExecuteAnswer> {
  const res = await fetch(`${base}/workflows/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as ExecuteAnswer['body'] };
}

export async function waitFor<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 20_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)?.slice(0, 300)})`);
}

export interface Received {
  seq: number;
  json: string;
  event: WireEvent;
}

/** A raw WebSocket viewer that keeps every frame it was sent, as text and parsed. */
export class WsViewer {
  readonly raw: string[] = [];
  readonly frames: ServerFrame[] = [];
  readonly received: Received[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString();
      this.raw.push(text);
      const frame = JSON.parse(text) as ServerFrame;
      this.frames.push(frame);
      if (frame.t === 'events' || frame.t === 'reset') {
        frame.events.forEach((event, i) => this.received.push({ seq: frame.from + i, json: JSON.stringify(event), event }));
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<WsViewer> {
    const ws = new WebSocket(url, options);
    const viewer = new WsViewer(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(viewer));
      ws.once('error', reject);
    });
  }

  get lastSeq(): number {
    return this.received.at(-1)?.seq ?? 0;
  }

  hello(): Extract<ServerFrame, { t: 'hello' }> | undefined {
    return this.frames.find((f): f is Extract<ServerFrame, { t: 'hello' }> => f.t === 'hello');
  }

  ended(): boolean {
    return this.frames.some((f) => f.t === 'end');
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

/** Whitespace-normalized visible text of a document's body. */
export const bodyText = `(() => (document.body ? document.body.innerText : '').replace(/\\s+/g, ' ').trim())()`;

/** The text of the page replayed inside a viewer (or rrweb-player) page: its first child frame. */
export async function replayedText(viewer: Page): Promise<string> {
  const frame = viewer.frames().find((f) => f !== viewer.mainFrame());
  return frame ? ((await frame.evaluate(bodyText).catch(() => '')) as string) : '';
}

export const PASSWORD = 'hunter2-very-secret-Pa55';

/** A run on the demo site: sign in (password typed key by key), add todos, go to a second page, hold. */
export function demoWorkflow(site: string, opts: { holdMs?: number; midWaitMs?: number } = {}) {
  return {
    name: 'e2e tour',
    description: 'signs in, adds todos, navigates',
    version: '1.0',
    // api_token: optional and unused, for the tests that check a secret-looking input is redacted.
    input_schema: [
      { name: 'user', type: 'string', required: true },
      { name: 'api_token', type: 'string', required: false },
    ],
    steps: [
      { type: 'navigation', url: `${site}/index.html`, description: 'open' },
      { type: 'input', cssSelector: '#username', value: '{user}', description: 'user name' },
      { type: 'input', cssSelector: '#password', value: PASSWORD, typeDelayMs: 30, description: 'password' },
      { type: 'click', cssSelector: '#login-btn', description: 'sign in' },
      { type: 'wait', cssSelector: '#new-todo', description: 'todo page' },
      { type: 'input', cssSelector: '#new-todo', value: 'alpha item', description: 'first todo' },
      { type: 'key_press', cssSelector: '#new-todo', key: 'Enter' },
      { type: 'input', cssSelector: '#new-todo', value: 'beta item', description: 'second todo' },
      { type: 'click', cssSelector: '#add-todo' },
      { type: 'wait', ms: opts.midWaitMs ?? 1500, description: 'middle' },
      { type: 'click', cssSelector: '#nav-about', description: 'second page' },
      { type: 'wait', cssSelector: '#about-title' },
      { type: 'wait', ms: opts.holdMs ?? 1500, description: 'hold' },
    ],
  };
}

/** The colours of `points` of a PNG, decoded by `page`'s browser (any blank page will do): no PNG library needed. */
export async function pngPixels(page: Page, png: Buffer, points: readonly { x: number; y: number }[]): Promise<[number, number, number][]> {
  return page.evaluate(
    async ({ b64, pts }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      return pts.map(({ x, y }) => {
        const [r, g, b] = ctx.getImageData(x, y, 1, 1).data;
        return [r!, g!, b!] as [number, number, number];
      });
    },
    { b64: png.toString('base64'), pts: [...points] },
  );
}
