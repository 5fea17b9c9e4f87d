// e2e: alone (it compares pixels of pages drawn under time limits)
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { COLORS, startFidelitySite, type FidelitySite } from '../helpers/fidelity-site.js';
import { execute, launchViewerBrowser, pngPixels, startStack, waitFor, type Stack } from '../helpers/stack.js';

const VIEWER_UA = 'domcast-frames-viewer';

const FRAMES = ['frame-same', 'frame-cross', 'frame-site'] as const;

/**
 * The fixture's boxes: in the top document, or inside its frame `#frame`; colours as the run holds
 * them (the frames' boxes are changed 1.5 s after load). Each frame's images come from a pics/
 * folder beside its own document that the page's folder does not have: a relative URL resolved
 * against anything but the frame's document finds no image. `#late`'s style and `#rule`'s CSS rule
 * are set by the frame's `late()` once it is in the stream (LATE).
 */
const BOXES: { frame: string | null; id: string; rgb: [number, number, number] }[] = [
  { frame: null, id: 'top-box', rgb: [30, 80, 230] },
  { frame: 'frame-same', id: 'box', rgb: [30, 180, 60] },
  { frame: 'frame-cross', id: 'box', rgb: [250, 140, 0] },
  { frame: 'frame-cross', id: 'img', rgb: COLORS.teal! },
  { frame: 'frame-site', id: 'box', rgb: [250, 140, 0] },
  { frame: 'frame-site', id: 'img', rgb: COLORS.teal! },
  ...FRAMES.flatMap((frame) => [
    { frame, id: 'img-rel', rgb: COLORS.navy! },
    { frame, id: 'bg', rgb: COLORS.purple! },
    { frame, id: 'set', rgb: COLORS.brown! },
    { frame, id: 'late', rgb: COLORS.gray! },
    { frame, id: 'rule', rgb: COLORS.orange! },
  ]),
];

const LATE = new Set(['late', 'rule']);

const close = (a: number[], b: number[], tolerance = 40) => a.every((v, i) => Math.abs(v - b[i]!) <= tolerance);

/**
 * The colour on screen at the centre of the replayed `#id`, in the top document or inside the
 * replayed `<iframe id=frame>`. The position is read in the replay's own documents (the replayed
 * frames are rebuilt with document.open, which Playwright's frame tracking need not follow), then
 * scaled by the viewer's scale (the replay iframe's on-screen width over its CSS width).
 */
async function colourInViewer(viewer: Page, decoder: Page, frame: string | null, id: string): Promise<number[] | null> {
  const replayIframe = await viewer.$('.replayer-wrapper > iframe');
  const outer = await replayIframe?.boundingBox();
  if (!replayIframe || !outer) return null;
  const inner = await replayIframe.evaluate((el, [f, i]) => {
    const iframe = el as HTMLIFrameElement;
    const doc = iframe.contentDocument;
    if (!doc) return null;
    let x = 0;
    let y = 0;
    let target: Document | null = doc;
    if (f) {
      const host = doc.getElementById(f) as HTMLIFrameElement | null;
      if (!host) return null;
      const r = host.getBoundingClientRect();
      x += r.left + host.clientLeft;
      y += r.top + host.clientTop;
      target = host.contentDocument;
    }
    const box = target?.getElementById(i)?.getBoundingClientRect();
    if (!box || box.width < 4 || box.height < 4) return null;
    return { x: x + box.left + box.width / 2, y: y + box.top + box.height / 2, cssWidth: iframe.clientWidth };
  }, [frame, id] as const);
  if (!inner) return null;
  const scale = outer.width / inner.cssWidth;
  const png = await viewer.screenshot({ clip: { x: outer.x + inner.x * scale - 1, y: outer.y + inner.y * scale - 1, width: 2, height: 2 } });
  return (await pngPixels(decoder, png, [{ x: 0, y: 0 }]))[0]!;
}

async function expectBoxes(viewer: Page, decoder: Page, when: string, boxes = BOXES): Promise<void> {
  for (const { frame, id, rgb } of boxes) {
    let last: number[] | null = null;
    const where = frame ? `#${frame} #${id}` : `#${id}`;
    await waitFor(`${when}: ${where} shows rgb(${rgb.join(',')})`, async () => {
      last = await colourInViewer(viewer, decoder, frame, id);
      return last !== null && close(last, rgb);
    }, 10_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}; saw rgb(${String(last)})`);
    });
  }
}

describe('frames: same-origin and cross-origin iframes in the viewer', () => {
  let stack: Stack;
  let site: FidelitySite;
  let browser: Browser;
  let context: BrowserContext;
  let decoder: Page;
  const dataDir = mkdtempSync(join(tmpdir(), 'domcast-frames-'));
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

  test('a same-origin frame, a cross-origin one and a cross-site one show live, for a late joiner after a checkpoint and in replay after a restart; the page never sees their events; private regions stay private inside and around frames', async () => {
    const { status, body } = await execute(stack.base, {
      workflow: {
        name: 'frames',
        steps: [
          { type: 'navigation', url: `${site.a}/frames.html` },
          { type: 'wait', ms: 2500, description: 'settle' },
          { type: 'wait', ms: 15_000, description: 'hold' },
        ],
      },
      visual_enabled: true,
    });
    assert.equal(status, 202, JSON.stringify(body));
    const session = stack.server.deps.registry.get(body.session_id)!;
    const live = await context.newPage();
    await live.goto(body.viewer_url!);
    await waitFor('the run to reach its hold', () => session.currentStep === 2, 30_000);
    await expectBoxes(live, decoder, 'live', BOXES.filter((b) => !LATE.has(b.id)));
    // The frames are in the stream: what they change now reaches it as incremental events, URLs as the page wrote them.
    const source = stack.server.deps.runs.page(body.session_id)!;
    const framed = source.frames().filter((f) => /\/frame-same\.html|kind=(cross|site)/.test(f.url()));
    assert.equal(framed.length, FRAMES.length, `the frames: ${source.frames().map((f) => f.url()).join(' ')}`);
    await Promise.all(framed.map((f) => f.evaluate(() => (window as unknown as { late: () => void }).late())));
    await expectBoxes(live, decoder, 'live, after changes');

    // A checkpoint: the top frame sends a new FullSnapshot, from which late joiners start. rrweb
    // would leave the cross-origin frames blank there; they must have sent theirs after it.
    const before = session.log.checkpointSeq;
    session.requestSnapshot();
    await waitFor('a new checkpoint', () => session.log.checkpointSeq > before);
    const late = await context.newPage();
    await late.goto(body.viewer_url!);
    await expectBoxes(late, decoder, 'late joiner after a checkpoint');
    // The live viewer rebuilt the page from that checkpoint too.
    await expectBoxes(live, decoder, 'live after a checkpoint');

    // rrweb's recordCrossOriginIframes posts every event of a frame to its parent window; here the
    // page's own listener heard nothing at all.
    const heard = await source.evaluate(() => (window as unknown as { __messages: unknown[] }).__messages);
    assert.deepEqual(heard, [], 'the top page received no message from its frames');
    const frameUrls = source.frames().map((f) => f.url());
    assert.ok(frameUrls.some((u) => u.startsWith(`${site.c}/frame.html`)), `the cross-site frame loaded: ${frameUrls.join(' ')}`);

    // What is left of the hold is cancelled: it only had to outlast the checks above on a loaded machine.
    if (!session.finished) await fetch(`${stack.base}/workflows/${body.session_id}/cancel`, { method: 'POST' });
    await waitFor('the run to end', () => session.finished, 40_000);
    assert.ok(['succeeded', 'cancelled'].includes(session.status), `${session.status}: ${session.error ?? ''}`);
    await Promise.all([live.close(), late.close()]);

    // What the frames showed is in the recording; what is private is not (inside a frame, and a frame inside a private region).
    const recording = await (await fetch(`${stack.base}/workflows/${body.session_id}/events`)).text();
    for (const shown of ['frame-visible-text', '"textContent":"cross"', '"textContent":"site"']) assert.ok(recording.includes(shown), `the recording has ${shown}`);
    for (const hidden of ['frame-secret-card-4242', 'frame-private-text-7781', '"textContent":"blocked"']) assert.ok(!recording.includes(hidden), `the recording has no ${hidden}`);

    // A restart: the recording (and the frames' captured image) come from the store.
    await stack.close();
    stack = await startStack({ BROWSER_ISOLATION: 'run', DOMCAST_DATA_DIR: dataDir });
    const replay = await context.newPage();
    await replay.goto(body.viewer_url!.replace(/^http:\/\/127\.0\.0\.1:\d+/, stack.base));
    await expectBoxes(replay, decoder, 'replay after a restart');
    await replay.close();

    assert.deepEqual(outside, [], 'the viewer made no request outside its origin');
    assert.deepEqual(site.requests.filter((r) => r.userAgent === VIEWER_UA), [], 'the site never heard from a viewer');
  });

  test('step and failure screenshots cover masked fields, masked text and private regions inside same-origin, cross-origin and cross-site frames', async () => {
    const { status, body } = await execute(stack.base, {
      workflow: {
        name: 'frames masked',
        steps: [
          { type: 'navigation', url: `${site.a}/frames.html` },
          { type: 'wait', ms: 2500, description: 'settle' },
          { type: 'wait', ms: 3000, description: 'hold' },
          { type: 'screenshot', description: 'shot' },
          { type: 'wait', cssSelector: '#never-there', timeoutMs: 500, description: 'fails, for the failure screenshot' },
        ],
      },
      visual_enabled: true,
      mask_all_inputs: true,
      mask_text_selector: '#text',
    });
    assert.equal(status, 202, JSON.stringify(body));
    const session = stack.server.deps.registry.get(body.session_id)!;
    await waitFor('the run to reach its hold', () => session.currentStep === 2, 30_000);
    // Where each element is in the run's own viewport (the screenshots' pixels), frames' offsets included.
    const page = stack.server.deps.runs.page(body.session_id)!;
    const probes = [
      ...FRAMES.flatMap((frame) => [
        { frame, id: 'card', masked: true },
        { frame, id: 'text', masked: true },
        { frame, id: 'private', masked: true },
        { frame, id: 'box', masked: false },
      ]),
      { frame: null, id: 'frame-blocked', masked: true },
      { frame: null, id: 'top-box', masked: false },
    ];
    const points = await Promise.all(probes.map(async ({ frame, id }) => {
      const box = await (frame ? page.frameLocator(`#${frame}`).locator(`#${id}`) : page.locator(`#${id}`)).boundingBox();
      assert.ok(box, `#${frame ?? ''} #${id} has a box`);
      return { x: Math.round(box.x + box.width / 2), y: Math.round(box.y + box.height / 2) };
    }));
    await waitFor('the run to end', () => session.finished, 30_000);
    assert.equal(session.status, 'failed', 'the last step fails on purpose');

    const names = probes.map(({ frame, id }) => `${frame ? `#${frame} ` : ''}#${id}`);
    const expected = probes.map((p) => p.masked);
    for (const path of [`/workflows/${body.session_id}/steps/3/screenshot`, `/workflows/${body.session_id}/screenshot`]) {
      const res = await fetch(`${stack.base}${path}`);
      assert.equal(res.status, 200, path);
      const pixels = await pngPixels(decoder, Buffer.from(await res.arrayBuffer()), points);
      // Playwright's mask colour, #FF00FF.
      const masked = pixels.map(([r, g, b]) => r > 240 && g < 20 && b > 240);
      assert.deepEqual(Object.fromEntries(names.map((n, i) => [n, masked[i]])), Object.fromEntries(names.map((n, i) => [n, expected[i]])), `${path}: rgb ${JSON.stringify(pixels)}`);
    }
  });
});
