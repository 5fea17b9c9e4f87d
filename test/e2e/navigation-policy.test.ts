import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { execute, startStack, waitFor, type Stack } from '../helpers/stack.js';

interface Hit {
  host: string;
  path: string;
}

/** A tiny HTTP (and WebSocket echo) server on 127.0.0.1 that records every request it gets, with its Host header. */
interface Site {
  port: number;
  hits: Hit[];
  close(): Promise<void>;
}

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Site> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    hits.push({ host: req.headers.host ?? '', path: req.url ?? '' });
    handle(req, res);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
    hits.push({ host: req.headers.host ?? '', path: `ws ${req.url ?? ''}` });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    close: () =>
      new Promise<void>((ok) => {
        wss.close();
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');

/** The "other host": anything it is asked for exists. */
function otherHost(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  const type = path.endsWith('.png') ? 'image/png' : path.endsWith('.css') ? 'text/css' : path.endsWith('.js') ? 'text/javascript' : 'text/html';
  res.writeHead(200, { 'content-type': type, 'access-control-allow-origin': '*' });
  res.end(type === 'image/png' ? PNG : type === 'text/html' ? '<h1>other host</h1>' : '/* other host */');
}

interface RunResult {
  status: string;
  error: string | null;
  steps: { state: string; durationMs?: number; error?: string }[];
  outputs: Record<string, unknown>;
  refused_requests: number;
}

type StepSpec = Record<string, unknown>;

/**
 * Runs a workflow to its end and returns GET /workflows/{id}. Up to 60 s: runs go at once here, and
 * on a loaded CI machine four of them (a context, a failed step's screenshot each) beside another
 * test file took over 20 s (2026-12-06).
 */
async function run(stack: Stack, steps: StepSpec[]): Promise<RunResult> {
  const { status, body } = await execute(stack.base, { workflow: { name: 'policy', steps }, visual_enabled: false });
  assert.equal(status, 202, JSON.stringify(body));
  return waitFor(
    `run ${body.session_id} to end`,
    async () => {
      const r = (await (await fetch(`${stack.base}/workflows/${body.session_id}`)).json()) as RunResult;
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : null;
    },
    60_000,
  );
}

const onlyHosts = (site: Site, host: string): Hit[] => site.hits.filter((h) => h.host === host);

describe('navigation policy (BLOCKED_HOSTS=localhost)', () => {
  let stack: Stack;
  let page: Site;
  let other: Site;
  let blocked: string;
  let pageUrl: string;

  before(async () => {
    other = await serve(otherHost);
    blocked = `localhost:${other.port}`;
    page = await serve((req, res) => {
      const html = (body: string) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<!doctype html><meta charset="utf-8"><body>${body}</body>`);
      };
      switch (req.url) {
        case '/sub':
          return html(`
            <link rel="stylesheet" href="http://${blocked}/style.css">
            <img src="http://${blocked}/img.png">
            <img src="/to-blocked-img">
            <img id="control" src="http://127.0.0.1:${other.port}/control.png">
            <script src="http://${blocked}/script.js"></script>
            <iframe src="http://${blocked}/frame.html"></iframe>
            <script>
              const results = {};
              const settle = (name, value) => {
                results[name] = value;
                if (Object.keys(results).length < 3) return;
                const p = document.createElement('p');
                p.id = 'done';
                p.textContent = JSON.stringify(results);
                document.body.append(p);
              };
              fetch('http://${blocked}/api').then(() => settle('fetch', 'ok'), () => settle('fetch', 'failed'));
              const ws = new WebSocket('ws://${blocked}/ws');
              ws.onopen = () => settle('ws', 'open');
              ws.onclose = (e) => settle('ws', 'closed ' + e.code);
              const control = new WebSocket('ws://127.0.0.1:${other.port}/ws');
              control.onopen = () => control.send('ping');
              control.onmessage = (e) => settle('control', e.data);
              control.onerror = () => settle('control', 'error');
            </script>`);
        case '/to-blocked-img':
          res.writeHead(302, { location: `http://${blocked}/redirected.png` });
          return res.end();
        case '/hop1':
          res.writeHead(302, { location: '/hop2' });
          return res.end();
        case '/hop2':
          res.writeHead(302, { location: `http://${blocked}/landing` });
          return res.end();
        case '/links':
          return html(`<a id="out" href="http://${blocked}/elsewhere">elsewhere</a> <a id="in" href="/sub">sub</a>`);
        case '/leaves-later':
          return html(`<h1>leaving</h1><script>setTimeout(() => { location.href = 'http://${blocked}/later'; }, 300);</script>`);
        default:
          return html('<h1>page</h1>');
      }
    });
    pageUrl = `http://127.0.0.1:${page.port}`;
    stack = await startStack({ BLOCKED_HOSTS: 'localhost' });
  });

  after(async () => {
    await stack?.close();
    await page?.close();
    await other?.close();
  });

  test('a navigation step to file:, chrome:, javascript: or data: fails with the reason', async () => {
    const cases = [
      ['file:///etc/passwd', 'file:'],
      ['chrome://version', 'chrome:'],
      ['javascript:alert(1)', 'javascript:'],
      ['data:text/html,<h1>hi</h1>', 'data:'],
    ] as const;
    // At once: each is a run of its own, and they do not wait for one another.
    const results = await Promise.all(cases.map(([url]) => run(stack, [{ type: 'navigation', url }])));
    for (const [i, [url, scheme]] of cases.entries()) {
      const r = results[i]!;
      assert.equal(r.status, 'failed', url);
      assert.equal(r.error, `step 1 (navigation) failed: navigation to ${url} refused: scheme ${scheme} is not allowed (only http and https)`);
      assert.deepEqual(r.steps.map((s) => s.state), ['failed']);
    }
  });

  test('the cloud metadata address is refused, however it is spelled', async () => {
    const urls = ['http://169.254.169.254/latest/meta-data/', 'http://2852039166/latest/meta-data/', 'http://[::ffff:169.254.169.254]/'];
    const results = await Promise.all(urls.map((url) => run(stack, [{ type: 'navigation', url }])));
    for (const [i, url] of urls.entries()) {
      const r = results[i]!;
      assert.equal(r.status, 'failed', url);
      assert.match(r.error ?? '', /^step 1 \(navigation\) failed: navigation to \S+ refused: host \S+ is a link-local \/ cloud metadata address$/);
    }
  });

  test('a page on an allowed host loads none of its images, scripts, styles, fetches, frames or sockets from a blocked host', async () => {
    other.hits.length = 0;
    page.hits.length = 0;
    const r = await run(stack, [
      { type: 'navigation', url: `${pageUrl}/sub` },
      { type: 'wait', cssSelector: '#done' },
      { type: 'extract_page_content', cssSelector: '#done', output: 'results' },
    ]);
    assert.equal(r.status, 'succeeded', r.error ?? '');
    assert.deepEqual(JSON.parse(String(r.outputs.results)), { fetch: 'failed', ws: 'closed 1008', control: 'echo:ping' });
    assert.deepEqual(onlyHosts(other, blocked), [], 'the blocked host was never reached');
    assert.deepEqual(
      onlyHosts(other, `127.0.0.1:${other.port}`).map((h) => h.path).sort(),
      ['/control.png', 'ws /ws'],
      'the same server, under an allowed name, served the control image and socket',
    );
    assert.ok(page.hits.some((h) => h.path === '/sub') && page.hits.some((h) => h.path === '/to-blocked-img'));
    // style.css, img.png, the redirect hop to redirected.png, script.js, frame.html, the fetch, the socket.
    assert.equal(r.refused_requests, 7);
  });

  test('a redirect chain that ends on a blocked host fails the navigation step, and the host gets no request', async () => {
    other.hits.length = 0;
    page.hits.length = 0;
    const r = await run(stack, [{ type: 'navigation', url: `${pageUrl}/hop1` }]);
    assert.equal(r.status, 'failed');
    assert.equal(r.error, `step 1 (navigation) failed: navigation to http://${blocked}/landing refused: host localhost is in BLOCKED_HOSTS`);
    assert.deepEqual(page.hits.map((h) => h.path), ['/hop1', '/hop2']);
    assert.deepEqual(other.hits, []);
  });

  test('a click on a link to a blocked host fails that click step with the reason', async () => {
    other.hits.length = 0;
    const r = await run(stack, [
      { type: 'navigation', url: `${pageUrl}/links` },
      { type: 'click', cssSelector: '#out' },
      { type: 'wait', ms: 50 },
    ]);
    assert.equal(r.status, 'failed');
    assert.deepEqual(r.steps.map((s) => s.state), ['succeeded', 'failed', 'skipped']);
    assert.equal(r.error, `step 2 (click #out) failed: navigation to http://${blocked}/elsewhere refused: host localhost is in BLOCKED_HOSTS`);
    assert.deepEqual(other.hits, []);
  });

  test('a page that sends itself to a blocked host fails the step in flight at once', async () => {
    const r = await run(stack, [
      { type: 'navigation', url: `${pageUrl}/leaves-later` },
      { type: 'wait', ms: 8000 },
    ]);
    assert.equal(r.status, 'failed');
    assert.equal(r.error, `step 2 (wait) failed: navigation to http://${blocked}/later refused: host localhost is in BLOCKED_HOSTS`);
    assert.ok((r.steps[1]?.durationMs ?? Infinity) < 3000, `the wait failed after ${r.steps[1]?.durationMs} ms`);
  });

  test('allowed navigations and links still work', async () => {
    const r = await run(stack, [
      { type: 'navigation', url: `${pageUrl}/links` },
      { type: 'click', cssSelector: '#in' },
      { type: 'wait', cssSelector: '#control' },
    ]);
    assert.equal(r.status, 'succeeded', r.error ?? '');
  });
});

describe('navigation policy (ALLOWED_HOSTS=127.0.0.1)', () => {
  let stack: Stack;
  let site: Site;

  before(async () => {
    site = await serve((req, res) => {
      if (req.url === '/page') {
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end(`<h1 id="title">page</h1><img src="http://localhost:${site.port}/img.png">`);
      }
      return otherHost(req, res);
    });
    stack = await startStack({ ALLOWED_HOSTS: '127.0.0.1' });
  });

  after(async () => {
    await stack?.close();
    await site?.close();
  });

  test('a host that is not listed is refused, even one that resolves to a listed address', async () => {
    const r = await run(stack, [{ type: 'navigation', url: `http://localhost:${site.port}/page` }]);
    assert.equal(r.status, 'failed');
    assert.equal(r.error, `step 1 (navigation) failed: navigation to http://localhost:${site.port}/page refused: host localhost is not in ALLOWED_HOSTS`);
    assert.deepEqual(site.hits, []);
  });

  test('a listed host is visited, and its page loads nothing from hosts that are not listed', async () => {
    const r = await run(stack, [
      { type: 'navigation', url: `http://127.0.0.1:${site.port}/page` },
      { type: 'wait', cssSelector: '#title' },
    ]);
    assert.equal(r.status, 'succeeded', r.error ?? '');
    assert.deepEqual(onlyHosts(site, `localhost:${site.port}`), []);
    assert.equal(r.refused_requests, 1);
  });
});
