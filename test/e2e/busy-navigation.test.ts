// e2e: alone (it saturates the machine on purpose and times navigations on it)
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { MachineLoad } from '../../src/common/index.js';
import { runWorkflow, type RunResult, type StepHooks } from '../../src/workflow/index.js';
import { launchViewerBrowser } from '../helpers/stack.js';

const hooks: StepHooks = { onStepStart() {}, onStepEnd() {}, onStepFail() {} };

/** The machine's load is the input here (a saturated 2-core machine cannot be made on demand); the page, the server and the timing are real. */
describe('a navigation on a saturated machine', () => {
  let browser: Browser;
  let page: Page;
  let server: Server;
  let base = '';
  before(async () => {
    // Answers after ?ms= milliseconds: a page that is slow only because (we say) the machine is busy.
    server = createServer((req, res) => {
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>loaded</h1>'), ms);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchViewerBrowser();
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  const go = (ms: number, busy: number): Promise<RunResult> =>
    runWorkflow(page, { name: 'slow', steps: [{ type: 'navigation', url: `${base}/?ms=${ms}`, timeoutMs: 800 }] } as never, { hooks, machineBusy: () => busy });

  test('its timeout does not run while the machine is saturated', async () => {
    const result = await go(1500, 1);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(await page.textContent('h1'), 'loaded');
  });

  test('on an idle machine the step times out as it always did', async () => {
    const result = await go(1500, 0.2);
    assert.equal(result.ok, false);
    assert.match(!result.ok && !result.cancelled ? result.error.message : '', /step 1 \(navigation\) failed: page\.goto: Timeout 800ms exceeded\.$/);
  });

  test('however busy the machine, at most three times the timeout', async () => {
    const result = await go(5000, 1);
    assert.equal(result.ok, false);
    assert.match(!result.ok && !result.cancelled ? result.error.message : '', /Timeout 800ms exceeded \(after 1600 ms more while the machine was saturated\)/);
  });

  test('the gauge reads the machine: a share between 0 and 1 once sampled, nothing once released', async () => {
    const load = new MachineLoad();
    const release = load.hold();
    await new Promise((r) => setTimeout(r, 600));
    const busy = load.busy();
    assert.ok(busy >= 0 && busy <= 1, String(busy));
    release();
    assert.equal(load.busy(), 0);
  });
});
