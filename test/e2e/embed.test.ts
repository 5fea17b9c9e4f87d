import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, Frame, Page } from 'playwright-core';
import type { EmbedErrorDetail, EmbedStatusDetail, EmbedStepDetail } from '../../src/embed/index.js';
import { launchViewerBrowser, startStack, waitFor, type Stack } from '../helpers/stack.js';

/** With a key set, the captured assets need the viewer's cookie (without one they are open): the cookie is what is tested. */
const API_KEY = 'embed-test-key-0123456789abcdef';

interface Heard {
  type: 'domcast-status' | 'domcast-step' | 'domcast-error';
  detail: EmbedStatusDetail & EmbedStepDetail & EmbedErrorDetail;
}

/**
 * Another site's page: loads the element from domcast and embeds the viewer link of its `?src=`,
 * keeping every domcast-* event it hears in `window.heard`.
 */
function hostPage(domcast: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>host</title>
<script type="module" src="${domcast}/embed/domcast-viewer.js"></script></head>
<body><h1>Someone else's app</h1>
<domcast-viewer id="v" timeout="4000" style="width:800px;height:450px"></domcast-viewer>
<script>
window.heard = [];
for (const type of ['domcast-status', 'domcast-step', 'domcast-error']) document.addEventListener(type, (e) => window.heard.push({ type, detail: e.detail }));
document.getElementById('v').setAttribute('src', new URLSearchParams(location.search).get('src'));
</script></body></html>`;
}

async function listen(page: () => string): Promise<{ port: number; server: HttpServer }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page()));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { port: (server.address() as AddressInfo).port, server };
}

/** Starts a visual run with the API key; its viewer link and id. */
async function start(base: string, workflow: unknown): Promise<{ session_id: string; viewer_url: string }> {
  const res = await fetch(`${base}/workflows/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ workflow, inputs: {}, visual_enabled: true }),
  });
  assert.equal(res.status, 202);
  return (await res.json()) as { session_id: string; viewer_url: string };
}

const heard = (page: Page) => page.evaluate(() => (window as unknown as { heard: Heard[] }).heard);

/** The frame of the viewer inside the host page, and the replay frame inside it. */
function viewerFrames(page: Page): { viewer: Frame | undefined; replay: Frame | undefined } {
  const viewer = page.frames().find((f) => f.parentFrame() === page.mainFrame());
  return { viewer, replay: viewer?.childFrames()[0] };
}

/** Whether every image of the replayed page has loaded (its captured asset came, with the viewer's cookie). */
const imagesLoaded = (frame: Frame) =>
  frame.evaluate(() => {
    const imgs = [...document.images];
    return imgs.length >= 3 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  });

describe('embedding the viewer in another site', () => {
  let stack: Stack;
  let browser: Browser;
  let domcast = '';
  let allowed: { port: number; server: HttpServer };
  let refused: { port: number; server: HttpServer };

  before(async () => {
    allowed = await listen(() => hostPage(domcast));
    refused = await listen(() => hostPage(domcast));
    // 127.0.0.1 on another port: same site as domcast; localhost: another site (over plain http).
    stack = await startStack({ BROWSER_ISOLATION: 'run', DOMCAST_API_KEY: API_KEY, VIEWER_ORIGINS: `http://127.0.0.1:${allowed.port},http://localhost:${allowed.port}` });
    domcast = stack.base;
    browser = await launchViewerBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
    for (const s of [allowed?.server, refused?.server]) {
      s?.closeAllConnections();
      s?.close();
    }
  });

  test('a page on an allowed origin hears status and step events and shows the replayed page; one on a refused origin gets a blocked frame and hears nothing from it', async () => {
    const body = await start(stack.base, {
      name: 'embedded tour',
      steps: [
        { type: 'navigation', url: `${stack.site.url}/index.html`, description: 'home' },
        { type: 'wait', ms: 1500, description: 'look at home' },
        { type: 'navigation', url: `${stack.site.url}/gallery.html`, description: 'gallery' },
        { type: 'wait', ms: 4000, description: 'hold' },
      ],
    });
    const src = encodeURIComponent(body.viewer_url);

    const context = await browser.newContext();
    const onAllowed = await context.newPage();
    const onRefused = await context.newPage();
    const refusedConsole: string[] = [];
    onRefused.on('console', (m) => refusedConsole.push(m.text()));
    await Promise.all([
      onAllowed.goto(`http://127.0.0.1:${allowed.port}/?src=${src}`),
      onRefused.goto(`http://127.0.0.1:${refused.port}/?src=${src}`),
    ]);

    // Live: the run is heard going, step by step, and the frame shows the page as it is now.
    await waitFor('a live status on the allowed page', async () =>
      (await heard(onAllowed)).some((h) => h.type === 'domcast-status' && h.detail.status === 'running' && h.detail.connection === 'live'),
    );
    await waitFor('the gallery replayed inside the embedded frame', async () => {
      const { replay } = viewerFrames(onAllowed);
      return replay ? /Alpine peaks at dawn/.test((await replay.evaluate(() => document.body?.innerText ?? '').catch(() => '')) as string) : false;
    });
    // The captured images load in the frame: the viewer's asset cookie works in an iframe on 127.0.0.1 with another port (same site).
    await waitFor('the replayed images, loaded from the captured assets', async () => {
      const { replay } = viewerFrames(onAllowed);
      return replay ? imagesLoaded(replay).catch(() => false) : false;
    });

    // The run's end is heard, and every step's start and success, once each, in order.
    await waitFor('the run ending, heard', async () =>
      (await heard(onAllowed)).some((h) => h.type === 'domcast-status' && h.detail.status === 'succeeded'),
    );
    const events = await heard(onAllowed);
    const steps = events.filter((h) => h.type === 'domcast-step').map((h) => `${h.detail.index}:${h.detail.state}`);
    assert.deepEqual(steps.filter((s) => s.endsWith(':succeeded')), ['0:succeeded', '1:succeeded', '2:succeeded', '3:succeeded']);
    assert.equal(new Set(steps).size, steps.length, 'each state of each step is told once');
    const gallery = events.find((h) => h.type === 'domcast-step' && h.detail.index === 2 && h.detail.state === 'succeeded')!.detail;
    assert.equal(gallery.description, 'gallery');
    assert.equal(gallery.type, 'navigation');
    assert.equal(gallery.count, 4);
    assert.equal(gallery.session, body.session_id);
    assert.equal(typeof gallery.durationMs, 'number');
    const last = events.filter((h) => h.type === 'domcast-status').at(-1)!.detail;
    assert.equal(last.workflow, 'embedded tour');
    assert.equal(last.stepCount, 4);
    assert.deepEqual(last.steps.map((st) => [st.description, st.state]), [['home', 'succeeded'], ['look at home', 'succeeded'], ['gallery', 'succeeded'], ['hold', 'succeeded']]);
    assert.equal(events.filter((h) => h.type === 'domcast-error').length, 0);
    assert.equal(await onAllowed.evaluate(() => document.querySelector('domcast-viewer')!.status?.status), 'succeeded');

    // Embed mode: no header, steps panel or footer; the replay fills the frame; the overlay says how the run ended.
    const { viewer } = viewerFrames(onAllowed);
    const chrome = await viewer!.evaluate(() =>
      ['.bar', '#panel', '.foot'].map((s) => getComputedStyle(document.querySelector(s)!).display),
    );
    assert.deepEqual(chrome, ['none', 'none', 'none']);
    assert.match((await viewer!.locator('.embed-status').textContent()) ?? '', /succeeded/);
    const box = await onAllowed.locator('domcast-viewer').boundingBox();
    const wrapper = await viewer!.locator('.replayer-wrapper').boundingBox();
    assert.ok(box && wrapper && (Math.abs(wrapper.width - box.width) < 2 || Math.abs(wrapper.height - box.height) < 2), 'the replay is scaled to fit the element');

    // A message from anything but the element's own frame is not heard: the page itself posting a look-alike.
    const before = (await heard(onAllowed)).length;
    await onAllowed.evaluate(() =>
      window.postMessage({ channel: 'domcast-embed', v: 1, type: 'status', detail: { status: 'forged' } }, '*'),
    );
    await onAllowed.waitForTimeout(300);
    assert.equal((await heard(onAllowed)).length, before);

    // Embedded after the run ended: the replay, told as such, on the final page.
    const later = await context.newPage();
    await later.goto(`http://127.0.0.1:${allowed.port}/?src=${src}`);
    const replayed = await waitFor('the replay status', async () =>
      (await heard(later)).find((h) => h.type === 'domcast-status' && h.detail.connection === 'replay')?.detail,
    );
    assert.equal(replayed.status, 'succeeded');
    assert.deepEqual((await heard(later)).filter((h) => h.type === 'domcast-step').map((h) => h.detail.state), ['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    await waitFor('the final page in the replay', async () => {
      const { replay } = viewerFrames(later);
      return replay ? /Alpine peaks at dawn/.test((await replay.evaluate(() => document.body?.innerText ?? '').catch(() => '')) as string) : false;
    });

    // Refused: the browser blocked the frame (frame-ancestors), so no viewer ran in it and nothing came from it.
    await waitFor('the element saying its viewer never answered', async () => (await heard(onRefused)).some((h) => h.type === 'domcast-error'));
    const refusedHeard = await heard(onRefused);
    assert.deepEqual(refusedHeard.map((h) => [h.type, h.detail.code]), [['domcast-error', 'no-answer']]);
    const blocked = viewerFrames(onRefused).viewer;
    assert.ok(blocked);
    assert.equal(await blocked.evaluate(() => document.getElementById('stage')).catch(() => null), null, 'no viewer in the blocked frame');
    assert.ok(refusedConsole.some((t) => /frame-ancestors/.test(t)), `the browser says frame-ancestors refused it (console: ${refusedConsole.join(' | ').slice(0, 400)})`);
    await context.close();
  });

  test('on an allowed origin of another site over plain http (localhost vs 127.0.0.1) the view works, but captured assets do not load: their cookie is SameSite=Strict without https', async () => {
    const body = await start(stack.base, { name: 'cross-site', steps: [{ type: 'navigation', url: `${stack.site.url}/gallery.html` }, { type: 'wait', ms: 3000 }] });
    const page = await browser.newPage();
    await page.goto(`http://localhost:${allowed.port}/?src=${encodeURIComponent(body.viewer_url)}`);
    await waitFor('the gallery replayed inside the embedded frame', async () => {
      const { replay } = viewerFrames(page);
      return replay ? /Alpine peaks at dawn/.test((await replay.evaluate(() => document.body?.innerText ?? '').catch(() => '')) as string) : false;
    });
    assert.ok((await heard(page)).some((h) => h.type === 'domcast-status'));
    await page.waitForTimeout(1000);
    assert.equal(await imagesLoaded(viewerFrames(page).replay!), false);
    await page.close();
  });
});
