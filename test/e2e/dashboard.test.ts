import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { projectRoot } from '../../src/common/index.js';
import { launchViewerBrowser, replayedText, startStack, waitFor, type Stack } from '../helpers/stack.js';

/**
 * The operator dashboard at /, used as a person would: a real server, a real Chromium page, the
 * demo site as the site the workflows visit. DASHBOARD_SCREENSHOTS=<folder> keeps its screenshots
 * (docs/img/dashboard-1280.png and -390.png in the README come from it).
 */

const KEY = 'dashboard-test-key-0123456789abcdef';
const shots = process.env.DASHBOARD_SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });

/** Stored workflows: a short tour with typed inputs, and one that waits long enough to be cancelled. */
function storeWorkflows(dir: string, site: string): void {
  const tour = {
    name: 'Portal sign-in',
    description: 'Signs in to the demo site and opens the todo list.',
    version: '1.0',
    input_schema: [
      { name: 'user', type: 'string', required: true },
      { name: 'password', type: 'string', required: true },
      { name: 'retries', type: 'number', required: false },
      { name: 'remember', type: 'bool', required: false },
    ],
    steps: [
      { type: 'navigation', url: `${site}/index.html`, description: 'Open the sign-in page' },
      { type: 'input', cssSelector: '#username', value: '{user}', description: 'Type the user name' },
      { type: 'input', cssSelector: '#password', value: '{password}', description: 'Type the password' },
      { type: 'click', cssSelector: '#login-btn', description: 'Sign in' },
      { type: 'wait', cssSelector: '#new-todo', description: 'Wait for the todo list' },
      { type: 'wait', ms: 8000, description: 'Stay a while' },
    ],
  };
  const slow = {
    name: 'Gallery watch',
    description: 'Opens the gallery and stays there.',
    input_schema: [],
    steps: [
      { type: 'navigation', url: `${site}/gallery.html`, description: 'Open the gallery' },
      { type: 'wait', ms: 120_000, description: 'Watch it for two minutes' },
    ],
  };
  const broken = {
    name: 'Broken checkout',
    description: 'Looks for a button the site does not have.',
    input_schema: [],
    steps: [
      { type: 'navigation', url: `${site}/about.html`, description: 'Open the about page' },
      { type: 'click', cssSelector: '#checkout', timeoutMs: 1500, description: 'Click checkout' },
    ],
  };
  writeFileSync(join(dir, 'portal.json'), JSON.stringify(tour));
  writeFileSync(join(dir, 'gallery.json'), JSON.stringify(slow));
  writeFileSync(join(dir, 'broken.json'), JSON.stringify(broken));
}

async function execute(stack: Stack, name: string, inputs: Record<string, unknown> = {}, key: string | null = KEY): Promise<string> {
  const res = await fetch(`${stack.base}/workflows/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ name, inputs, visual_enabled: true }),
  });
  const body = (await res.json()) as { session_id: string; error?: string };
  assert.equal(res.status, 202, body.error);
  return body.session_id;
}

async function status(stack: Stack, id: string): Promise<string> {
  const res = await fetch(`${stack.base}/workflows/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
  return res.status === 404 ? 'gone' : ((await res.json()) as { status: string }).status;
}

const row = (page: Page, id: string) => page.locator(`li.run[data-id="${id}"]`);

/** The page scrolls sideways when its content is wider than the window. */
const sideways = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

describe('dashboard with an API key', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const requested: string[] = [];

  before(async () => {
    // The workflows name the demo site's address, known once it listens (the library reads the folder on each call).
    const workflowsDir = mkdtempSync(join(tmpdir(), 'domcast-dashboard-flows-'));
    stack = await startStack({ DOMCAST_API_KEY: KEY, WORKFLOWS_DIR: workflowsDir, MAX_CONCURRENT_SESSIONS: '6' });
    storeWorkflows(workflowsDir, stack.site.url);
    browser = await launchViewerBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
    page = await context.newPage();
    page.on('request', (r) => requested.push(r.url()));
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('signing in with the API key gives an HttpOnly, SameSite=Strict cookie; the key never appears in a URL', async () => {
    await page.goto(`${stack.base}/`);
    const csp = (await page.request.get(`${stack.base}/`)).headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'none'; script-src 'self'/);
    await page.getByLabel('API key').fill('not-the-key-at-all-000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That is not the API key of this server.').waitFor();
    assert.equal(await page.getByLabel('API key').getAttribute('aria-invalid'), 'true');
    if (shots) await page.screenshot({ path: join(shots, 'dashboard-signin.png') });

    await page.getByLabel('API key').fill(KEY);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'domcast_session');
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.notEqual(cookie.value, KEY);
    assert.ok(cookie.expires > Date.now() / 1000 + 3600, 'it expires, hours from now');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read it');
    // The cookie stands for the key on the API, from this page.
    assert.equal(await page.evaluate(async () => (await fetch('workflows')).status), 200);
  });

  test('a bad input is shown at its field, in the words of the API', async () => {
    await page.getByRole('button', { name: 'Start a run' }).click();
    const dialog = page.getByRole('dialog', { name: 'Start a run' });
    await dialog.getByLabel('Workflow', { exact: true }).selectOption('portal');
    // The form follows the input_schema: a field per input, typed, the required ones marked.
    assert.equal(await dialog.locator('#input-retries').getAttribute('type'), 'number');
    assert.equal(await dialog.locator('#input-password').getAttribute('type'), 'password');
    assert.equal(await dialog.locator('#input-remember').getAttribute('type'), 'checkbox');
    assert.equal(await dialog.locator('#input-user').getAttribute('aria-required'), 'true');
    await dialog.locator('#input-password').fill('pw');
    await dialog.getByRole('button', { name: 'Start run' }).click();
    const error = dialog.locator('#err-input-user');
    await waitFor('the error at the user field', async () => (await error.textContent()) === 'required');
    assert.equal(await dialog.locator('#input-user').getAttribute('aria-invalid'), 'true');
    assert.equal(await dialog.locator('#err-input-password').textContent(), '', 'no error at a field that was right');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'input-user', 'focus goes to the field to fix');
    // A bad option is shown at the option.
    await dialog.locator('#input-user').fill('ada');
    await dialog.getByLabel(/Mask text inside/).fill('x'.repeat(2001));
    await dialog.getByRole('button', { name: 'Start run' }).click();
    await waitFor('the error at the mask field', async () => /2000/.test((await dialog.locator('#err-mask_text_selector').textContent()) ?? ''));
    await dialog.getByLabel(/Mask text inside/).fill('');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  test('a stored workflow started with inputs from its form opens in the viewer, which shows the page', async () => {
    await page.getByRole('button', { name: 'Start a run' }).click();
    const dialog = page.getByRole('dialog', { name: 'Start a run' });
    await dialog.getByLabel('Workflow', { exact: true }).selectOption('portal');
    await dialog.locator('#input-user').fill('ada');
    await dialog.locator('#input-password').fill('secret-pw');
    await dialog.locator('#input-retries').fill('3');
    await dialog.getByLabel('Visual quality').selectOption('high');
    await dialog.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/workflows\/visual\/[^/]+\/viewer\?token=/);
    await waitFor('the replayed todo page', async () => /Hello, ada/.test(await replayedText(page)), 30_000);
    const id = decodeURIComponent(new URL(page.url()).pathname.split('/')[3]!);
    const run = (await (await fetch(`${stack.base}/workflows/${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { inputs: Record<string, unknown> };
    assert.deepEqual(run.inputs, { user: 'ada', password: '[redacted]', retries: 3, remember: false });
    assert.ok(!requested.some((u) => u.includes(KEY)), 'the key is in no URL the page asked for');
    await page.goBack();
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
  });

  test('the list is live: a run started elsewhere appears, with its step, duration, viewers and a thumbnail of its page', async () => {
    const id = await execute(stack, 'gallery');
    await row(page, id).waitFor();
    await waitFor('the run to be running', async () => (await row(page, id).getAttribute('data-status')) === 'running');
    await waitFor('its current step', async () => /1\/2|2\/2/.test((await row(page, id).locator('.step').textContent()) ?? ''));
    // The thumbnail is the page's DOM, replayed in a small box from the run's stream.
    const frame = await waitFor('a live thumbnail', async () => {
      const handle = await row(page, id).locator('.thumb-box[data-live] iframe').elementHandle().catch(() => null);
      return handle ? await handle.contentFrame() : null;
    });
    await waitFor('the gallery in the thumbnail', async () => /Gallery/.test((await frame.evaluate(() => document.body?.innerText ?? '').catch(() => '')) as string));
    const box = await row(page, id).locator('.thumb').boundingBox();
    assert.ok(box && box.width < 200, 'a small box');
    // It counts as a viewer.
    await waitFor('one viewer', async () => (await row(page, id).locator('.viewers .v').textContent()) === '1');
    const first = await row(page, id).locator('.dur .v').textContent();
    await waitFor('the duration to move', async () => (await row(page, id).locator('.dur .v').textContent()) !== first, 5000);
    // Newest first.
    assert.equal(await page.locator('li.run').first().getAttribute('data-id'), id);
  });

  test('live thumbnails are bounded: at most six at once, for running runs on screen only', async () => {
    // Eight visual runs that stay running without a browser (registered, not started): each could have a thumbnail.
    const fakes = Array.from({ length: 8 }, () => {
      const s = stack.server.deps.registry.create({ workflowName: 'Idle', steps: [{ type: 'wait', description: 'idle' }], visual: true, quality: 'standard', metrics: stack.server.deps.metrics });
      s.setStatus('running');
      return s;
    });
    await waitFor('the eight rows', async () => (await page.locator('li.run[data-status=running] .name', { hasText: 'Idle' }).count()) === 8);
    const sockets = () => fakes.reduce((n, s) => n + stack.server.deps.hub.viewerCount(s.id), 0);
    await page.setViewportSize({ width: 1280, height: 3000 });
    await waitFor('six thumbnails', async () => sockets() === 6);
    await page.waitForTimeout(1500);
    assert.equal(sockets(), 6, 'never more than six');
    // Off screen, none.
    await page.setViewportSize({ width: 1280, height: 820 });
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.locator('li.run').last().scrollIntoViewIfNeeded();
    const onScreen = await page.locator('li.run[data-status=running]').evaluateAll((els) =>
      els.filter((e) => {
        const r = e.getBoundingClientRect();
        return r.bottom > 0 && r.top < innerHeight && /Idle/.test(e.textContent ?? '');
      }).length,
    );
    await waitFor(`only the ${onScreen} on screen`, async () => sockets() <= onScreen);
    await page.evaluate(() => window.scrollTo(0, 0));
    for (const s of fakes) s.setStatus('cancelled');
    await waitFor('no thumbnails once they ended', async () => sockets() === 0);
    for (const s of fakes) await fetch(`${stack.base}/workflows/${s.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
  });

  test('a running run is cancelled from its row, and an ended one deleted after a confirmation', async () => {
    const id = await execute(stack, 'gallery');
    await waitFor('running', async () => (await row(page, id).getAttribute('data-status')) === 'running');
    await row(page, id).getByRole('button', { name: /^Cancel/ }).click();
    await waitFor('cancelled in the list', async () => (await row(page, id).getAttribute('data-status')) === 'cancelled');
    assert.equal(await status(stack, id), 'cancelled');

    await row(page, id).getByRole('button', { name: /^Delete/ }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete this run?' });
    await confirm.waitFor();
    // "Keep it" is where focus starts: Enter does not delete by accident.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Keep it');
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await row(page, id).waitFor({ state: 'detached' });
    assert.equal(await status(stack, id), 'gone');
  });

  test("a failed run's details show the failure with its screenshot; a share link with a chosen lifetime works", async () => {
    const id = await execute(stack, 'broken');
    await waitFor('failed', async () => (await row(page, id).getAttribute('data-status')) === 'failed', 30_000);
    await row(page, id).getByRole('button', { name: /^Details/ }).click();
    const dialog = page.locator('#detail-dialog');
    await dialog.getByText('Step 2 failed').waitFor();
    const shot = dialog.locator('img.shot');
    await waitFor('the screenshot to load', () => shot.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 100));
    assert.equal(await dialog.getByRole('link', { name: 'Download recording' }).getAttribute('href'), `workflows/${id}/events`);
    const download = await page.request.get(`${stack.base}/workflows/${id}/events`);
    assert.equal(download.status(), 200, 'the export downloads with the cookie');
    assert.ok(((await download.json()) as unknown[]).length > 0);

    await dialog.getByLabel('Valid for').selectOption(String(15 * 60));
    await dialog.getByRole('button', { name: 'Create link' }).click();
    const link = await waitFor('a link', async () => await dialog.getByLabel('Viewer link to share').inputValue());
    const token = new URL(link).searchParams.get('token')!;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number; iat: number };
    assert.equal(claims.exp - claims.iat, 15 * 60);
    const viewer = await browser.newPage();
    await viewer.goto(link);
    await waitFor('the replay in a fresh browser page', async () => /About Acme Portal/.test(await replayedText(viewer)), 20_000);
    await viewer.close();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  test('at 390 px wide nothing scrolls sideways and every run can still be acted on', async () => {
    const id = await execute(stack, 'gallery');
    await waitFor('running', async () => (await row(page, id).getAttribute('data-status')) === 'running');
    await waitFor('its thumbnail', async () => (await row(page, id).locator('.thumb-box[data-live] iframe').count()) > 0);
    await page.waitForTimeout(1500);
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.mouse.move(640, 790);
    await page.waitForTimeout(200);
    if (shots) await page.screenshot({ path: join(shots, 'dashboard-1280.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    assert.equal(await sideways(page), 0, 'no horizontal scroll');
    if (shots) await page.screenshot({ path: join(shots, 'dashboard-390.png') });
    for (const b of await row(page, id).getByRole('button').all()) {
      const box = await b.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${await b.textContent()} fits`);
    }
    await row(page, id).getByRole('button', { name: /^Cancel/ }).click();
    await waitFor('cancelled', async () => (await row(page, id).getAttribute('data-status')) === 'cancelled');
    await row(page, id).getByRole('button', { name: /^Details/ }).click();
    const dialog = page.locator('#detail-dialog');
    await dialog.getByText('Share a viewer link').waitFor();
    assert.equal(await sideways(page), 0, 'the details fit too');
    const sheet = await dialog.boundingBox();
    assert.ok(sheet && sheet.width <= 390);
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Start a run' }).click();
    const start = page.getByRole('dialog', { name: 'Start a run' });
    await start.getByLabel('Workflow', { exact: true }).selectOption('portal');
    assert.equal(await sideways(page), 0, 'the start form fits');
    if (shots) await page.screenshot({ path: join(shots, 'dashboard-start-390.png') });
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 1280, height: 820 });
  });

  test('filters by status and by workflow, and pages', async () => {
    const onlyFailed = async () => {
      const statuses = await page.locator('li.run').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.status));
      return statuses.length > 0 && statuses.every((s) => s === 'failed');
    };
    await page.getByLabel('Status').selectOption('failed');
    await waitFor('only failed runs', onlyFailed);
    // The filter is in the address: a reload (or Back from a viewer) keeps it.
    assert.match(page.url(), /#status=failed$/);
    await page.reload();
    await waitFor('only failed runs after a reload', onlyFailed);
    assert.equal(await page.getByLabel('Status').inputValue(), 'failed');
    await page.getByLabel('Status').selectOption('');
    await page.getByRole('combobox', { name: 'Workflow', exact: true }).selectOption('Gallery watch');
    await waitFor('only gallery runs', async () => {
      const names = await page.locator('li.run .name').allTextContents();
      return names.length > 0 && names.every((n) => n === 'Gallery watch');
    });
    await page.getByRole('combobox', { name: 'Workflow', exact: true }).selectOption('');
    // Past a page (20 runs) the next one is a click away: older runs, as the store keeps them.
    for (let i = 0; i < 25; i++) {
      const at = Date.now() - 86_400_000 - i * 60_000;
      stack.server.deps.store.saveSession({
        id: `archived-${String(i).padStart(2, '0')}`,
        workflow: 'Archived run',
        inputs: {},
        status: 'succeeded',
        error: null,
        visual: false,
        createdAt: at,
        startedAt: at,
        endedAt: at + 5000,
        steps: [],
        outputs: {},
        eventCount: 0,
        byteCount: 0,
      });
    }
    await waitFor('a next page', async () => !(await page.getByRole('button', { name: 'Older →' }).isDisabled()), 10_000);
    const firstPage = await page.locator('li.run').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.id));
    await page.getByRole('button', { name: 'Older →' }).click();
    await page.getByText('Page 2').waitFor();
    const second = await waitFor('page 2', async () => {
      const ids = await page.locator('li.run').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.id));
      return ids.length > 0 && !ids.some((x) => firstPage.includes(x)) ? ids : null;
    });
    assert.ok(second.length > 0);
    await page.getByRole('button', { name: 'Newest' }).click();
    await page.getByText('Page 1').waitFor();
  });

  test('from the keyboard alone: the start form opens, is filled and closes; focus is visible', async () => {
    await page.locator('.brand').focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'start-open');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    assert.equal(outline, 'solid', 'focus is visible');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Start a run' });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'start-workflow');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  test('a request with the cookie from another origin is refused, even from a same-site page', async () => {
    const id = await execute(stack, 'gallery');
    await waitFor('under way', async () => ['queued', 'running'].includes(await status(stack, id)));
    // The demo site is 127.0.0.1 on another port: same site, so SameSite=Strict lets the cookie go; the origin check does not.
    const other = await context.newPage();
    await other.goto(`${stack.site.url}/index.html`);
    await other.evaluate(async (url) => {
      await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', body: '' });
    }, `${stack.base}/workflows/${id}/cancel`);
    await other.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.notEqual(await status(stack, id), 'cancelled', 'the run was not cancelled');

    const cookie = (await context.cookies()).find((c) => c.name === 'domcast_session')!;
    const post = (headers: Record<string, string>) =>
      fetch(`${stack.base}/workflows/${id}/cancel`, { method: 'POST', headers: { cookie: `domcast_session=${cookie.value}`, ...headers } });
    const refused = await post({ origin: 'http://evil.example' });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { code: string }).code, 'CROSS_ORIGIN');
    assert.equal((await post({ 'sec-fetch-site': 'cross-site', origin: stack.base })).status, 403);
    assert.equal((await post({})).status, 403, 'neither header: refused');
    // Reading is not a write: the list answers a GET with the cookie alone.
    const list = await fetch(`${stack.base}/workflows/sessions`, { headers: { cookie: `domcast_session=${cookie.value}` } });
    assert.equal(list.status, 200);
    assert.equal((await post({ origin: stack.base })).status, 202, 'from our own origin it works');
  });

  test('signing out ends the cookie for good, here and in any copy of it', async () => {
    const cookie = (await context.cookies()).find((c) => c.name === 'domcast_session')!;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    const res = await fetch(`${stack.base}/workflows/sessions`, { headers: { cookie: `domcast_session=${cookie.value}` } });
    assert.equal(res.status, 401);
    assert.equal((await context.cookies()).filter((c) => c.name === 'domcast_session').length, 0);
  });
});

describe('dashboard without an API key', () => {
  let stack: Stack;
  let browser: Browser;

  before(async () => {
    stack = await startStack({ WORKFLOWS_DIR: join(projectRoot, 'workflows') });
    browser = await launchViewerBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('is open, as the API is: no sign-in, and it says so', async () => {
    const page = await browser.newPage();
    const id = await execute(stack, 'demo', { site_url: stack.site.url, username: 'ada', password: 'pw' }, null);
    await page.goto(`${stack.base}/`);
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
    await page.getByText('Open mode · no API key').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), false);
    await row(page, id).waitFor();
    await row(page, id).getByRole('button', { name: /^Cancel/ }).click();
    await waitFor('cancelled', async () => (await row(page, id).getAttribute('data-status')) === 'cancelled');
    const signIn = await fetch(`${stack.base}/dashboard/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: stack.base }, body: '{"key":"x"}' });
    assert.equal(signIn.status, 409);
    await page.close();
  });
});
