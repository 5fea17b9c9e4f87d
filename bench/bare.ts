/**
 * The bare pipeline, the latency baseline of `npm run bench` (issue 15): rrweb recording in
 * Chromium, one Playwright binding, a plain WebSocket, and rrweb applying each event the moment it
 * arrives. No server logic at all: no ordered log, no batching, no checkpoints, no limits, no
 * access control, no store. What domcast costs on top is its latency minus this one.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { CHROMIUM_ARGS, findChromium } from '../src/browser/index.js';
import { projectRoot } from '../src/common/index.js';

const RRWEB_UMD = join(projectRoot, 'node_modules', 'rrweb', 'dist', 'rrweb.umd.min.cjs');
const RRWEB_CSS = join(projectRoot, 'node_modules', 'rrweb', 'dist', 'style.css');

/** The viewer: a live Replayer that casts each event as it arrives (every event is "in the past" of its clock). */
const VIEWER_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>bare pipeline</title>
<link rel="stylesheet" href="/rrweb.css"><style>body{margin:0}</style></head><body><div id="stage"></div>
<script src="/rrweb.js"></script>
<script>
  const replayer = new rrweb.Replayer([], { root: document.getElementById('stage'), liveMode: true, useVirtualDom: false, showWarning: false, triggerFocus: false, mouseTail: false });
  replayer.startLive(Number.MAX_SAFE_INTEGER);
  const ws = new WebSocket('ws://' + location.host + '/stream');
  window.__bareWork = [];
  ws.onmessage = (m) => {
    const t0 = performance.now();
    const e = JSON.parse(m.data);
    const t1 = performance.now();
    replayer.addEvent(e);
    if (window.__bareWork.length < 100000) window.__bareWork.push([t1 - t0, performance.now() - t1]);
  };
</script></body></html>`;

export interface BarePipeline {
  /** Where to open the bare viewer (it gets every event since the recording started, then each new one). */
  viewerUrl: string;
  events: number;
  close(): Promise<void>;
}

/** Records `pageUrl` in a Chromium of its own and serves a viewer of it. */
export async function startBarePipeline(pageUrl: string): Promise<BarePipeline> {
  const umd = readFileSync(RRWEB_UMD, 'utf8');
  const css = readFileSync(RRWEB_CSS, 'utf8');
  const events: string[] = [];
  const viewers = new Set<WebSocket>();
  const http: Server = createServer((req, res) => {
    const [type, body] =
      req.url === '/rrweb.js' ? ['text/javascript', umd] : req.url === '/rrweb.css' ? ['text/css', css] : req.url === '/' ? ['text/html', VIEWER_HTML] : [null, ''];
    if (!type) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8` }).end(body);
  });
  const wss = new WebSocketServer({ server: http, path: '/stream' });
  wss.on('connection', (ws) => {
    for (const e of events) ws.send(e);
    viewers.add(ws);
    ws.on('close', () => viewers.delete(ws));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  const browser: Browser = await chromium.launch({ executablePath: findChromium({ explicitPath: process.env.CHROMIUM_PATH }), args: CHROMIUM_ARGS });
  const page = await browser.newPage();
  await page.exposeBinding('__bareEmit', (_source, json: string) => {
    events.push(json);
    for (const ws of viewers) ws.send(json);
  });
  // rrweb's own iframe runs init scripts too: record the top frame only.
  await page.addInitScript({ content: `${umd}\n;if (window === window.top) rrweb.record({ emit: (e) => window.__bareEmit(JSON.stringify(e)) });` });
  await page.goto(pageUrl);
  return {
    viewerUrl: `http://127.0.0.1:${port}/`,
    get events() {
      return events.length;
    },
    async close() {
      await browser.close().catch(() => undefined);
      for (const ws of viewers) ws.terminate();
      wss.close();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
