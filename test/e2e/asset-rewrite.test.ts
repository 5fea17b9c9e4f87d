/**
 * The asset rewrite against what Chromium and rrweb really produce: a recorded page's FullSnapshot
 * has every asset URL rewritten and nothing else changed, and rewritten CSS means to the browser
 * what the original did, URL for URL.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { assetPath } from '../../src/assets/paths.js';
import { AssetRewriter, rewriteCss } from '../../src/assets/rewrite.js';
import { attachRecorder } from '../../src/browser/index.js';
import { RrwebEventType, type WireEvent } from '../../src/protocol/index.js';

const SESSION = 'rec-1';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const SPRITE = '<svg xmlns="http://www.w3.org/2000/svg"><symbol id="icon" viewBox="0 0 1 1"><rect width="1" height="1"/></symbol></svg>';

function page(port: number): string {
  return `<!doctype html><html><head>
<link rel="stylesheet" href="/style.css">
<link rel="stylesheet" href="http://localhost:${port}/cross.css">
<style>.b { background-image: url("/b.png"); } .set { background-image: image-set("/set.png" 1x); }</style>
</head><body>
<img id="img" src="/a.png" srcset="/a.png 1x, /a2.png 2x" alt="an image">
<div class="b" style="background: url('/c.png') no-repeat; color: red">styled</div>
<svg width="10" height="10"><use href="/sprite.svg#icon"></use><image href="/i.png" width="1" height="1"></image></svg>
<input type="image" src="/submit.png" alt="go">
<video poster="/poster.png" width="10" height="10"></video>
<a href="/other">a link elsewhere</a>
</body></html>`;
}

describe('the asset rewrite on what Chromium records', () => {
  let server: Server;
  let port: number;
  let browser: Browser;
  let tab: Page;

  before(async () => {
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(page(port));
      if (path === '/style.css') return res.writeHead(200, { 'content-type': 'text/css' }).end('.s { background-image: url(img/d.png); } @font-face { font-family: F; src: url("/f.woff2") format("woff2"); }');
      if (path === '/cross.css') return res.writeHead(200, { 'content-type': 'text/css' }).end('.x { background-image: url(x.png); }');
      if (path === '/sprite.svg') return res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(SPRITE);
      if (path.endsWith('.png')) return res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    tab = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  test("a recorded page's FullSnapshot has every asset URL rewritten and nothing else changed", async () => {
    const batches: WireEvent[][] = [];
    const recorder = await attachRecorder(tab.context(), tab, 'standard', { maskAllInputs: false }, async (json) => {
      batches.push(JSON.parse(json) as WireEvent[]);
    });
    await tab.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load' });
    // Once everything has loaded: the stylesheets' text is inlined, the image's too.
    await recorder.takeFullSnapshot();
    await recorder.flush();
    const events = batches.flat();
    const meta = events.findLast((e) => e.type === RrwebEventType.Meta)!;
    const recorded = events.findLast((e) => e.type === RrwebEventType.FullSnapshot)!;
    assert.ok(meta && recorded, 'the page was recorded');

    const rewriter = new AssetRewriter(SESSION);
    rewriter.rewrite(meta);
    const rewritten = structuredClone(recorded);
    assert.equal(rewriter.rewrite(rewritten), true);

    const origin = String.raw`http://(?:127\.0\.0\.1|localhost):${port}`;
    const served = (url: string): string => {
      const [base, fragment] = url.split('#');
      return assetPath(SESSION, base!) + (fragment === undefined ? '' : `#${fragment}`);
    };
    /**
     * What a string should become: each URL of our test server in it served from ours. rrweb makes
     * most URLs absolute, not all (a <video poster>): a root-relative value resolves against the page.
     */
    const expected = (s: string): string =>
      /^\/[^/]/.test(s) ? served(`http://127.0.0.1:${port}${s}`) : s.replace(new RegExp(`${origin}/[^\\s"'(),]*`, 'g'), served);

    // Every string that changed changed exactly that way; collect them to see what was rewritten.
    const changed: string[] = [];
    const walk = (a: unknown, b: unknown, path: string): void => {
      if (typeof a === 'string') {
        assert.equal(typeof b, 'string', path);
        if (a !== b) {
          assert.equal(b, expected(a), path);
          changed.push(a);
        }
        return;
      }
      if (typeof a !== 'object' || a === null) return assert.equal(b, a, path);
      assert.deepEqual(Object.keys(b as object), Object.keys(a), path);
      for (const key of Object.keys(a)) walk((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}.${key}`);
    };
    walk(recorded, rewritten, 'event');

    const at = (path: string): string => `http://127.0.0.1:${port}${path}`;
    const wasRewritten = (needle: string): boolean => changed.some((s) => s.includes(needle) || at(s) === needle);
    for (const url of [at('/a.png'), at('/a2.png'), at('/b.png'), at('/c.png'), at('/img/d.png'), at('/f.woff2'), at('/set.png'), at('/sprite.svg#icon'), at('/i.png'), at('/submit.png'), at('/poster.png')]) {
      assert.ok(wasRewritten(url), `${url} was rewritten`);
    }
    // The cross-origin stylesheet cannot be read by rrweb: its <link href> is what the viewer loads.
    assert.ok(wasRewritten(`http://localhost:${port}/cross.css`), 'the unreadable stylesheet is loaded from us');
    // What is left of the recorded site's URLs is what a viewer never loads: the link elsewhere.
    const left = JSON.stringify(rewritten).match(new RegExp(`${origin}/[^\\s"'(),\\\\]*`, 'g'));
    assert.deepEqual(left, [at('/other')]);
  });

  test('rewritten CSS means to Chromium what the original did, URL for URL', async () => {
    await tab.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load' });
    const values = [
      'url(http://h.test/a.png)',
      `url( "http://h.test/a\\)b.png" )`,
      `url('http://h.test/q\\'s.png')`,
      'URL(http://h.test/up.png)',
      'u\\72l(http://h.test/esc.png)',
      'url(http://h.test/sp\\20 ace\\29.png)',
      'url(img/rel.png)',
      'url(//h.test/proto.png)',
      'url(http://h.test/s.svg#frag)',
      'image-set("http://h.test/1x.png" 1x, url(http://h.test/2x.png) 2x)',
      '-webkit-image-set(url(http://h.test/w.png) 1x)',
      'url(http://h.test/a.png), url(data:image/png;base64,AAAA), url("blob:http://h.test/x")',
      'url(http://h.test/bad url.png)',
      'url(http://h.test/q"uote.png)',
      '/* url(http://h.test/c.png) */ url(http://h.test/d.png)',
      'url("http://h.test/unterminated.png',
      'url(http://h.test/unterminated2.png',
    ];
    const base = `http://127.0.0.1:${port}/`;
    const map = (url: string): string => assetPath(SESSION, url);
    const declarations = values.map((v) => `background-image: ${v}`);
    const rewritten = declarations.map((d) => rewriteCss(d, map, base));
    const computed = await tab.evaluate((all) => {
      return all.map((style) => {
        const el = document.createElement('div');
        el.setAttribute('style', style);
        document.body.append(el);
        const value = getComputedStyle(el).backgroundImage;
        el.remove();
        return value;
      });
    }, [...declarations, ...rewritten]);
    const original = computed.slice(0, values.length);
    const after = computed.slice(values.length);
    for (const [i, value] of values.entries()) {
      const want = original[i]!.replace(/url\("(https?:[^"]*)"\)/g, (_, url: string) => {
        const [u, fragment] = url.split('#');
        return `url("${base.slice(0, -1)}${map(u!)}${fragment === undefined ? '' : `#${fragment}`}")`;
      });
      assert.equal(after[i], want, `${value} → ${rewritten[i]}`);
    }
    assert.ok(original.filter((v) => v.includes('url(')).length >= 12, 'most values are URLs to Chromium');
  });
});
