import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { CustomTag, RrwebEventType, type StepCustomPayload, type WireEvent } from '../../src/protocol/index.js';
import { bodyText, replayedText, demoWorkflow, execute, launchViewerBrowser, startStack, waitFor } from '../helpers/stack.js';

let browser: Browser;
before(async () => {
  browser = await launchViewerBrowser();
});
after(async () => {
  await browser?.close();
});

test('a finished run replays with controls: it opens on the final page, before and after a restart, at ?t= and when played', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'domcast-replay-'));
  const first = await startStack({ DOMCAST_DATA_DIR: dataDir });
  let id: string;
  let expected: string;
  let events: WireEvent[];
  try {
    const { body } = await execute(first.base, { workflow: demoWorkflow(first.site.url, { midWaitMs: 1500, holdMs: 1500 }), inputs: { user: 'rosa' }, visual_enabled: true });
    id = body.session_id;
    const session = first.server.deps.registry.get(id)!;
    await waitFor('the final hold', () => session.currentStep === 12);
    expected = (await first.server.deps.runs.page(id)!.evaluate(bodyText)) as string;
    await waitFor('the end', () => session.finished);
    events = (await (await fetch(`${first.base}/workflows/${id}/events`)).json()) as WireEvent[];

    const viewer = await browser.newPage();
    await viewer.goto(await first.server.viewerUrl(id));
    await waitFor('replay mode', () => viewer.evaluate(() => document.documentElement.dataset.connection === 'replay'));
    await waitFor('the final page', async () => (await replayedText(viewer)) === expected);
    await viewer.close();
  } finally {
    await first.close();
  }

  const second = await startStack({ DOMCAST_DATA_DIR: dataDir });
  try {
    const url = await second.server.viewerUrl(id);
    const viewer = await browser.newPage();
    await viewer.goto(url);
    await waitFor('the final page after a restart', async () => (await replayedText(viewer)) === expected);
    const markers = await viewer.locator('#markers i').count();
    assert.equal(markers, 13, 'a marker per step on the seek bar');

    // ?t= opens at a moment: the middle step, on the todo page.
    const start = events[0]!.timestamp;
    const middle = events.find((e) => e.type === RrwebEventType.Custom && (e.data as { tag: string; payload: StepCustomPayload }).tag === CustomTag.step && (e.data as { payload: StepCustomPayload }).payload.index === 9)!;
    await viewer.goto(`${url}&t=${middle.timestamp - start + 300}`);
    const atMiddle = await waitFor('the todo page at t', async () => {
      const text = await replayedText(viewer);
      return text.includes('beta item') ? text : null;
    });
    assert.doesNotMatch(atMiddle, /About Acme Portal/);

    // Play from there at 8×: it reaches the end on the final page.
    await viewer.selectOption('#speed', '8');
    await viewer.click('#play');
    assert.equal(await viewer.evaluate(() => document.documentElement.dataset.playing), 'true');
    await waitFor('the end of the replay', () => viewer.evaluate(() => document.documentElement.dataset.playing === 'false'), 20_000);
    await waitFor('the final page after playing', async () => (await replayedText(viewer)) === expected);
    await viewer.close();
  } finally {
    await second.close();
  }
});
