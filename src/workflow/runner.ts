import type { Locator, Page } from 'playwright-core';
import { StepError, errorMessage } from '../common/index.js';
import { locate } from './locate.js';
import type { Redact } from './secrets.js';
import type { Step, Workflow } from './schema.js';

export const DEFAULT_STEP_TIMEOUT_MS = 10_000;

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

/** Screenshot options covering `selectors`; `css=` so Playwright never reads one as its text= or XPath syntax. */
function masked(page: Page, selectors: readonly string[] | undefined): { mask?: Locator[] } {
  return selectors?.length ? { mask: selectors.map((s) => page.locator(`css=${s}`)) } : {};
}

async function runStep(page: Page, step: Step, timeout: number, mask: readonly string[] | undefined): Promise<Done> {
  if (step.waitForElement) await page.locator(step.waitForElement).first().waitFor({ state: 'visible', timeout });
  const started = Date.now();
  const left = () => Math.max(1000, timeout - (Date.now() - started));
  switch (step.type) {
    case 'navigation': {
      const response = await page.goto(step.url, { waitUntil: 'load', timeout });
      if (response && response.status() >= 400) throw new Error(`navigation to ${step.url} answered HTTP ${response.status()}`);
      return { matched: null };
    }
    case 'click': {
      const { locator, matched } = await locate(page, step, timeout);
      await locator.click({ timeout: left() });
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
      return { matched: null, screenshot: await page.screenshot({ fullPage: step.fullPage ?? false, timeout, ...masked(page, mask) }) };
    }
  }
}

/**
 * Runs the steps (placeholders already filled, see prepareWorkflow) in order on `page`;
 * stops at the first failure, which it reports with a screenshot.
 */
export async function runWorkflow(page: Page, workflow: Workflow, options: RunOptions): Promise<RunResult> {
  const { hooks, signal } = options;
  const redact = options.redact ?? ((text: string) => text);
  for (const [index, step] of workflow.steps.entries()) {
    if (signal?.aborted) return { ok: false, cancelled: true };
    const timeout = step.timeoutMs ?? options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
    const started = Date.now();
    hooks.onStepStart(index);
    try {
      if (step.type === 'navigation') {
        const refused = await options.checkNavigation?.(step.url);
        if (refused) throw new Error(`navigation to ${step.url} refused: ${refused}`);
      }
      const done = await unlessInterrupted(runStep(page, step, timeout, options.screenshotMask), options.onInterrupt);
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
      const pageGone = interrupt?.fatal === true || page.isClosed();
      const screenshot = pageGone ? null : await page.screenshot({ timeout: 5000, ...masked(page, options.screenshotMask) }).catch(() => null);
      hooks.onStepFail(index, { durationMs: Date.now() - started, error: error.message, selector, screenshot });
      return { ok: false, cancelled: false, error };
    }
  }
  return { ok: true };
}
