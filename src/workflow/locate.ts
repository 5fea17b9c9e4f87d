import type { Locator, Page } from 'playwright-core';

export interface Target {
  cssSelector?: string | null;
  xpath?: string | null;
  elementTag?: string | null;
  elementText?: string | null;
}

interface Candidate {
  locator: Locator;
  label: string;
}

/** Raised when no way of finding a step's element matched in time. */
export class TargetNotFoundError extends Error {}

function candidates(page: Page, target: Target): Candidate[] {
  const list: Candidate[] = [];
  if (target.cssSelector) list.push({ locator: page.locator(target.cssSelector), label: target.cssSelector });
  if (target.xpath) list.push({ locator: page.locator(`xpath=${target.xpath}`), label: `xpath=${target.xpath}` });
  if (target.elementTag && target.elementText) {
    list.push({
      locator: page.locator(target.elementTag.toLowerCase()).filter({ hasText: target.elementText }),
      label: `<${target.elementTag.toLowerCase()}> with text "${target.elementText}"`,
    });
  }
  return list;
}

const POLL_MS = 100;

/**
 * The step's element: the first of CSS selector, XPath, tag + text that matches anything, tried in
 * that order and retried until `timeoutMs` runs out. Returns which one matched.
 */
export async function locate(page: Page, target: Target, timeoutMs: number): Promise<{ locator: Locator; matched: string }> {
  const list = candidates(page, target);
  if (list.length === 0) throw new TargetNotFoundError('the step names no element (cssSelector, xpath or elementTag + elementText)');
  const deadline = Date.now() + timeoutMs;
  // An invalid selector counts as matching nothing, so the next way of finding the element still gets its turn.
  const firstMatching = async (): Promise<Candidate | undefined> => {
    for (const c of list) if ((await c.locator.count().catch(() => 0)) > 0) return c;
    return undefined;
  };
  for (;;) {
    const found = await firstMatching();
    if (found) {
      // The page may have changed between two checks of one pass (an element appearing after its
      // CSS selector was tried): look again, so the order of preference holds.
      const preferred = found === list[0] ? found : ((await firstMatching()) ?? found);
      return { locator: preferred.locator.first(), matched: preferred.label };
    }
    if (Date.now() >= deadline) {
      throw new TargetNotFoundError(`no element matches ${list.map((c) => c.label).join(', nor ')} within ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
