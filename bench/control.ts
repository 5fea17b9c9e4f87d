/**
 * Take control, the person's view of latency: from a click in the control viewer to the DOM change it
 * caused showing in that same viewer (the control socket, CDP input on the run's page, the page's
 * handler, the recorder, the stream, the Replayer). Both ends are read on the viewer page's clock.
 *
 *   BENCH_ONLY=control npm run bench   (this alone; bench/results/control.json)
 */
import type { Browser } from 'playwright-core';
import type { StaticSite } from '../src/cli/static-site.js';
import { waitFor, type Stack } from '../test/helpers/stack.js';

export const CONTROL_TARGET_P95_MS = 50;

/** In the viewer page: when the click happened, and how long until the replay showed the count it made. */
const PROBE = `(() => {
  const st = { t0: 0, expect: 0, samples: [], clickedAt: [], shownAt: [] };
  window.__controlBench = st;
  // Capture phase on the window: the moment the viewer page got the click, before our layer handles it.
  window.addEventListener('click', () => { st.t0 = performance.now(); st.expect++; st.clickedAt.push(Date.now()); }, true);
  let watched = null;
  const check = () => {
    const doc = document.querySelector('.replayer-wrapper iframe')?.contentDocument;
    if (doc && doc !== watched) {
      watched = doc;
      new MutationObserver(() => {
        const n = Number(doc.getElementById('n')?.textContent);
        if (n === st.expect && st.samples.length < n) {
          st.samples.push(performance.now() - st.t0);
          st.shownAt.push(Date.now());
        }
      }).observe(doc, { subtree: true, childList: true, characterData: true });
    }
    requestAnimationFrame(check);
  };
  check();
})()`;

interface Probe {
  samples: number[];
  clickedAt: number[];
  shownAt: number[];
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null;
}

const round = (v: number): number => Math.round(v * 10) / 10;

export async function measureControl(stack: Stack, pages: StaticSite, browser: Browser, clicks: number, progress: (m: string) => void) {
  progress(`control: ${clicks} clicks through a control viewer, each until the viewer shows what it changed`);
  const res = await fetch(`${stack.base}/workflows/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      workflow: { name: 'bench control', steps: [{ type: 'navigation', url: `${pages.url}/control.html` }, { type: 'human', description: 'the bench clicks', timeoutMs: 600_000 }] },
      visual_enabled: true,
    }),
  });
  const { session_id: id } = (await res.json()) as { session_id: string };
  const session = stack.server.deps.registry.get(id)!;
  await waitFor('the human step', () => session.control.request !== null, 60_000);
  const link = (await (await fetch(`${stack.base}/workflows/${id}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { control_url: string };
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  try {
    await page.goto(link.control_url);
    await page.waitForFunction(() => !!document.querySelector<HTMLIFrameElement>('.replayer-wrapper iframe')?.contentDocument?.getElementById('hit'), undefined, { timeout: 30_000 });
    await page.click('#take');
    await page.waitForFunction(() => document.documentElement.dataset.controlMine === 'held', undefined, { timeout: 30_000 });
    await page.evaluate(PROBE);
    const frame = page.frames().find((f) => f !== page.mainFrame())!;
    const box = (await frame.locator('#hit').boundingBox())!;
    for (let i = 1; i <= clicks; i++) {
      await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await page.waitForFunction((n) => (window as unknown as { __controlBench: { samples: number[] } }).__controlBench.samples.length >= n, i, { polling: 'raf', timeout: 5000 });
      // Not back to back: a person's clicks are apart, and each is measured on a quiet pipeline.
      await new Promise((r) => setTimeout(r, 30 + Math.random() * 40));
    }
    const probe = await page.evaluate(() => (window as unknown as { __controlBench: Probe }).__controlBench);
    const hits = (await stack.server.deps.runs.page(id)?.evaluate(() => (window as unknown as { __hits: number[] }).__hits)) ?? [];
    const ms = summary(probe.samples);
    // The same clicks split at the run's page (wall clock, ms): viewer → page (socket, server, CDP input) and page → viewer (recorder, stream, replay).
    const split = hits.length === probe.clickedAt.length && hits.length === probe.shownAt.length
      ? { viewer_to_page_ms: summary(hits.map((t, i) => t - probe.clickedAt[i]!)), page_to_viewer_ms: summary(probe.shownAt.map((t, i) => t - hits[i]!)) }
      : null;
    progress(`control: click → change in the same viewer p50 ${ms.p50} ms, p95 ${ms.p95} ms over ${ms.samples} clicks`);
    return { clicks, click_to_change_ms: ms, split, target_p95_ms: CONTROL_TARGET_P95_MS, meets_target: ms.p95 !== null && ms.p95 < CONTROL_TARGET_P95_MS };
  } finally {
    await page.close().catch(() => undefined);
    await fetch(`${stack.base}/workflows/${id}/cancel`, { method: 'POST' }).catch(() => undefined);
  }
}

function summary(values: readonly number[]) {
  const sorted = values.map(round).sort((a, b) => a - b);
  return {
    samples: sorted.length,
    mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? null,
    min: sorted[0] ?? null,
  };
}
