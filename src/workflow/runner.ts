import type { Locator, Page } from 'playwright-core';
import { StepError, errorMessage } from '../common/index.js';
import type { Step, Workflow } from './schema.js';

export const DEFAULT_STEP_TIMEOUT_MS = 10_000;

export interface StepHooks {
  onStepStart(index: number): void;
  onStepEnd(index: number, result: { durationMs: number; matched: string | null }): void;
  onStepFail(index: number, failure: { durationMs: number; error: string; selector: string | null; screenshot: Buffer | null }): void;
}

export interface RunOptions {
  stepTimeoutMs?: number;
  hooks: StepHooks;
}

export type RunResult = { ok: true } | { ok: false; error: StepError };

type Targeted = Extract<Step, { cssSelector?: string | null }>;

/** The element a step aims at: its CSS selector, or its XPath when the CSS one matches nothing. */
async function locate(page: Page, step: Targeted): Promise<{ locator: Locator; matched: string }> {
  const css = step.cssSelector ?? '';
  if (step.xpath && (await page.locator(css).count().catch(() => 0)) === 0) {
    return { locator: page.locator(`xpath=${step.xpath}`).first(), matched: `xpath=${step.xpath}` };
  }
  return { locator: page.locator(css).first(), matched: css };
}

function selectorOf(step: Step): string | null {
  const css: unknown = step.cssSelector;
  return typeof css === 'string' && css ? css : null;
}

async function runStep(page: Page, step: Step, timeout: number): Promise<string | null> {
  switch (step.type) {
    case 'navigation': {
      const response = await page.goto(step.url, { waitUntil: 'load', timeout });
      if (response && response.status() >= 400) throw new Error(`navigation to ${step.url} answered HTTP ${response.status()}`);
      return null;
    }
    case 'click': {
      const { locator, matched } = await locate(page, step);
      await locator.click({ timeout });
      return matched;
    }
    case 'input': {
      const { locator, matched } = await locate(page, step);
      if (step.typeDelayMs) {
        await locator.fill('', { timeout });
        await locator.pressSequentially(step.value, { delay: step.typeDelayMs, timeout });
      } else {
        await locator.fill(step.value, { timeout });
      }
      return matched;
    }
    case 'key_press': {
      if (!step.cssSelector) {
        await page.keyboard.press(step.key);
        return null;
      }
      const { locator, matched } = await locate(page, { ...step, cssSelector: step.cssSelector });
      await locator.press(step.key, { timeout });
      return matched;
    }
    case 'wait': {
      if (step.cssSelector) {
        await page.locator(step.cssSelector).first().waitFor({ state: 'visible', timeout });
        return step.cssSelector;
      }
      await page.waitForTimeout(step.ms ?? 0);
      return null;
    }
  }
}

/**
 * Runs the steps (placeholders already filled, see prepareWorkflow) in order on `page`;
 * stops at the first failure, which it reports with a screenshot.
 */
export async function runWorkflow(page: Page, workflow: Workflow, options: RunOptions): Promise<RunResult> {
  const { hooks } = options;
  for (const [index, step] of workflow.steps.entries()) {
    const timeout = step.timeoutMs ?? options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
    const started = Date.now();
    hooks.onStepStart(index);
    try {
      const matched = await runStep(page, step, timeout);
      hooks.onStepEnd(index, { durationMs: Date.now() - started, matched });
    } catch (err) {
      const selector = selectorOf(step);
      const reason = errorMessage(err).split('\n')[0] ?? 'unknown error';
      const error = new StepError(index, selector, `step ${index} (${step.type}${selector ? ` ${selector}` : ''}) failed: ${reason}`, { cause: err });
      const screenshot = page.isClosed() ? null : await page.screenshot({ timeout: 5000 }).catch(() => null);
      hooks.onStepFail(index, { durationMs: Date.now() - started, error: error.message, selector, screenshot });
      return { ok: false, error };
    }
  }
  return { ok: true };
}
