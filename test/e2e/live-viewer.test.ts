import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { cuttableProxy } from '../helpers/proxy.js';
import { bodyText, replayedText, demoWorkflow, execute, launchViewerBrowser, startStack, waitFor, type Stack } from '../helpers/stack.js';

describe('the live viewer', () => {
  let stack: Stack;
  let browser: Browser;

  before(async () => {
    stack = await startStack({ BROWSER_ISOLATION: 'run' });
    browser = await launchViewerBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('a viewer connected before the run and one that joins mid-run both end with the same DOM text as the source page', async () => {
    const { status, body } = await execute(stack.base, {
      workflow: demoWorkflow(stack.site.url, { midWaitMs: 2500, holdMs: 3000 }),
      inputs: { user: 'grace' },
      visual_enabled: true,
    });
    assert.equal(status, 202);
    assert.ok(body.viewer_url);
    const early = await browser.newPage();
    await early.goto(body.viewer_url);

    // Typing shows up as it happens, masked: while the password is being typed its field fills with '*'.
    const session = stack.server.deps.registry.get(body.session_id)!;
    await waitFor('the password step', () => session.currentStep === 2);
    await waitFor('the password being typed, masked, in the replay', async () => {
      const frame = early.frames().find((f) => f !== early.mainFrame());
      const value = frame ? await frame.evaluate(() => (document.getElementById('password') as HTMLInputElement | null)?.value).catch(() => null) : null;
      return session.currentStep === 2 && typeof value === 'string' && /^\*{3,}$/.test(value);
    });
    assert.equal(
      await early.frames()[1]!.evaluate(() => (document.getElementById('username') as HTMLInputElement).value),
      'grace',
    );

    // Join while the run is in its middle step (on the todo page).
    await waitFor('the middle step', () => session.currentStep === 9);
    const late = await browser.newPage();
    await late.goto(body.viewer_url);
    const lateText = await waitFor('late viewer shows the todo page', async () => {
      const text = await replayedText(late);
      return text.includes('alpha item') ? text : null;
    });
    assert.match(lateText, /beta item/);

    // During the final hold the source page is still there: compare it with both replays.
    await waitFor('the final hold', () => session.currentStep === 12);
    const source = stack.server.deps.runs.page(body.session_id)!;
    const expected = (await source.evaluate(bodyText)) as string;
    assert.match(expected, /About Acme Portal/);
    for (const viewer of [early, late]) {
      await waitFor('replay equal to the source page', async () => (await replayedText(viewer)) === expected);
    }

    // When the run ends both viewers become its replay, without a reload, and keep showing the final page.
    for (const viewer of [early, late]) {
      await waitFor('viewer shows the end', () => viewer.evaluate(() => document.documentElement.dataset.mode === 'replay'));
      assert.equal(await viewer.evaluate(() => document.documentElement.dataset.status), 'succeeded');
      assert.equal(await replayedText(viewer), expected);
    }

    // A viewer opened after the run ended sees the final page at once.
    const afterwards = await browser.newPage();
    await afterwards.goto(body.viewer_url);
    await waitFor('a viewer opened afterwards shows the final page', async () => (await replayedText(afterwards)) === expected);
    await Promise.all([early.close(), late.close(), afterwards.close()]);
  });

  test('a viewer whose connection drops reconnects, resumes where it was and ends on the source page', async () => {
    const { body } = await execute(stack.base, {
      workflow: demoWorkflow(stack.site.url, { midWaitMs: 2500, holdMs: 2500 }),
      inputs: { user: 'ken' },
      visual_enabled: true,
    });
    const proxy = await cuttableProxy(new URL(stack.base));
    try {
      const page = await browser.newPage();
      const frames: string[] = [];
      page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
      await page.goto(body.viewer_url!.replace(stack.base, proxy.url));
      const session = stack.server.deps.registry.get(body.session_id)!;
      await waitFor('the middle step', () => session.currentStep === 9);
      await waitFor('events received', () => page.evaluate(() => Number(document.documentElement.dataset.lastSeq) > 10));
      const framesBeforeCut = frames.length;
      proxy.cut();
      await waitFor('the viewer notices', () => page.evaluate(() => document.documentElement.dataset.connection === 'reconnecting'));
      await waitFor('the viewer is back', () => page.evaluate(() => document.documentElement.dataset.connection === 'live'), 15_000);
      await waitFor('the final hold', () => session.currentStep === 12);
      const expected = (await stack.server.deps.runs.page(body.session_id)!.evaluate(bodyText)) as string;
      await waitFor('replay equal to the source page', async () => (await replayedText(page)) === expected);
      await waitFor('the end', () => page.evaluate(() => ['ended', 'replay'].includes(document.documentElement.dataset.connection!)));
      // The second connection resumed (no reset), and the viewer holds exactly the log's last seq.
      const afterCut = frames.slice(framesBeforeCut);
      assert.ok(afterCut.some((f) => f.startsWith('{"t":"hello"')), 'a new connection was made');
      assert.ok(!afterCut.some((f) => f.startsWith('{"t":"reset"')), 'a resume must not rebuild from a reset');
      assert.equal(await page.evaluate(() => Number(document.documentElement.dataset.lastSeq)), session.log.lastSeq);
      await page.close();
    } finally {
      await proxy.close();
    }
  });

  test('a live viewer can rewind to the start and jump back to live while the stream keeps arriving', async () => {
    const { body } = await execute(stack.base, {
      workflow: demoWorkflow(stack.site.url, { midWaitMs: 3000, holdMs: 2500 }),
      inputs: { user: 'joan' },
      visual_enabled: true,
    });
    const session = stack.server.deps.registry.get(body.session_id)!;
    const page = await browser.newPage();
    await page.goto(body.viewer_url!);
    await waitFor('the middle step', () => session.currentStep === 9);
    const lastFrame = () => page.frames().at(-1)!;

    // Scrub to the very start: the sign-in page, while the run goes on.
    await page.locator('#seek').fill('0');
    await waitFor('rewinding', () => page.evaluate(() => document.documentElement.dataset.rewinding === 'true'));
    await waitFor('the sign-in page in the rewind', async () => ((await lastFrame().evaluate(bodyText).catch(() => '')) as string).includes('Sign in'));
    const seqBefore = Number(await page.evaluate(() => document.documentElement.dataset.lastSeq));
    await waitFor('live events still arriving', async () => Number(await page.evaluate(() => document.documentElement.dataset.lastSeq)) > seqBefore + 3);

    // Back to live: the current page at once.
    await waitFor('the final hold', () => session.currentStep === 12);
    await page.click('#golive');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.rewinding), 'false');
    const expected = (await stack.server.deps.runs.page(body.session_id)!.evaluate(bodyText)) as string;
    await waitFor('live again, on the current page', async () => (await replayedText(page)) === expected);
    await page.close();
  });

  test('the viewer page loads with every request answered by the server itself', async () => {
    const { body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { holdMs: 500, midWaitMs: 200 }), inputs: { user: 'x' }, visual_enabled: true });
    const page = await browser.newPage();
    const origins = new Set<string>();
    const blocked: string[] = [];
    page.on('request', (r) => origins.add(new URL(r.url()).origin));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    await page.goto(body.viewer_url!);
    await waitFor('the run to end in the viewer', () => page.evaluate(() => document.documentElement.dataset.mode === 'replay'));
    // Walk the demo site's gallery too: images come from the copies the run's browser captured, served by us, not from the site.
    const gallery = await execute(stack.base, {
      workflow: { name: 'gallery', steps: [{ type: 'navigation', url: `${stack.site.url}/gallery.html` }, { type: 'wait', ms: 800 }] },
      visual_enabled: true,
    });
    await page.goto(gallery.body.viewer_url!);
    await waitFor('gallery images in the replay', async () => {
      const frame = page.frames().find((f) => f !== page.mainFrame());
      const imgs = frame ? await frame.evaluate(() => [...document.images].map((i) => ({ src: i.src, loaded: i.complete && i.naturalWidth > 0 }))).catch(() => []) : [];
      return imgs.length === 3 && imgs.every((i) => i.loaded && i.src.startsWith(`${stack.base}/workflows/visual/${gallery.body.session_id}/assets/`)) && imgs;
    });
    const allowed = new URL(stack.base).origin;
    const others = [...origins].filter((o) => o !== allowed && o !== 'null' && !o.startsWith('data:'));
    assert.deepEqual(others, [], `the viewer asked other origins: ${others.join(', ')}`);
    assert.deepEqual(blocked, [], 'the viewer tried to load something its CSP blocked');
    await page.close();
  });

  test('the stream opened in the head carries the frames that came before viewer.js ran: one connection, the page shown, the end followed', async () => {
    const { body } = await execute(stack.base, {
      workflow: { name: 'held', steps: [{ type: 'navigation', url: `${stack.site.url}/about.html` }, { type: 'wait', ms: 60_000 }] },
      visual_enabled: true,
    });
    const session = stack.server.deps.registry.get(body.session_id)!;
    await waitFor('the run to record its page', () => session.currentStep === 1 && session.log.lastSeq > 2);
    const page = await browser.newPage();
    const streams: string[] = [];
    page.on('websocket', (ws) => {
      if (ws.url().includes('/workflows/visual/')) streams.push(ws.url());
    });
    // viewer.js is held back until the head's socket has received frames of its own (beside the
    // start the page carried), and then until the run has ended: what viewer.js gets handed is a
    // socket holding the snapshot and the end.
    let heldFrames = -1;
    await page.route('**/assets/viewer.js', async (route) => {
      heldFrames = await waitFor('frames received on the early socket', () =>
        page.evaluate(() => window.__domcastEarlySocket?.frames.filter((f) => f instanceof MessageEvent).length ?? 0).then((n) => (n >= 1 ? n : null)),
      );
      await fetch(`${stack.base}/workflows/${body.session_id}/cancel`, { method: 'POST' });
      await waitFor('the end on the early socket', () =>
        page.evaluate(() => window.__domcastEarlySocket?.frames.some((m) => m instanceof MessageEvent && String(m.data).startsWith('{"t":"end"'))),
      );
      await route.continue();
    });
    // The page loads (its load event fires) although the replay was built from frames that came early.
    await page.goto(body.viewer_url!);
    await waitFor('the run, ended, replayed in the viewer', () => page.evaluate(() => document.documentElement.dataset.mode === 'replay'));
    await waitFor('the about page in the replay', async () => /About Acme Portal/.test(await replayedText(page)));
    assert.ok(heldFrames >= 1, `socket frames before viewer.js ran: ${heldFrames}`);
    assert.equal(streams.length, 1, `stream connections: ${streams.join(', ')}`);
    assert.equal(await page.evaluate(() => window.__domcastEarlySocket), undefined, 'viewer.js took the early socket');
    await page.close();
  });

  test("a late joiner's page carries the stream's start: drawn from it, the socket resumes after it (no reset, no reconnect counted), then live", async () => {
    const { body } = await execute(stack.base, {
      workflow: { name: 'held', steps: [{ type: 'navigation', url: `${stack.site.url}/about.html` }, { type: 'wait', ms: 60_000 }] },
      visual_enabled: true,
    });
    const id = body.session_id;
    const session = stack.server.deps.registry.get(id)!;
    await waitFor('the run to record its page', () => session.currentStep === 1 && session.log.lastSeq > 2);
    // Text that would end the data block, or open a comment in it, were it not escaped.
    const hostile = '</script><script>window.__pwned = 1</script><!-- x';
    await stack.server.deps.runs.page(id)!.evaluate((t) => document.body.append(document.createElement('p'), t), hostile);
    await waitFor('the text in the log', () => session.log.fromCheckpoint().events.some((e) => e.includes('window.__pwned')));

    const html = await (await fetch(body.viewer_url!)).text();
    const block = /<script type="application\/json" id="domcast-start">([^]*?)<\/script>/.exec(html)?.[1];
    assert.ok(block, 'the page carries the start');
    assert.ok(!block.includes('<'), 'no "<" inside the data block');
    const frames = JSON.parse(block) as { t: string; from?: number; epoch?: string; events?: unknown[] }[];
    assert.deepEqual(frames.map((f) => f.t).slice(0, 2), ['hello', 'reset']);
    assert.ok(JSON.stringify(frames).includes(hostile), 'the text comes back whole');

    const reconnections = { ...stack.server.deps.hub.reconnections };
    const page = await browser.newPage();
    const streams: string[] = [];
    const received: string[] = [];
    page.on('websocket', (ws) => {
      if (!ws.url().includes('/workflows/visual/')) return;
      streams.push(ws.url());
      ws.on('framereceived', (f) => received.push(String(f.payload).slice(0, 20)));
    });
    await page.goto(body.viewer_url!);
    await waitFor('the page, with the text as text', async () => (await replayedText(page)).includes(hostile));
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    // Live after the start: a change made now reaches the replay over the socket.
    await stack.server.deps.runs.page(id)!.evaluate(() => document.body.append('changed after the viewer opened'));
    await waitFor('the change, live', async () => (await replayedText(page)).includes('changed after the viewer opened'));
    assert.equal(streams.length, 1, `stream connections: ${streams.join(', ')}`);
    const params = new URL(streams[0]!).searchParams;
    assert.equal(params.get('page'), '1');
    assert.ok(Number(params.get('since')) >= 3, `since=${params.get('since')}`);
    assert.equal(params.get('epoch'), frames[0]!.epoch);
    assert.ok(!received.some((f) => f.startsWith('{"t":"reset"')), `frames: ${received.join(' | ')}`);
    assert.deepEqual({ ...stack.server.deps.hub.reconnections }, reconnections, 'not counted as a reconnect');
    await page.close();

    // An ended run's page carries nothing: it is a replay from the store.
    await fetch(`${stack.base}/workflows/${id}/cancel`, { method: 'POST' });
    await waitFor('the run to end', () => session.finished);
    assert.ok(!(await (await fetch(body.viewer_url!)).text()).includes('domcast-start'));
  });
});
