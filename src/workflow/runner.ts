import type { Page, PageScreenshotOptions } from 'playwright-core';
import { StepError, errorMessage } from '../common/index.js';
import { locate } from './locate.js';
import type { Redact } from './secrets.js';
import type { Step, Workflow } from './schema.js';

export const DEFAULT_STEP_TIMEOUT_MS = 10_000;
/** A `human` step without its own timeoutMs waits this long for a person (the run's step_timeout_ms is for automated steps). */
export const HUMAN_STEP_TIMEOUT_MS = 300_000;

/**
 * The lock between a person and the workflow (take control, src/session/control.ts): a step starts
 * only while no person holds the page, and a `human` step waits for a person.
 */
export interface StepLock {
  /** Waits while a person holds control; then the step counts as running until afterStep. */
  beforeStep(signal?: AbortSignal): Promise<void>;
  afterStep(): void;
  /** Resolves once a person took control and released it; rejects after timeoutMs. */
  human(index: number, description: string | null, timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

export interface StepEnd {
  durationMs: number;
  matched: string | null;
  /** Where what the step produced goes in the run's outputs: `step.output`, or `step_<index>`. */
  outputKey?: string;
  value?: unknown;
  screenshot?: Buffer;
}

export interface StepFailure {
  durationMs: number;
  error: string;
  selector: string | null;
  screenshot: Buffer | null;
}

export interface StepHooks {
  onStepStart(index: number): void;
  onStepEnd(index: number, result: StepEnd): void;
  onStepFail(index: number, failure: StepFailure): void;
}

export interface RunOptions {
  stepTimeoutMs?: number;
  hooks: StepHooks;
  /** Aborting stops the run before its next step; whoever aborts also closes the page. */
  signal?: AbortSignal;
  /** Rules on a navigation step's URL before the browser is asked to go there; a reason refuses it. */
  checkNavigation?: (url: string) => Promise<string | null>;
  /**
   * Subscribes to interrupts of the step in flight (returns the unsubscribe function). A fatal one
   * that already happened must be delivered at once, so that no later step starts on a dead page.
   */
  onInterrupt?: (listener: (interrupt: Interrupt) => void) => () => void;
  /** CSS selectors of elements every screenshot covers: what the recording hides must not show in a PNG either. */
  screenshotMask?: readonly string[];
  /**
   * Hides secret inputs in what the run reports (errors, selectors, which selector matched): their
   * values were filled into the steps, so a failed URL or selector would show them. See secretRedactor.
   */
  redact?: Redact;
  /**
   * How busy the machine is (0..1, over the last second; src/common/machine-load.ts). With it, a
   * navigation's timeout does not run while the machine is saturated (up to LOAD_STRETCH times).
   */
  machineBusy?: () => number;
  /** Take control: without it a `human` step fails (nobody can take control of the run). */
  control?: StepLock;
}

/** Why the step in flight must fail at once. `fatal`: the page is gone (a crash, a dead browser), so no screenshot either. */
export interface Interrupt {
  reason: string;
  fatal: boolean;
}

class Interrupted extends Error {
  constructor(readonly interrupt: Interrupt) {
    super(interrupt.reason);
  }
}

/**
 * `work`, unless an interrupt comes first: a crashed page would leave the step waiting for its whole
 * timeout. Interrupted work is left to settle on its own once the page is closed.
 */
async function unlessInterrupted<T>(work: Promise<T>, subscribe: RunOptions['onInterrupt']): Promise<T> {
  if (!subscribe) return work;
  work.catch(() => undefined);
  let unsubscribe = (): void => {};
  const interrupted = new Promise<never>((_, reject) => {
    unsubscribe = subscribe((interrupt) => reject(new Interrupted(interrupt)));
  });
  try {
    return await Promise.race([work, interrupted]);
  } finally {
    unsubscribe();
  }
}

/** The fatal interrupt that already happened, if any (a subscription delivers it at once). */
function fatalSoFar(subscribe: RunOptions['onInterrupt']): Interrupt | undefined {
  let fatal: Interrupt | undefined;
  subscribe?.((interrupt) => {
    if (interrupt.fatal) fatal = interrupt;
  })();
  return fatal;
}

/** Where each step runs: one page, or the run's tabs (src/workflow/tabs.ts). */
export interface PageSource {
  /** The page `step` acts on (switched to before it runs). */
  pageFor(step: Step, timeoutMs: number): Promise<Page>;
  /** The page shown now (a failed step's screenshot is taken there). */
  readonly active: Page;
}

export type RunResult = { ok: true } | { ok: false; cancelled: true } | { ok: false; cancelled: false; error: StepError };

interface Done {
  matched: string | null;
  value?: unknown;
  screenshot?: Buffer;
}

function selectorOf(step: Step): string | null {
  const css: unknown = step.cssSelector;
  return typeof css === 'string' && css ? css : null;
}

/** Times a screenshot is taken again when the page's frames changed while it was taken. */
const MASK_ATTEMPTS = 3;

/**
 * A screenshot of `page` with `selectors` covered in every frame, same-origin and cross-origin (an
 * out-of-process one too): a frame's password or private text must show in a PNG no more than in
 * the recording. Each frame's selectors match inside that frame's document, as its recorder's do.
 * `css=` so Playwright never reads one as its text= or XPath syntax. A frame that came or went
 * while the screenshot was taken (masking a gone one fails; a new one was not covered) makes it
 * be taken again; a page whose frames never hold still gets no screenshot rather than one with a
 * frame uncovered.
 */
async function maskedScreenshot(page: Page, options: PageScreenshotOptions, selectors: readonly string[] | undefined): Promise<Buffer> {
  if (!selectors?.length) return page.screenshot(options);
  const attached = () => page.frames().filter((f) => !f.isDetached());
  for (let attempt = 1; ; attempt++) {
    const frames = attached();
    try {
      const png = await page.screenshot({ ...options, mask: frames.flatMap((frame) => selectors.map((s) => frame.locator(`css=${s}`))) });
      if (attached().every((f) => frames.includes(f))) return png;
    } catch (err) {
      if (!frames.some((f) => f.isDetached())) throw err;
    }
    if (attempt === MASK_ATTEMPTS) throw new Error(`the page's frames changed during each of ${MASK_ATTEMPTS} screenshots: none is kept rather than one with a frame not masked`);
  }
}

/** Past this busy share the machine counts as saturated: a navigation then may take longer than its timeout. */
export const SATURATED = 0.9;
/** A navigation's deadline moves while the machine is saturated, up to this many times its timeout in all. */
export const LOAD_STRETCH = 3;
const LOAD_CHECK_MS = 250;

/**
 * page.goto, whose timeout counts only the time the machine could work on it: on 2 cores, twenty
 * pages starting at once made navigations time out although nothing was wrong with them (issue 15).
 * While the machine is saturated the deadline moves, up to LOAD_STRETCH × timeout.
 */
async function navigate(page: Page, url: string, timeout: number, busy: (() => number) | undefined) {
  if (!busy) return page.goto(url, { waitUntil: 'load', timeout });
  const started = Date.now();
  const cap = started + timeout * LOAD_STRETCH;
  let deadline = started + timeout;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    const check = (): void => {
      if (busy() >= SATURATED) deadline = Math.min(cap, deadline + LOAD_CHECK_MS);
      const now = Date.now();
      if (now < deadline) {
        timer = setTimeout(check, Math.min(LOAD_CHECK_MS, deadline - now));
        return;
      }
      const extra = deadline - started - timeout;
      reject(new Error(`page.goto: Timeout ${timeout}ms exceeded${extra > 0 ? ` (after ${extra} ms more while the machine was saturated)` : ''}.`));
    };
    timer = setTimeout(check, Math.min(LOAD_CHECK_MS, timeout));
  });
  const loaded = page.goto(url, { waitUntil: 'load', timeout: timeout * LOAD_STRETCH });
  loaded.catch(() => undefined);
  try {
    return await Promise.race([loaded, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function runStep(page: Page, step: Step, timeout: number, mask: readonly string[] | undefined, busy?: () => number): Promise<Done> {
  if (step.waitForElement) await page.locator(step.waitForElement).first().waitFor({ state: 'visible', timeout });
  const started = Date.now();
  const left = () => Math.max(1000, timeout - (Date.now() - started));
  switch (step.type) {
    case 'navigation': {
      const response = await navigate(page, step.url, timeout, busy);
      if (response && response.status() >= 400) throw new Error(`navigation to ${step.url} answered HTTP ${response.status()}`);
      return { matched: null };
    }
    case 'click': {
      const { locator, matched } = await locate(page, step, timeout);
      await locator.click({ timeout: left() }).catch((err: unknown) => {
        // A click whose own handler closed its tab (window.close()) did what it was asked; Playwright,
        // waiting for the click's aftermath, may report the closed page. A closed context (a cancel,
        // a dead browser) leaves no page open, and is an error still.
        if (!(page.isClosed() && page.context().pages().length > 0)) throw err;
      });
      return { matched };
    }
    case 'input': {
      const { locator, matched } = await locate(page, step, timeout);
      if (step.typeDelayMs) {
        await locator.fill('', { timeout: left() });
        await locator.pressSequentially(step.value, { delay: step.typeDelayMs, timeout: left() });
      } else {
        await locator.fill(step.value, { timeout: left() });
      }
      return { matched };
    }
    case 'select_change': {
      const { locator, matched } = await locate(page, step, timeout);
      await locator.selectOption({ label: step.selectedText }, { timeout: left() });
      return { matched };
    }
    case 'key_press': {
      if (!step.cssSelector && !step.xpath) {
        await page.keyboard.press(step.key);
        return { matched: null };
      }
      const { locator, matched } = await locate(page, step, timeout);
      await locator.press(step.key, { timeout: left() });
      return { matched };
    }
    case 'scroll': {
      await page.evaluate(([x, y]) => window.scrollTo(x, y), [step.scrollX, step.scrollY] as const);
      return { matched: null };
    }
    case 'wait': {
      if (step.cssSelector) {
        await page.locator(step.cssSelector).first().waitFor({ state: 'visible', timeout });
        return { matched: step.cssSelector };
      }
      await page.waitForTimeout(step.ms ?? 0);
      return { matched: null };
    }
    case 'extract_page_content': {
      if (!step.cssSelector) return { matched: null, value: (await page.locator('body').innerText({ timeout })).trim() };
      const { locator, matched } = await locate(page, step, timeout);
      return { matched, value: (await locator.innerText({ timeout: left() })).trim() };
    }
    case 'screenshot': {
      return { matched: null, screenshot: await maskedScreenshot(page, { fullPage: step.fullPage ?? false, timeout }, mask) };
    }
    case 'human':
      throw new Error('a human step needs a person to take control, which only a run on the server allows (domcast serve)');
  }
}

/**
 * Runs the steps (placeholders already filled, see prepareWorkflow) in order on `pages` (a page, or
 * the run's tabs); stops at the first failure, which it reports with a screenshot.
 */
export async function runWorkflow(pages: Page | PageSource, workflow: Workflow, options: RunOptions): Promise<RunResult> {
  const { hooks, signal } = options;
  const source: PageSource = 'pageFor' in pages ? pages : { pageFor: async () => pages, active: pages };
  const redact = options.redact ?? ((text: string) => text);
  const lock = options.control;
  for (const [index, step] of workflow.steps.entries()) {
    if (signal?.aborted) return { ok: false, cancelled: true };
    // Between steps, never in the middle of one: a person holding control keeps the next one waiting.
    await lock?.beforeStep(signal);
    if (signal?.aborted) return { ok: false, cancelled: true };
    const timeout = step.timeoutMs ?? (step.type === 'human' ? HUMAN_STEP_TIMEOUT_MS : (options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS));
    const started = Date.now();
    hooks.onStepStart(index);
    try {
      if (step.type === 'navigation') {
        const refused = await options.checkNavigation?.(step.url);
        if (refused) throw new Error(`navigation to ${step.url} refused: ${refused}`);
      }
      const done = await unlessInterrupted(
        source.pageFor(step, timeout).then((page) =>
          step.type === 'human' && lock
            ? lock.human(index, step.description ?? null, timeout, signal).then(() => ({ matched: null }))
            : runStep(page, step, timeout, options.screenshotMask, options.machineBusy),
        ),
        options.onInterrupt,
      );
      const produced = done.value !== undefined || done.screenshot !== undefined;
      const matched = done.matched === null ? null : redact(done.matched);
      hooks.onStepEnd(index, { durationMs: Date.now() - started, ...done, matched, ...(produced ? { outputKey: step.output ?? `step_${index}` } : {}) });
    } catch (err) {
      if (signal?.aborted) return { ok: false, cancelled: true };
      const css = selectorOf(step);
      const selector = css === null ? null : redact(css);
      // A step may also fail on its own from a crash (Playwright's "Target crashed"): the interrupt says it better.
      const interrupt = err instanceof Interrupted ? err.interrupt : fatalSoFar(options.onInterrupt);
      const reason = interrupt?.reason ?? errorMessage(err).split('\n')[0] ?? 'unknown error';
      // The cause keeps Playwright's own text (secrets included) for a debugger; only the message is shown.
      const error = new StepError(index, selector, redact(`step ${index + 1} (${step.type}${css ? ` ${css}` : ''}) failed: ${reason}`), { cause: err });
      const page = source.active;
      const pageGone = interrupt?.fatal === true || page.isClosed();
      const screenshot = pageGone ? null : await maskedScreenshot(page, { timeout: 5000 }, options.screenshotMask).catch(() => null);
      hooks.onStepFail(index, { durationMs: Date.now() - started, error: error.message, selector, screenshot });
      return { ok: false, cancelled: false, error };
    } finally {
      lock?.afterStep();
    }
  }
  return { ok: true };
}
