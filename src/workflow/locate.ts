import type { Frame, Locator, Page } from 'playwright-core';

export interface Target {
  cssSelector?: string | null;
  xpath?: string | null;
  elementTag?: string | null;
  elementText?: string | null;
  /** workflow-use: the URL of the frame the step was recorded in. */
  frameUrl?: string | null;
  /** workflow-use: child-frame indices from the top frame, dot-separated (`0.1`); `0` or empty is the top frame. */
  frameIdPath?: string | null;
}

interface Candidate {
  locator: Locator;
  label: string;
}

/** Raised when no way of finding a step's element matched in time. */
export class TargetNotFoundError extends Error {}

function candidates(frame: Frame, target: Target): Candidate[] {
  const list: Candidate[] = [];
  const where = frame.parentFrame() ? ` in the frame ${frame.url().slice(0, 200)}` : '';
  if (target.cssSelector) list.push({ locator: frame.locator(target.cssSelector), label: target.cssSelector + where });
  if (target.xpath) list.push({ locator: frame.locator(`xpath=${target.xpath}`), label: `xpath=${target.xpath}${where}` });
  if (target.elementTag && target.elementText) {
    list.push({
      locator: frame.locator(target.elementTag.toLowerCase()).filter({ hasText: target.elementText }),
      label: `<${target.elementTag.toLowerCase()}> with text "${target.elementText}"${where}`,
    });
  }
  return list;
}

/** How well a frame's URL fits the one a step was recorded in (workflow-use's scoring: origin, path prefix, URL prefix). */
export function frameUrlScore(frameUrl: string, wanted: string | null | undefined): number {
  if (!wanted) return 0;
  let score = 0;
  try {
    const a = new URL(frameUrl);
    const b = new URL(wanted);
    if (a.origin === b.origin) {
      score += 2;
      if (a.pathname.startsWith(b.pathname)) score += 1;
    }
  } catch {
    return 0;
  }
  if (frameUrl.startsWith(wanted)) score += 1;
  return score;
}

/** The frame `path` leads to from the top frame (`0.1`: its first child's second child), or undefined. */
export function frameAtPath(page: Page, path: string | null | undefined): Frame | undefined {
  let frame = page.mainFrame();
  if (!path || path.trim() === '0') return frame;
  for (const part of path.split('.')) {
    if (part.trim() === '') continue;
    const index = Number(part);
    const child = Number.isInteger(index) ? frame.childFrames()[index] : undefined;
    if (!child) return undefined;
    frame = child;
  }
  return frame;
}

/**
 * The frames to look in, best first: the one the step's `frameIdPath` leads to (the top frame
 * without one), replaced by a frame whose URL fits `frameUrl` better; then every other frame, the
 * best fitting `frameUrl` first. A step recorded inside an iframe thus runs there, and one whose
 * frame hints no longer fit still finds its element wherever it now is.
 */
function scopes(page: Page, target: Target): Frame[] {
  const all = page.frames().filter((f) => !f.isDetached());
  let first = frameAtPath(page, target.frameIdPath) ?? page.mainFrame();
  if (target.frameUrl) {
    for (const f of all) if (frameUrlScore(f.url(), target.frameUrl) > frameUrlScore(first.url(), target.frameUrl)) first = f;
  }
  const rest = all.filter((f) => f !== first).sort((a, b) => frameUrlScore(b.url(), target.frameUrl) - frameUrlScore(a.url(), target.frameUrl));
  return [first, ...rest];
}

const POLL_MS = 100;

/**
 * The step's element: the first of CSS selector, XPath, tag + text that matches anything, tried in
 * that order and retried until `timeoutMs` runs out. Returns which one matched.
 */
export async function locate(page: Page, target: Target, timeoutMs: number): Promise<{ locator: Locator; matched: string }> {
  if (candidates(page.mainFrame(), target).length === 0) throw new TargetNotFoundError('the step names no element (cssSelector, xpath or elementTag + elementText)');
  const deadline = Date.now() + timeoutMs;
  // An invalid selector counts as matching nothing, so the next way of finding the element still gets its turn.
  // Frames come first, then the ways of finding: the recorded frame's XPath beats another frame's CSS.
  const firstMatching = async (list: Candidate[]): Promise<Candidate | undefined> => {
    for (const c of list) if ((await c.locator.count().catch(() => 0)) > 0) return c;
    return undefined;
  };
  for (;;) {
    const frames = scopes(page, target);
    const lists = frames.map((f) => candidates(f, target));
    let found: Candidate | undefined;
    for (const list of lists) if ((found = await firstMatching(list))) break;
    if (found) {
      // The page may have changed between two checks of one pass (an element appearing after its
      // CSS selector was tried): look again, so the order of preference holds.
      const preferred = found === lists[0]![0] ? found : ((await firstMatching(lists.flat())) ?? found);
      return { locator: preferred.locator.first(), matched: preferred.label };
    }
    if (Date.now() >= deadline) {
      const tried = lists[0]!.map((c) => c.label).join(', nor ');
      const elsewhere = frames.length > 1 ? ` (nor in any of the page's ${frames.length - 1} other frame(s))` : '';
      throw new TargetNotFoundError(`no element matches ${tried}${elsewhere} within ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
