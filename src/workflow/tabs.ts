import type { BrowserContext, CDPSession, Page } from 'playwright-core';
import type { TabState } from '../protocol/index.js';
import type { Step } from './schema.js';

/** A tab of a run, as viewers see it. */
export type TabInfo = TabState;

export interface TabHooks {
  /** A page opened (a popup, `target=_blank`, `window.open`); resolves once it is set up (recorded, watched). */
  onOpen(page: Page): Promise<void>;
  /** The run's steps go to `page` from now on (it was `from`). */
  onSwitch(page: Page, from: Page): Promise<void>;
  /** Tabs opened, closed, navigated or switched (once there is more than one). */
  onChange(tabs: TabInfo[]): void;
}

/** How long a step waits for a tab that is being created to be ready, beyond which it runs where it is. */
const OPENING_WAIT_MS = 5000;

/**
 * Which page each step of a run acts on. A run starts on one page; steps may open more (popups,
 * `target=_blank` links, `window.open`):
 * - Steps recorded by workflow-use carry a `tabId`. The first tabId seen is the run's first page;
 *   each new tabId is the oldest tab opened during the run that no tabId names yet (waited for up
 *   to the step's timeout); a known tabId goes back to its tab.
 * - Steps without a tabId follow the newest tab a step opened, as a person would; when the shown
 *   tab closes, the run goes back to the tab that opened it (or the newest still open).
 */
export class Tabs {
  private readonly pages: Page[];
  private readonly opener = new Map<Page, Page | null>();
  private readonly byTabId = new Map<number, Page>();
  /** Tabs opened during the run that no step went to yet, oldest first. */
  private readonly unclaimed: Page[] = [];
  /** Targets Chromium created for this run that Playwright has not handed over as pages yet (by target id). */
  private readonly opening = new Map<string, NodeJS.Timeout>();
  private readonly waiters = new Set<() => void>();
  private current: Page;
  private cdp: CDPSession | null = null;
  private closed = false;
  private switching: Promise<void> = Promise.resolve();

  constructor(
    private readonly context: BrowserContext,
    first: Page,
    private readonly hooks: TabHooks,
  ) {
    this.pages = [first];
    this.opener.set(first, null);
    this.current = first;
    this.watch(first);
    context.on('page', this.onPage);
  }

  /** Counts targets as Chromium creates them, so a step right after the click that opens a tab waits for it. */
  async start(): Promise<void> {
    const browser = this.context.browser();
    if (!browser) return;
    const first = await this.context.newCDPSession(this.current);
    const { targetInfo } = await first.send('Target.getTargetInfo');
    await first.detach().catch(() => undefined);
    const ours = targetInfo.browserContextId;
    this.cdp = await browser.newBrowserCDPSession();
    // Chromium reports the targets that exist before it answers: listening after the answer hears only new ones.
    await this.cdp.send('Target.setDiscoverTargets', { discover: true });
    this.cdp.on('Target.targetCreated', ({ targetInfo: created }) => {
      const id = created.targetId;
      if (created.type !== 'page' || created.browserContextId !== ours || this.closed || this.opening.has(id)) return;
      // Never handed over (closed at once, refused): stop waiting for it after a while.
      const timer = setTimeout(() => this.settled(id), OPENING_WAIT_MS);
      timer.unref();
      this.opening.set(id, timer);
    });
    this.cdp.on('Target.targetDestroyed', ({ targetId }) => {
      if (this.opening.has(targetId)) this.settled(targetId);
    });
  }

  get active(): Page {
    return this.current;
  }

  list(): TabInfo[] {
    return this.pages.map((p, i) => ({ index: i + 1, url: p.isClosed() ? '' : p.url(), active: p === this.current, closed: p.isClosed() }));
  }

  /** The page `step` acts on; switches to it first (the viewer is shown that tab before the step runs). */
  async pageFor(step: Step, timeoutMs: number): Promise<Page> {
    await this.switching;
    await this.whileOpening(Math.min(timeoutMs, OPENING_WAIT_MS));
    const tabId = typeof step.tabId === 'number' ? step.tabId : null;
    let target: Page;
    if (tabId === null) {
      target = this.unclaimed.filter((p) => !p.isClosed()).at(-1) ?? this.current;
      this.unclaimed.length = 0;
    } else {
      const known = this.byTabId.get(tabId);
      if (known?.isClosed()) throw new Error(`tab ${tabId} of the recording was closed`);
      target = known ?? (this.byTabId.size === 0 ? this.pages[0]! : await this.nextUnclaimed(tabId, timeoutMs));
      this.byTabId.set(tabId, target);
      const at = this.unclaimed.indexOf(target);
      if (at >= 0) this.unclaimed.splice(at, 1);
    }
    if (target.isClosed()) throw new Error('the tab the run was on has closed');
    await this.switchTo(target);
    return target;
  }

  close(): void {
    this.closed = true;
    this.context.off('page', this.onPage);
    void this.cdp?.detach().catch(() => undefined);
    for (const timer of this.opening.values()) clearTimeout(timer);
    this.opening.clear();
    for (const wake of this.waiters) wake();
  }

  private readonly onPage = (page: Page): void => {
    if (this.closed || this.pages.includes(page)) return;
    this.pages.push(page);
    this.unclaimed.push(page);
    this.watch(page);
    void page
      .opener()
      .catch(() => null)
      .then((opener) => this.opener.set(page, opener));
    void this.hooks
      .onOpen(page)
      .catch(() => undefined)
      .then(() => targetIdOf(this.context, page))
      .then((id) => {
        this.settled(id);
        this.changed();
      });
  };

  private settled(targetId: string | null): void {
    if (targetId !== null) {
      clearTimeout(this.opening.get(targetId));
      this.opening.delete(targetId);
    }
    for (const wake of this.waiters) wake();
  }

  private watch(page: Page): void {
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) this.changed();
    });
    page.on('close', () => {
      if (this.closed) return;
      if (page === this.current) {
        const back = this.opener.get(page);
        const next = back && !back.isClosed() ? back : this.pages.filter((p) => !p.isClosed()).at(-1);
        if (next) this.switching = this.switchTo(next).catch(() => undefined);
      }
      this.changed();
    });
  }

  private async switchTo(page: Page): Promise<void> {
    if (page === this.current) return;
    const from = this.current;
    this.current = page;
    await this.hooks.onSwitch(page, from);
    this.changed();
  }

  /** Told once the run has more than one tab: a run of one page has nothing to say about tabs. */
  private changed(): void {
    if (!this.closed && this.pages.length > 1) this.hooks.onChange(this.list());
  }

  /** Waits (up to `ms`) while a tab is being created: a step right after the click that opened it acts there. */
  private async whileOpening(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.opening.size > 0 && !this.closed && Date.now() < until) await this.next(until - Date.now());
  }

  private async nextUnclaimed(tabId: number, timeoutMs: number): Promise<Page> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const page = this.unclaimed.find((p) => !p.isClosed());
      if (page) return page;
      if (this.closed || Date.now() >= until) throw new Error(`the step is in tab ${tabId} of the recording, but no new tab opened within ${timeoutMs} ms`);
      await this.next(until - Date.now());
    }
  }

  private next(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(1, ms));
      this.waiters.add(wake);
    });
  }
}

/** The DevTools target id of `page` (null once it is gone). */
async function targetIdOf(context: BrowserContext, page: Page): Promise<string | null> {
  try {
    const cdp = await context.newCDPSession(page);
    const { targetInfo } = await cdp.send('Target.getTargetInfo');
    await cdp.detach().catch(() => undefined);
    return targetInfo.targetId;
  } catch {
    return null;
  }
}
