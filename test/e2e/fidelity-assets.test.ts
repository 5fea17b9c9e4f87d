// e2e: alone (it compares pixels of pages drawn under time limits)
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { COLORS, startFidelitySite, type FidelitySite } from '../helpers/fidelity-site.js';
import { execute, launchViewerBrowser, pngPixels, startStack, waitFor, type Stack } from '../helpers/stack.js';

const VIEWER_UA = 'domcast-fidelity-viewer';

/** Each element of the fixture page and the colour it shows. */
const BOXES: [string, keyof typeof COLORS | [number, number, number]][] = [
  ['rel', 'red'],
  ['abs', 'green'],
  ['css-bg', 'blue'],
  ['inline-bg', 'teal'],
  ['style-attr', 'navy'],
  ['cookie', 'secret'],
  ['cross', 'yellow'],
  ['sprite', [255, 0, 255]],
  ['srcset', 'orange'],
  ['late', 'brown'],
  // Canvases: the 2D one as redrawn a second after load, the WebGL one as cleared.
  ['c2d', [200, 0, 60]],
  ['cgl', [60, 0, 200]],
];

const close = (a: number[], b: number[], tolerance = 40) => a.every((v, i) => Math.abs(v - b[i]!) <= tolerance);

/** The colour at the centre of the replayed element `#id`, on screen: the viewer's scale included (Playwright's box is in page pixels). */
async function colourInViewer(viewer: Page, decoder: Page, id: string): Promise<number[] | null> {
  const frame = viewer.frames().find((f) => f !== viewer.mainFrame());
  if (!frame) return null;
  const el = await frame.$(`#${id}`);
  const box = await el?.boundingBox();
  if (!box || box.width < 4 || box.height < 4) return null;
  const png = await viewer.screenshot({ clip: { x: box.x + box.width / 2 - 1, y: box.y + box.height / 2 - 1, width: 2, height: 2 } });
  // Decoded in a blank page of the viewer's browser.
  return (await pngPixels(decoder, png, [{ x: 0, y: 0 }]))[0]!;
}

async function expectBoxes(viewer: Page, decoder: Page, when: string, ids = BOXES.map(([id]) => id)): Promise<void> {
  for (const [id, expected] of BOXES.filter(([i]) => ids.includes(i))) {
    const rgb = typeof expected === 'string' ? COLORS[expected]! : expected;
    let last: number[] | null = null;
    await waitFor(`${when}: #${id} shows rgb(${rgb.join(',')})`, async () => {
      last = await colourInViewer(viewer, decoder, id);
      return last !== null && close(last, rgb);
    }, 10_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}; saw rgb(${String(last)})`);
    });
  }
}

/** Rendered width of `#id` inside the replay (CSS pixels of the recorded page). */
async function replayedWidth(viewer: Page, id: string): Promise<number> {
  const frame = viewer.frames().find((f) => f !== viewer.mainFrame())!;
  return frame.evaluate((i) => document.getElementById(i)!.getBoundingClientRect().width, id);
}

describe('fidelity: assets captured by the run\'s browser, canvases drawn by the viewer', () => {
  let stack: Stack;
  let site: FidelitySite;
  let browser: Browser;
  let context: BrowserContext;
  let decoder: Page;
  const dataDir = mkdtempSync(join(tmpdir(), 'domcast-fidelity-'));
  const outside: string[] = [];

  before(async () => {
    stack = await startStack({ BROWSER_ISOLATION: 'run', DOMCAST_DATA_DIR: dataDir });
    site = await startFidelitySite();
    browser = await launchViewerBrowser();
    context = await browser.newContext({ userAgent: VIEWER_UA, viewport: { width: 1280, height: 800 } });
    context.on('request', (r) => {
      const url = r.url();
      if (!url.startsWith(stack.base) && !/^(data|blob|about):/.test(url)) outside.push(url);
    });
    decoder = await (await browser.newContext()).newPage();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await stack?.close();
  });

  test('images, backgrounds, a cookie-only image, a CORS-less cross-origin image, an SVG sprite, a web font and late images show live, for a late joiner and in replay after a restart; the viewer fetches nothing from the site', async () => {
    const { status, body } = await execute(stack.base, {
      workflow: {
        name: 'fidelity',
        steps: [
          { type: 'navigation', url: `${site.a}/` },
          { type: 'wait', ms: 3000 },
          { type: 'scroll', scrollX: 0, scrollY: 1000 },
          { type: 'wait', ms: 1500 },
          { type: 'scroll', scrollX: 0, scrollY: 0 },
          { type: 'wait', ms: 8000, description: 'hold' },
        ],
      },
      visual_enabled: true,
    });
    assert.equal(status, 202, JSON.stringify(body));
    const session = stack.server.deps.registry.get(body.session_id)!;
    const live = await context.newPage();
    await live.goto(body.viewer_url!);
    await waitFor('the run to reach its hold', () => session.currentStep === 5, 30_000);

    // The source page: what the viewer must match.
    const source = stack.server.deps.runs.page(body.session_id)!;
    const sourceIcons = await source.evaluate(() => document.getElementById('icons')!.getBoundingClientRect().width);
    const sourceFallback = await source.evaluate(() => document.getElementById('icons-fallback')!.getBoundingClientRect().width);
    assert.notEqual(Math.round(sourceIcons), Math.round(sourceFallback), 'the icon font changes the width in the source page');

    await expectBoxes(live, decoder, 'live');
    // The lazy image, loaded when the run scrolled to it, is below the fold again: loaded from our copy.
    await waitFor('the lazy image loaded in the replay from our copy', async () => {
      const frame = live.frames().find((f) => f !== live.mainFrame())!;
      return frame.evaluate((prefix) => {
        const img = document.getElementById('lazy') as HTMLImageElement | null;
        return !!img && img.complete && img.naturalWidth > 0 && img.src.startsWith(prefix);
      }, `${stack.base}/workflows/visual/${body.session_id}/assets/`);
    });
    assert.ok(Math.abs((await replayedWidth(live, 'icons')) - sourceIcons) <= 1, 'the web font is used in the viewer');

    const late = await context.newPage();
    await late.goto(body.viewer_url!);
    await expectBoxes(late, decoder, 'late joiner');
    assert.ok(Math.abs((await replayedWidth(late, 'icons')) - sourceIcons) <= 1, 'the web font is used for a late joiner');

    // The run ends on its own: a cancel would drop the recorder's last unsent batch, and with it the
    // canvas's last picture, which the replay after the restart must show (seen on CI, 2026-12-06).
    await waitFor('the run to end', () => session.finished, 30_000);
    assert.equal(session.status, 'succeeded', session.error ?? '');
    const record = (await (await fetch(`${stack.base}/workflows/${body.session_id}`)).json()) as { assets: { captured: number; skipped: number } };
    assert.ok(record.assets.captured >= 12, `captured ${JSON.stringify(record.assets)}`);
    // Ops see the same in /health/visual, summed over runs (this stack ran only this one).
    const health = (await (await fetch(`${stack.base}/health/visual`)).json()) as { assets: { captured: number; skipped: number; bytes: number } };
    assert.equal(health.assets.captured, record.assets.captured, `health ${JSON.stringify(health.assets)}`);
    assert.ok(health.assets.bytes > 0);
    await Promise.all([live.close(), late.close()]);

    // A restart: the recording and its assets come from the store.
    await stack.close();
    stack = await startStack({ BROWSER_ISOLATION: 'run', DOMCAST_DATA_DIR: dataDir });
    const replay = await context.newPage();
    await replay.goto(body.viewer_url!.replace(/^http:\/\/127\.0\.0\.1:\d+/, stack.base));
    await expectBoxes(replay, decoder, 'replay after a restart');
    await replay.close();

    assert.deepEqual(outside, [], 'the viewer made no request outside its origin');
    assert.deepEqual(site.requests.filter((r) => r.userAgent === VIEWER_UA), [], 'the site never heard from a viewer');
  });
});
