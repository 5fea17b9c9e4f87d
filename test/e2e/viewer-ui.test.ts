import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { bodyText, demoWorkflow, execute, launchViewerBrowser, replayedText, startStack, waitFor, type Stack } from '../helpers/stack.js';

const root = <K extends string>(page: Page, key: K) => page.evaluate((k) => document.documentElement.dataset[k], key);
const highlighted = (page: Page) => page.evaluate(() => document.querySelector<HTMLElement>('#steps li[aria-current=step]')?.dataset.index ?? null);

/** Whether the highlighted row is inside the steps list's visible box (the list scrolls to it). */
const highlightInView = (page: Page) =>
  page.evaluate(() => {
    const li = document.querySelector('#steps li[aria-current=step]');
    if (!li) return false;
    const box = document.getElementById('steps')!.getBoundingClientRect();
    const r = li.getBoundingClientRect();
    return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  });

interface Box { left: number; right: number; top: number; bottom: number; width: number; height: number }
interface Layout { scrollWidth: number; innerHeight: number; panel: Box | null; controls: Box | null; play: Box | null; seek: Box | null; page: Box | null; error: Box | null }

/** How wide the document is, and where the panel, the controls, the replayed page and the error are (null: not shown). A string: tsx would name a nested function. */
const LAYOUT = `(() => {
  const rect = (sel) => {
    const el = document.querySelector(sel);
    if (!el || getComputedStyle(el).display === 'none' || el.closest('[hidden]')) return null;
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height };
  };
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerHeight,
    panel: rect('#panel'),
    controls: rect('#controls'),
    play: rect('#play'),
    seek: rect('#seek'),
    page: rect('#stage .replayer-wrapper'),
    error: rect('#placeholder .message') ?? rect('#error'),
  };
})()`;
const narrowLayout = (page: Page) => page.evaluate(LAYOUT) as Promise<Layout>;

describe('the viewer page', () => {
  let stack: Stack;
  let browser: Browser;

  before(async () => {
    stack = await startStack();
    browser = await launchViewerBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('the step list follows the run, switches to the replay controls when the run ends, and its highlight follows seeking and the keyboard', async () => {
    const { body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { midWaitMs: 2500, holdMs: 1500 }), inputs: { user: 'ada' }, visual_enabled: true });
    const session = stack.server.deps.registry.get(body.session_id)!;
    // Short enough that the 13 steps do not all fit: the list has to scroll to the current one.
    const page = await browser.newPage({ viewport: { width: 1280, height: 460 } });
    await page.goto(body.viewer_url!);

    await waitFor('the middle step', () => session.currentStep === 9);
    await waitFor('the middle step highlighted', async () => (await highlighted(page)) === '9');
    assert.ok(await page.evaluate(() => document.getElementById('steps')!.scrollHeight > document.getElementById('steps')!.clientHeight), 'the list overflows');
    await waitFor('the list scrolled to it', () => highlightInView(page));
    assert.equal(await page.isVisible('#golive.on'), true, 'the live controls while it runs');
    assert.equal(await page.textContent('#time'), 'live');

    await waitFor('the final hold', () => session.currentStep === 12);
    const expected = (await stack.server.deps.runs.page(body.session_id)!.evaluate(bodyText)) as string;
    await waitFor('replay mode, without a reload', async () => (await root(page, 'mode')) === 'replay', 30_000);
    assert.equal(await root(page, 'connection'), 'replay');
    assert.equal(await page.isVisible('#golive'), false, 'no Live button once the run is over');
    assert.match((await page.textContent('#time'))!, /^\d+:\d\d \/ \d+:\d\d$/);
    assert.equal(await page.getAttribute('#play', 'aria-label'), 'Play');
    assert.equal(await page.locator('#markers i').count(), 13, 'a marker per step');
    assert.equal(await replayedText(page), expected, 'still on the final page');
    assert.equal(await highlighted(page), '12', 'the replay stands at its end: the last step');

    // Seeking moves the highlight: the start is the first step, the middle of the bar a middle step.
    await page.locator('#seek').fill('0');
    await waitFor('the first step highlighted', async () => (await highlighted(page)) === '0');
    await waitFor('the list scrolled back to it', () => highlightInView(page));
    assert.equal(await page.evaluate(() => document.getElementById('steps')!.scrollTop), 0);

    // A step row is a way to seek: the middle step, on the todo page.
    await page.click('#steps li[data-index="9"]');
    await waitFor('the middle step highlighted', async () => (await highlighted(page)) === '9');
    await waitFor('the todo page', async () => (await replayedText(page)).includes('beta item'));

    // Keyboard: the seek bar takes focus visibly; End, arrows (5 s) and Space work on it.
    await page.focus('#play');
    await page.keyboard.press('Tab');
    assert.deepEqual(
      await page.evaluate(() => [document.activeElement!.id, document.activeElement!.matches(':focus-visible'), getComputedStyle(document.activeElement!).outlineStyle]),
      ['seek', true, 'solid'],
    );
    await page.keyboard.press('End');
    await waitFor('the end by keyboard', async () => (await highlighted(page)) === '12');
    const end = Number(await root(page, 'replayAt'));
    await page.keyboard.press('ArrowLeft');
    await waitFor('5 s back', async () => Math.abs(Number(await root(page, 'replayAt')) - Math.max(0, end - 5000)) < 50);
    await page.keyboard.press('Home');
    await waitFor('the start by keyboard', async () => Number(await root(page, 'replayAt')) === 0);
    await page.keyboard.press('ArrowRight');
    await waitFor('5 s on', async () => Number(await root(page, 'replayAt')) === Math.min(end, 5000));
    await page.keyboard.press(' ');
    await waitFor('playing', async () => (await root(page, 'playing')) === 'true');
    await page.keyboard.press(' ');
    await waitFor('paused', async () => (await root(page, 'playing')) === 'false');
    await page.close();
  });

  test('with reduced motion asked for, the running step and the waiting page do not spin; without, they turn', async () => {
    const { body } = await execute(stack.base, { workflow: { name: 'still', steps: [{ type: 'wait', ms: 60_000, description: 'a long wait' }] }, visual_enabled: true });
    const spins = (p: Page) =>
      p.evaluate(() => ['#steps li.running .ic', '#placeholder .spinner'].map((s) => { const el = document.querySelector(s); return el ? getComputedStyle(el).animationName : null; }));
    try {
      // This browser's pages ask for reduced motion unless told otherwise (test/helpers/stack.ts).
      const still = await browser.newPage();
      const moving = await browser.newPage({ reducedMotion: 'no-preference' });
      await Promise.all([still.goto(body.viewer_url!), moving.goto(body.viewer_url!)]);
      await waitFor('the running step, turning, without reduced motion', async () => (await spins(moving)).join() === 'spin,spin');
      await waitFor('the running step, still, with reduced motion', async () => (await spins(still)).join() === 'none,none');
      assert.deepEqual(await spins(moving), ['spin', 'spin'], 'the other page still turns');
      await Promise.all([still.close(), moving.close()]);
    } finally {
      await fetch(`${stack.base}/workflows/${body.session_id}/cancel`, { method: 'POST' });
    }
  });

  test('a run that fails before any page is recorded says what happened instead of waiting for the browser, live and afterwards', async () => {
    const { body } = await execute(stack.base, {
      workflow: { name: 'unreachable', steps: [{ type: 'wait', ms: 1500, description: 'pause' }, { type: 'navigation', url: 'http://127.0.0.1:9/', description: 'open the site' }, { type: 'click', cssSelector: '#go' }] },
      visual_enabled: true,
    });
    const session = stack.server.deps.registry.get(body.session_id)!;
    const live = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await live.goto(body.viewer_url!);
    await waitFor('the viewer connected while the run goes', async () => (await root(live, 'connection')) === 'live' && !session.finished);
    assert.match((await live.textContent('#placeholder'))!, /Waiting for the browser/);

    for (const page of [live, await browser.newPage({ viewport: { width: 390, height: 844 } })]) {
      if (page !== live) await page.goto(body.viewer_url!);
      const said = await waitFor('the failure in place of the spinner', async () => {
        const text = await page.evaluate(() => document.querySelector<HTMLElement>('#placeholder .why') ? document.getElementById('placeholder')!.innerText : null);
        return text;
      });
      assert.match(said, /The run failed before any page was recorded\./);
      assert.match(said, /Step 2 of 3: open the site/);
      assert.match(said, /ERR_UNSAFE_PORT/);
      assert.doesNotMatch(said, /Waiting for the browser/);
      assert.equal(await page.locator('#placeholder .spinner').count(), 0);
      assert.equal(await page.isVisible('#placeholder .message'), true);
      assert.equal(await page.isVisible('#controls'), false, 'nothing to replay: no controls');
      assert.equal(await highlighted(page), null);
      assert.equal(await page.getAttribute('#steps li[data-index="1"]', 'class'), 'failed');
      const layout = await narrowLayout(page);
      assert.ok(layout.scrollWidth <= (page === live ? 1280 : 390), JSON.stringify(layout));
      assert.ok(layout.error && layout.error.right <= layout.scrollWidth && layout.error.bottom <= layout.innerHeight, `the failure is on screen: ${JSON.stringify(layout)}`);
      // A screenshot link only when there is a screenshot of that step.
      const info = (await (await fetch(`${stack.base}/workflows/${body.session_id}`)).json()) as { steps: { screenshotAvailable?: boolean }[] };
      if (info.steps[1]!.screenshotAvailable) {
        const href = await page.getAttribute('#placeholder a', 'href');
        assert.match(href ?? '', new RegExp(`/workflows/${body.session_id}/steps/1/screenshot\\?token=`));
        assert.equal((await page.request.get(new URL(href!, stack.base).href)).headers()['content-type'], 'image/png');
      } else assert.equal(await page.locator('#placeholder a').count(), 0);
      await page.close();
    }
  });

  test('at 390 px wide nothing scrolls sideways: the page is scaled to the width, the controls fit, and the steps follow below, foldable', async () => {
    const { body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { midWaitMs: 2000, holdMs: 1000 }), inputs: { user: 'lin' }, visual_enabled: true });
    const session = stack.server.deps.registry.get(body.session_id)!;
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await page.goto(body.viewer_url!);
    await waitFor('the middle step', () => session.currentStep === 9);
    await waitFor('the todo page', async () => (await replayedText(page)).includes('alpha item'));

    const check = async (when: string) => {
      const l = await narrowLayout(page);
      const say = `${when}: ${JSON.stringify(l)}`;
      assert.ok(l.scrollWidth <= 390, say);
      assert.ok(l.page && l.page.left >= 0 && l.page.right <= 390 && l.page.width > 300, `the page fills the width: ${say}`);
      for (const part of ['controls', 'play', 'seek'] as const) {
        const r = l[part];
        assert.ok(r && r.left >= 0 && r.right <= 390 && r.bottom <= l.innerHeight && r.height > 0, `${part} on screen: ${say}`);
      }
      assert.ok(l.seek!.width > 200, `a usable seek bar: ${say}`);
      assert.ok(l.panel && l.panel.left >= 0 && l.panel.right <= 390 && l.panel.top < l.innerHeight, `steps panel reachable: ${say}`);
      assert.ok(l.page!.bottom <= l.controls!.top, `the controls do not cover the page: ${say}`);
    };
    await check('live');
    assert.equal(await page.isVisible('#steps li[aria-current=step]'), true);

    await waitFor('replay mode', async () => (await root(page, 'mode')) === 'replay', 30_000);
    await check('ended');

    // The list folds and unfolds from its heading.
    await page.click('#stepstoggle');
    assert.equal(await page.isVisible('#steps'), false);
    assert.equal(await page.getAttribute('#stepstoggle', 'aria-expanded'), 'false');
    await page.keyboard.press('Enter');
    assert.equal(await page.isVisible('#steps'), true);
    assert.equal(await page.getAttribute('#stepstoggle', 'aria-expanded'), 'true');
    await page.close();
  });
});
