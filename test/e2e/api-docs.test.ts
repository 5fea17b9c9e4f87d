import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchViewerBrowser, startStack } from '../helpers/stack.js';

test('/docs shows every operation of /openapi.json in a real browser, under its CSP, fetching nothing off our origin', async () => {
  const stack = await startStack({ DOMCAST_API_KEY: 'k'.repeat(32) });
  const browser = await launchViewerBrowser();
  try {
    const doc = (await (await fetch(`${stack.base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    const page = await browser.newPage();
    const problems: string[] = [];
    const offOrigin: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(stack.base) && !r.url().startsWith('data:')) offOrigin.push(r.url());
    });
    await page.goto(`${stack.base}/docs`);
    await page.locator('.opblock').first().waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('.opblock').count(), operations);
    assert.equal(await page.locator('button.authorize').count(), 1, 'the security schemes are offered (Authorize)');
    assert.deepEqual(problems, [], 'no CSP violation, no script error');
    assert.deepEqual(offOrigin, []);
  } finally {
    await browser.close();
    await stack.close();
  }
});
