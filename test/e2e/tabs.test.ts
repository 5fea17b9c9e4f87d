import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { CustomTag, RrwebEventType, type TabsCustomPayload } from '../../src/protocol/index.js';
import { WsViewer, execute, launchViewerBrowser, startStack, waitFor, type Stack } from '../helpers/stack.js';

interface RunRecord {
  status: string;
  error: string | null;
  outputs: Record<string, unknown>;
}

/** The pages the stream showed, in order: each Meta event's URL path. */
const shown = (viewer: WsViewer): string[] =>
  viewer.received.filter((r) => r.event.type === RrwebEventType.Meta).map((r) => new URL((r.event.data as { href: string }).href).pathname.replace(/^.*\//, ''));

const tabEvents = (viewer: WsViewer): TabsCustomPayload[] =>
  viewer.received
    .filter((r) => r.event.type === RrwebEventType.Custom && (r.event.data as { tag: string }).tag === CustomTag.tabs)
    .map((r) => (r.event.data as { payload: TabsCustomPayload }).payload);

describe('tabs and popups', () => {
  let stack: Stack;
  let pages: StaticSite;
  before(async () => {
    stack = await startStack();
    pages = await serveStatic(join(projectRoot, 'test', 'fixtures', 'pages', 'tabs'));
  });
  after(async () => {
    await pages?.close();
    await stack?.close();
  });

  async function runIt(workflow: unknown): Promise<{ run: RunRecord; viewer: WsViewer; id: string }> {
    const { status, body } = await execute(stack.base, { workflow, visual_enabled: true });
    assert.equal(status, 202, JSON.stringify(body));
    const viewer = await WsViewer.open(body.visual_stream_url!);
    await viewer.closed;
    const run = (await (await fetch(`${stack.base}/workflows/${body.session_id}`)).json()) as RunRecord;
    return { run, viewer, id: body.session_id };
  }

  test("a workflow-use recording's tabIds: a target=_blank tab is used, then the opener again, then the tab closes; the stream shows each tab as the run goes there", async () => {
    const { run, viewer, id } = await runIt({
      name: 'tabs by tabId',
      steps: [
        { type: 'navigation', url: `${pages.url}/index.html`, tabId: 7 },
        { type: 'click', cssSelector: '#blank', tabId: 7 },
        { type: 'input', cssSelector: '#name', value: 'Ada', tabId: 9 },
        { type: 'click', cssSelector: '#send', tabId: 9 },
        { type: 'extract_page_content', cssSelector: '#result', output: 'opener', tabId: 7 },
        { type: 'extract_page_content', cssSelector: '#sent', output: 'form', tabId: 9 },
        { type: 'click', cssSelector: '#close', tabId: 9 },
      ],
    });
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.equal(run.outputs.opener, 'sent Ada', 'the step ran in the opener, which heard from the tab');
    assert.equal(run.outputs.form, 'sent Ada', 'and back in the tab');
    // Opener, the new tab, the opener, the tab, and the opener once the tab closed.
    assert.deepEqual(shown(viewer), ['index.html', 'form.html', 'index.html', 'form.html', 'index.html']);
    const tabs = tabEvents(viewer);
    assert.ok(tabs.length >= 4, `tab lists sent: ${tabs.length}`);
    const last = tabs.at(-1)!.tabs;
    assert.deepEqual(last.map((t) => [t.index, t.active, t.closed]), [[1, true, false], [2, false, true]]);
    // The form's typed value reached the stream while its tab was shown (an input event on it).
    assert.ok(viewer.received.some((r) => r.event.type === RrwebEventType.IncrementalSnapshot && r.json.includes('"text":"Ada"')), 'typing in the tab was streamed');

    // A late joiner (the run is over: its recording) gets the tab list in its hello and the last tab shown.
    const late = await WsViewer.open((await (await fetch(`${stack.base}/workflows/${id}`)).json() as { visual_stream_url: string }).visual_stream_url);
    await waitFor('the late joiner ends', () => late.ended());
    assert.deepEqual(late.hello()?.tabs?.map((t) => t.active), [true, false]);
    assert.equal(shown(late).at(-1), 'index.html');
  });

  test('without tabIds the run follows the popup a step opened', async () => {
    const { run, viewer } = await runIt({
      name: 'popup without tabIds',
      steps: [
        { type: 'navigation', url: `${pages.url}/index.html` },
        { type: 'click', cssSelector: '#popup' },
        { type: 'input', cssSelector: '#name', value: 'Grace' },
        { type: 'click', cssSelector: '#send' },
        { type: 'extract_page_content', cssSelector: '#sent', output: 'sent' },
      ],
    });
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.equal(run.outputs.sent, 'sent Grace');
    assert.deepEqual(shown(viewer), ['index.html', 'form.html']);
    assert.deepEqual(tabEvents(viewer).at(-1)!.tabs.map((t) => [t.index, t.active]), [[1, false], [2, true]]);
  });

  test("the viewer shows the run's tabs and which one it is on, live and in the replay", async () => {
    const { status, body } = await execute(stack.base, {
      workflow: {
        name: 'tabs in the viewer',
        steps: [
          { type: 'navigation', url: `${pages.url}/index.html` },
          { type: 'click', cssSelector: '#popup' },
          { type: 'input', cssSelector: '#name', value: 'Ada' },
          { type: 'wait', ms: 3000 },
        ],
      },
      visual_enabled: true,
    });
    assert.equal(status, 202, JSON.stringify(body));
    const browser = await launchViewerBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      await page.goto(body.viewer_url!);
      const strip = page.locator('#tabs');
      await strip.locator('.tab[data-active="true"]').filter({ hasText: 'form.html' }).waitFor({ timeout: 15_000 });
      assert.deepEqual(await strip.locator('.tab').evaluateAll((tabs) => tabs.map((t) => [t.textContent?.split(' · ')[0], (t as HTMLElement).dataset.active])), [
        ['1', 'false'],
        ['2', 'true'],
      ]);
      const frame = page.frameLocator('.replayer-wrapper iframe');
      await frame.locator('#form-title').waitFor({ timeout: 5000 });
      if (process.env.TABS_SCREENSHOTS) await page.screenshot({ path: `${process.env.TABS_SCREENSHOTS}/viewer-tabs-1280.png` });
      // Once the run is over, the replay shows the same list.
      await page.locator('html[data-mode="replay"]').waitFor({ timeout: 20_000 });
      const replayed = await browser.newPage();
      await replayed.goto(body.viewer_url!);
      await replayed.locator('#tabs .tab[data-active="true"]').filter({ hasText: 'form.html' }).waitFor({ timeout: 15_000 });
    } finally {
      await browser.close();
    }
  });

  test('a step in a tab that never opens fails with the reason, at its own timeout', async () => {
    const { run } = await runIt({
      name: 'missing tab',
      steps: [
        { type: 'navigation', url: `${pages.url}/index.html`, tabId: 1 },
        { type: 'input', cssSelector: '#name', value: 'x', tabId: 2, timeoutMs: 1500 },
      ],
    });
    assert.equal(run.status, 'failed');
    assert.match(run.error ?? '', /step 2 \(input #name\) failed: the step is in tab 2 of the recording, but no new tab opened within 1500 ms/);
  });
});
