// e2e: alone (it times how soon a missing asset is answered and how long a request waits for one)
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { assetPath, assetPrefix } from '../../src/assets/index.js';
import type { Session } from '../../src/session/index.js';
import { ASSET_CSP } from '../../src/server/routes/assets.js';
import { VIEWER_CSP } from '../../src/server/routes/viewer.js';
import { startStack, type Stack } from '../helpers/stack.js';

const API_KEY = 'assets-test-api-key-0123456789';
const withKey = { authorization: `Bearer ${API_KEY}` };
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A session in the registry that stays queued: live, as far as the asset route is concerned. */
function liveSession(stack: Stack): Session {
  return stack.server.deps.registry.create({ workflowName: 'assets', steps: [], visual: true, quality: 'standard', metrics: stack.server.deps.metrics });
}

function endedSession(stack: Stack): Session {
  const session = liveSession(stack);
  session.setStatus('succeeded');
  return session;
}

const get = (stack: Stack, path: string, headers: Record<string, string> = {}) => fetch(`${stack.base}${path}`, { headers, redirect: 'manual' });

/** The body and headers at a captured URL's path, following its redirect by hand (so each hop is checked). */
async function fetchAsset(stack: Stack, sessionId: string, url: string, headers: Record<string, string> = withKey): Promise<Response> {
  const first = await get(stack, assetPath(sessionId, url), headers);
  assert.equal(first.status, 302, await first.clone().text());
  return get(stack, first.headers.get('location')!, headers);
}

describe('captured assets over HTTP', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ BROWSER_ISOLATION: 'run', DOMCAST_API_KEY: API_KEY });
  });
  after(() => stack.close());

  test("a captured URL redirects to its body's hash, which is served with its type and locked-down headers", async () => {
    const session = endedSession(stack);
    const png = randomBytes(300);
    const { hash } = await stack.server.deps.assets.put(session.id, 'https://site.test/logo.png?v=2', 'image/png', png);
    const hop = await get(stack, assetPath(session.id, 'https://site.test/logo.png?v=2'), withKey);
    assert.equal(hop.status, 302);
    assert.equal(hop.headers.get('location'), `${assetPrefix(session.id)}h/${hash}`);
    assert.equal(hop.headers.get('cache-control'), 'private, no-cache');
    const res = await get(stack, hop.headers.get('location')!, withKey);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.equal(res.headers.get('cache-control'), 'private, max-age=31536000, immutable');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('content-security-policy'), ASSET_CSP);
    assert.match(ASSET_CSP, /^sandbox; default-src 'none'; /);
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(res.headers.get('vary'), 'sec-fetch-dest, accept-encoding');
    assert.equal(res.headers.get('content-encoding'), null, 'a PNG is compressed already');
  });

  test('SVG, CSS and uncompressed fonts go brotli- or gzip-compressed to a viewer that accepts it, the same bytes once decoded', async () => {
    const session = endedSession(stack);
    const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg">${'<rect width="10" height="10" fill="#123456"/>'.repeat(50)}</svg>`);
    const url = 'https://site.test/sprite.svg';
    await stack.server.deps.assets.put(session.id, url, 'image/svg+xml', svg);
    const cases: [string, string | null][] = [
      ['gzip, deflate, br, zstd', 'br'],
      ['gzip, deflate', 'gzip'],
      ['br;q=0, gzip', 'gzip'],
      ['identity', null],
    ];
    for (const [accept, encoding] of cases) {
      const res = await fetchAsset(stack, session.id, url, { ...withKey, 'accept-encoding': accept });
      assert.equal(res.headers.get('content-encoding'), encoding, accept);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), svg, `${accept}: the body decodes to what was captured`);
      const sent = Number(res.headers.get('content-length'));
      assert.ok(encoding ? sent < svg.length / 5 : sent === svg.length, `${accept}: ${sent} bytes sent for ${svg.length}`);
    }
  });

  test('SVG, CSS and fonts keep their types; HTML, XHTML, XML, scripts and the unknown are never served as something a browser runs', async () => {
    const session = endedSession(stack);
    const cases: [string, string][] = [
      ['image/svg+xml', 'image/svg+xml'],
      ['text/css', 'text/css'],
      ['font/woff2', 'font/woff2'],
      ['text/html', 'text/plain; charset=utf-8'],
      ['application/xhtml+xml', 'text/plain; charset=utf-8'],
      ['text/xml', 'text/plain; charset=utf-8'],
      ['text/javascript', 'text/plain; charset=utf-8'],
      ['application/x-unheard-of', 'application/octet-stream'],
    ];
    for (const [captured, served] of cases) {
      const url = `https://site.test/${captured}`;
      await stack.server.deps.assets.put(session.id, url, captured, Buffer.from(`<html><script>alert(1)</script></html> ${captured}`));
      const res = await fetchAsset(stack, session.id, url);
      assert.equal(res.headers.get('content-type'), served, captured);
      assert.equal(res.headers.get('content-security-policy'), ASSET_CSP);
    }
    // Opened as a page (or framed), an SVG is its source as text.
    const svg = await fetchAsset(stack, session.id, 'https://site.test/image/svg+xml', { ...withKey, 'sec-fetch-dest': 'document' });
    assert.equal(svg.headers.get('content-type'), 'text/plain; charset=utf-8');
    const framed = await fetchAsset(stack, session.id, 'https://site.test/image/svg+xml', { ...withKey, 'sec-fetch-dest': 'iframe' });
    assert.equal(framed.headers.get('content-type'), 'text/plain; charset=utf-8');
  });

  test('a URL never captured is a 404, at once for an ended session', async () => {
    const session = endedSession(stack);
    const started = Date.now();
    const res = await get(stack, assetPath(session.id, 'https://site.test/missing.png'), withKey);
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { error: string }).error, /no captured asset for https:\/\/site\.test\/missing\.png/);
    assert.ok(Date.now() - started < 1000);
    const byHash = await get(stack, `${assetPrefix(session.id)}h/${sha256('nothing')}`, withKey);
    assert.equal(byHash.status, 404);
  });

  test("a live session's request waits for the capture: an asset stored 300 ms after it is asked for is served", async () => {
    const session = liveSession(stack);
    const url = 'https://site.test/late.css';
    const started = Date.now();
    setTimeout(() => stack.server.deps.assets.put(session.id, url, 'text/css', Buffer.from('p{color:red}')), 300);
    const hop = await get(stack, assetPath(session.id, url), withKey);
    const waited = Date.now() - started;
    assert.equal(hop.status, 302);
    assert.ok(waited >= 250 && waited < 2000, `${waited} ms`);
    const res = await get(stack, hop.headers.get('location')!, withKey);
    assert.equal(await res.text(), 'p{color:red}');
    assert.equal(stack.server.deps.assets.waitingCount, 0);
  });

  test('a bad key is a 400 with {error}', async () => {
    const session = endedSession(stack);
    const notBase64 = await get(stack, `${assetPrefix(session.id)}not*a*key`, withKey);
    const notHttp = await get(stack, assetPath(session.id, 'javascript:alert(1)'), withKey);
    // Same bytes, other padding bits: only the key we make for a URL names it.
    const notCanonical = await get(stack, assetPath(session.id, 'https://site.test/a').replace(/Q$/, 'R'), withKey);
    const badHash = await get(stack, `${assetPrefix(session.id)}h/${'X'.repeat(64)}`, withKey);
    for (const res of [notBase64, notHttp, notCanonical, badHash]) {
      assert.equal(res.status, 400);
      assert.equal(typeof ((await res.json()) as { error: unknown }).error, 'string');
    }
  });

  test("without credentials, or with a token for another session, nothing is served: not even a body both sessions captured", async () => {
    const mine = endedSession(stack);
    const theirs = endedSession(stack);
    const shared = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>');
    const { hash } = await stack.server.deps.assets.put(mine.id, 'https://a.test/x.svg', 'image/svg+xml', shared);
    await stack.server.deps.assets.put(theirs.id, 'https://b.test/x.svg', 'image/svg+xml', shared);
    const myToken = await stack.server.deps.viewerTokens.issue(mine.id);
    const theirPaths = [assetPath(theirs.id, 'https://b.test/x.svg'), `${assetPrefix(theirs.id)}h/${hash}`];
    for (const path of theirPaths) {
      for (const res of [
        await get(stack, path),
        await get(stack, `${path}?token=${myToken}`),
        await get(stack, path, { authorization: `Bearer ${myToken}` }),
        await get(stack, path, { cookie: `domcast_assets=${myToken}` }),
      ]) {
        assert.equal(res.status, 401, path);
        assert.equal(typeof ((await res.json()) as { error: unknown }).error, 'string');
      }
    }
    // The same token opens its own session's copy, by query (carried through the redirect) or header.
    const viaQuery = await get(stack, `${assetPath(mine.id, 'https://a.test/x.svg')}?token=${myToken}`);
    assert.equal(viaQuery.headers.get('location'), `${assetPrefix(mine.id)}h/${hash}?token=${myToken}`);
    assert.equal((await get(stack, viaQuery.headers.get('location')!)).status, 200);
    assert.equal((await fetchAsset(stack, mine.id, 'https://a.test/x.svg', { authorization: `Bearer ${myToken}` })).status, 200);
  });

  test("the viewer page sets an HttpOnly cookie scoped to its session's assets, which the asset routes accept", async () => {
    const session = endedSession(stack);
    const other = endedSession(stack);
    await stack.server.deps.assets.put(session.id, 'https://a.test/bg.png', 'image/png', Buffer.from('bg'));
    await stack.server.deps.assets.put(other.id, 'https://a.test/bg.png', 'image/png', Buffer.from('bg'));
    const link = new URL(await stack.server.viewerUrl(session.id));
    const viewer = await get(stack, link.pathname + link.search);
    assert.equal(viewer.status, 200);
    const cookie = viewer.headers.get('set-cookie') ?? '';
    const [pair, ...attributes] = cookie.split(/;\s*/);
    assert.match(pair!, /^domcast_assets=[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.ok(attributes.includes(`Path=${assetPrefix(session.id)}`), cookie);
    assert.ok(attributes.includes('HttpOnly') && attributes.includes('SameSite=Strict'), cookie);
    assert.ok(!attributes.includes('Secure'), 'plain http: not Secure');
    const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
    const ttl = stack.server.deps.viewerTokens.ttlSeconds;
    assert.ok(maxAge > ttl - 10 && maxAge <= ttl, `Max-Age=${maxAge}, ttl ${ttl}`);
    const res = await fetchAsset(stack, session.id, 'https://a.test/bg.png', { cookie: pair! });
    assert.equal(await res.text(), 'bg');
    assert.equal((await get(stack, assetPath(other.id, 'https://a.test/bg.png'), { cookie: pair! })).status, 401);
  });
});

/** An HTTP server that notes every request and connection: where a hostile SVG's script would call. */
async function listener(): Promise<{ origin: string; hits: string[]; connections: () => number; serve: Map<string, string>; close(): Promise<void> }> {
  const hits: string[] = [];
  const serve = new Map<string, string>();
  let connections = 0;
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const body = serve.get(req.url ?? '');
    res.writeHead(body ? 200 : 204, { 'cache-control': 'no-store', 'access-control-allow-origin': '*', ...(body ? { 'content-type': 'image/svg+xml' } : {}) }).end(body);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    connections: () => connections,
    serve,
    close: () => new Promise<void>((ok) => (server.closeAllConnections(), server.close(() => ok()))),
  };
}

/** Every way an SVG document can run script or reach out, each calling `beacon` with its own name. */
function hostileSvg(beacon: string): string {
  const call = (what: string) => `document.title='pwned ${what}';fetch('${beacon}/${what}');new Image().src='${beacon}/img-${what}'`;
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="200" height="120" onload="${call('onload')}">
  <script>${call('script')}</script>
  <script href="${beacon}/external.js"/>
  <style>@import url(${beacon}/import.css); rect { fill: url(${beacon}/fill.svg#x) }</style>
  <image href="${beacon}/image.png" width="10" height="10"/>
  <rect id="dot" width="200" height="120" fill="green" onmouseover="${call('onmouseover')}"/>
  <animate attributeName="opacity" from="1" to="0.9" dur="0.1s" onbegin="${call('onbegin')}"/>
  <set attributeName="x" to="1" begin="0s" onbegin="${call('set')}"/>
  <a xlink:href="javascript:${call('js-url')}"><text y="20">link</text></a>
  <foreignObject width="200" height="120">
    <body xmlns="http://www.w3.org/1999/xhtml">
      <script>${call('fo-script')}</script>
      <img src="data:," onerror="${call('fo-onerror')}"/>
      <img src="${beacon}/fo-img.png"/>
      <iframe src="${beacon}/fo-frame"></iframe>
      <iframe srcdoc="&lt;script&gt;parent.fetch('${beacon}/srcdoc')&lt;/script&gt;"></iframe>
      <form action="${beacon}/form" method="get"><input name="q" value="1" autofocus="" onfocus="${call('onfocus')}"/></form>
      <meta http-equiv="refresh" content="0;url=${beacon}/refresh"/>
    </body>
  </foreignObject>
</svg>`;
}

describe('a captured hostile SVG in a real browser', () => {
  let stack: Stack;
  let browser: Browser;
  let beacon: Awaited<ReturnType<typeof listener>>;
  before(async () => {
    stack = await startStack({ BROWSER_ISOLATION: 'run', DOMCAST_API_KEY: API_KEY });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    beacon = await listener();
  });
  after(async () => {
    await browser.close();
    await beacon.close();
    await stack.close();
  });

  test('served without our headers, the same SVG does run its scripts (so the check below can fail)', async () => {
    beacon.serve.set('/control.svg', hostileSvg(`${beacon.origin}/control`));
    const page = await browser.newPage();
    await page.goto(`${beacon.origin}/control.svg`);
    await page.waitForFunction(() => document.title.startsWith('pwned'));
    await page.close();
    assert.ok(beacon.hits.some((h) => h.startsWith('/control/')), beacon.hits.join(' '));
  });

  test('opened directly at its asset URL (with the cookie the viewer page set), it runs nothing and reaches nothing', async () => {
    const session = liveSession(stack);
    const url = 'https://evil.test/icon.svg';
    await stack.server.deps.assets.put(session.id, url, 'image/svg+xml', Buffer.from(hostileSvg(`${beacon.origin}/asset`)));
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(await stack.server.viewerUrl(session.id));
    const hitsBefore = beacon.hits.length;
    const connectionsBefore = beacon.connections();
    const res = await page.goto(`${stack.base}${assetPath(session.id, url)}`);
    assert.equal(res?.status(), 200);
    assert.equal(res?.headers()['content-type'], 'text/plain; charset=utf-8', 'a navigation gets the source');
    assert.match(page.url(), /\/assets\/h\/[0-9a-f]{64}$/, 'followed the redirect, without a token in the URL');
    await page.mouse.move(50, 50);
    await page.keyboard.press('Tab');
    await page.getByText('link').click({ timeout: 2000 }).catch(() => undefined);
    await page.waitForTimeout(1500);
    // Playwright's own evaluation is not the page's script: it reads what the page did.
    assert.equal(await page.evaluate(() => document.title), '');
    assert.equal(await page.evaluate(() => self.origin), 'null', 'a sandboxed, opaque origin: not ours');
    assert.deepEqual(beacon.hits.slice(hitsBefore), []);
    assert.equal(beacon.connections() - connectionsBefore, 0);
    await context.close();
  });

  test("in the viewer's page, the rewritten URLs load under VIEWER_CSP: as <img> the hostile SVG runs nothing, and <use> reaches a captured sprite", async () => {
    const session = liveSession(stack);
    const assets = stack.server.deps.assets;
    await assets.put(session.id, 'https://evil.test/icon.svg', 'image/svg+xml', Buffer.from(hostileSvg(`${beacon.origin}/img`)));
    const sprite = '<svg xmlns="http://www.w3.org/2000/svg"><symbol id="dot" viewBox="0 0 10 10"><rect width="10" height="10" fill="green"/></symbol></svg>';
    await assets.put(session.id, 'https://site.test/sprite.svg', 'image/svg+xml', Buffer.from(sprite));
    const context = await browser.newContext();
    const page = await context.newPage();
    const served: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/assets/h/')) served.push(`${r.status()} ${r.headers()['content-type']}`);
    });
    const viewer = await page.goto(await stack.server.viewerUrl(session.id));
    assert.equal(viewer?.headers()['content-security-policy'], VIEWER_CSP);
    const hitsBefore = beacon.hits.length;
    const result = await page.evaluate(
      async ([icon, spriteUrl]) => {
        const violations: string[] = [];
        document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
        const img = new Image();
        img.src = icon!;
        await img.decode();
        const holder = document.createElement('div');
        holder.innerHTML = `<svg width="10" height="10"><use href="${spriteUrl}#dot"/></svg>`;
        document.body.append(holder);
        await new Promise((r) => setTimeout(r, 1000));
        return { width: img.naturalWidth, title: document.title, violations };
      },
      [assetPath(session.id, 'https://evil.test/icon.svg'), assetPath(session.id, 'https://site.test/sprite.svg')],
    );
    assert.equal(result.width, 200, 'the SVG was decoded as an image');
    assert.doesNotMatch(result.title, /pwned/);
    assert.deepEqual(result.violations, []);
    assert.deepEqual(served.sort(), ['200 image/svg+xml', '200 image/svg+xml']);
    assert.deepEqual(beacon.hits.slice(hitsBefore), []);
    // The <img> answer is in the browser's cache for good; a navigation to the same URL still gets text.
    const opened = await page.goto(`${stack.base}${assetPath(session.id, 'https://evil.test/icon.svg')}`);
    assert.equal(opened?.headers()['content-type'], 'text/plain; charset=utf-8');
    assert.match(await page.evaluate(() => document.body.innerText), /^<svg /);
    await context.close();
  });

  test('a browser that sends no fetch metadata gets the SVG as SVG, sandboxed: it runs nothing', async () => {
    const session = endedSession(stack);
    const url = 'https://evil.test/old-browser.svg';
    const { hash } = await stack.server.deps.assets.put(session.id, url, 'image/svg+xml', Buffer.from(hostileSvg(`${beacon.origin}/no-metadata`)));
    const path = `${assetPrefix(session.id)}h/${hash}`;
    // What the server answers without Sec-Fetch-Dest, handed to Chromium as the answer to its navigation.
    const served = await get(stack, path, withKey);
    assert.equal(served.headers.get('content-type'), 'image/svg+xml');
    const headers = Object.fromEntries(served.headers.entries());
    const body = Buffer.from(await served.arrayBuffer());
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.route(`${stack.base}${path}`, (route) => route.fulfill({ status: 200, headers, body }));
    await page.goto(`${stack.base}${path}`);
    await page.mouse.move(50, 50);
    await page.waitForTimeout(1500);
    assert.equal(await page.evaluate(() => document.documentElement.localName), 'svg', 'rendered as SVG');
    assert.equal(await page.evaluate(() => document.title), '');
    assert.equal(await page.evaluate(() => self.origin), 'null');
    assert.deepEqual(beacon.hits.filter((h) => h.startsWith('/no-metadata')), []);
    await context.close();
  });
});
