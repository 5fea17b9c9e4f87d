import type { Browser, BrowserContext, CDPSession, Page, Request, WebSocketRoute } from 'playwright-core';
import { errorMessage, type Logger } from '../common/index.js';
import { AssetCapture, CAPTURED_TYPES, type PausedEvent } from './asset-capture.js';
import type { NavigationPolicy } from './navigation-policy.js';

export interface Refusal {
  url: string;
  reason: string;
}

/** Requests that never leave the browser: nothing to guard. */
const IN_BROWSER = /^(data|blob|about):/i;

/** Reasons of the latest refusals, so that a run can say why a request it saw fail was refused. */
const RECENT_REASONS = 256;

/** The fields of CDP's Fetch.requestPaused we use (playwright-core does not export its Protocol types). */
interface RequestPaused extends PausedEvent {
  request: { url: string; urlFragment?: string };
  frameId: string;
}

const REQUEST_STAGE = [{ urlPattern: '*', requestStage: 'Request' as const }];

const withoutFragment = (url: string): string => url.split('#', 1)[0] ?? url;

/**
 * One per browser, on a browser-level CDP session: every request of every context waits in CDP's
 * Fetch domain until the policy has ruled on it. Unlike Playwright's `route`, which is called only
 * for the first URL of a redirect chain (Playwright continues the later hops itself), this sees each
 * redirect hop, and the requests of workers and out-of-process iframes, with nothing to attach per
 * target and so no window in which a request slips through. A refused request fails with
 * net::ERR_BLOCKED_BY_CLIENT before any connection is made.
 */
class BrowserGuard {
  private static readonly guards = new WeakMap<Browser, Promise<BrowserGuard>>();
  private readonly mainFrames = new Map<string, (refusal: Refusal) => void>();
  private readonly recent = new Map<string, string>();
  private capture: AssetCapture | undefined;

  private constructor(
    private readonly cdp: CDPSession,
    readonly policy: NavigationPolicy,
    private readonly log: Logger,
  ) {
    cdp.on('Fetch.requestPaused', (event) => void this.rule(event));
  }

  /** The guard of `browser`, started on first use (before the first run's page exists). */
  static of(browser: Browser, policy: NavigationPolicy, log: Logger): Promise<BrowserGuard> {
    let guard = BrowserGuard.guards.get(browser);
    if (!guard) {
      guard = (async () => {
        const cdp = await browser.newBrowserCDPSession();
        const started = new BrowserGuard(cdp, policy, log);
        await cdp.send('Fetch.enable', { patterns: REQUEST_STAGE });
        return started;
      })();
      // A failed start is not kept: the next run tries again (or finds the browser gone and gets a new one).
      guard.catch(() => BrowserGuard.guards.delete(browser));
      BrowserGuard.guards.set(browser, guard);
    }
    return guard;
  }

  /** `onRefused` hears of every refused document request of the frame `frameId` (a page's main frame: its target id). */
  watchMainFrame(frameId: string, onRefused: (refusal: Refusal) => void): () => void {
    this.mainFrames.set(frameId, onRefused);
    return () => this.mainFrames.delete(frameId);
  }

  /**
   * From now on the responses of images, stylesheets and fonts pause too, for `capture` to read.
   * Only for a browser that serves one run (BROWSER_ISOLATION=run): a shared browser's responses
   * cannot be told apart by run here, and one run's assets must never reach another's viewers.
   */
  async captureAssets(capture: AssetCapture): Promise<void> {
    this.capture = capture;
    const response = CAPTURED_TYPES.map((resourceType) => ({ urlPattern: '*', resourceType, requestStage: 'Response' as const }));
    await this.cdp.send('Fetch.enable', { patterns: [...REQUEST_STAGE, ...response] });
  }

  reasonFor(url: string): string | undefined {
    return this.recent.get(withoutFragment(url));
  }

  private async rule(event: RequestPaused): Promise<void> {
    const { requestId, request } = event;
    if (event.responseStatusCode !== undefined || event.responseErrorReason !== undefined) {
      // The response stage (asset capture): the request was ruled on already.
      if (this.capture) await this.capture.onResponse(this.cdp, event);
      else await this.cdp.send('Fetch.continueRequest', { requestId }).catch(() => undefined);
      return;
    }
    let reason: string | null;
    try {
      reason = IN_BROWSER.test(request.url) ? null : await this.policy.verify(request.url);
    } catch (err) {
      // Fail closed: a request the policy could not rule on does not go out.
      reason = `the navigation policy could not check it: ${errorMessage(err)}`;
      this.log.error({ url: request.url.slice(0, 300), err: reason }, 'navigation policy check failed');
    }
    // Either call fails only when the request's page or context went away meanwhile: nothing left to rule on.
    if (reason === null) {
      this.capture?.noteRequest(event);
      await this.cdp.send('Fetch.continueRequest', { requestId }).catch(() => undefined);
      return;
    }
    this.recent.delete(request.url);
    this.recent.set(request.url, reason);
    if (this.recent.size > RECENT_REASONS) this.recent.delete(this.recent.keys().next().value ?? '');
    // Told before the request fails, so the step that caused it fails with this reason, not with a net:: error.
    if (event.resourceType === 'Document') this.mainFrames.get(event.frameId)?.({ url: request.url + (request.urlFragment ?? ''), reason });
    await this.cdp.send('Fetch.failRequest', { requestId, errorReason: 'BlockedByClient' }).catch(() => undefined);
  }
}

/** At most this many refusals are logged per window and run; the rest are counted into the next line. */
const LOG_WINDOW_MS = 10_000;
const LOG_PER_WINDOW = 20;

function refusalLogger(log: Logger): (refusal: Refusal) => void {
  let windowStart = 0;
  let logged = 0;
  let suppressed = 0;
  return ({ url, reason }) => {
    const now = Date.now();
    if (now - windowStart >= LOG_WINDOW_MS) {
      windowStart = now;
      logged = 0;
    }
    if (logged >= LOG_PER_WINDOW) {
      suppressed++;
      return;
    }
    logged++;
    log.warn({ url: url.slice(0, 300), reason, ...(suppressed ? { suppressed } : {}) }, 'request refused by the navigation policy');
    suppressed = 0;
  };
}

export interface RunGuardHooks {
  /** A document request of `page`'s main frame was refused (a navigation, a link, a redirect hop). */
  onNavigationRefused(refusal: Refusal): void;
  /** Any refused request or WebSocket of the context, the above included. */
  onRefused(refusal: Refusal): void;
}

/** The id CDP gives `page`'s main frame, which is its target id. */
async function mainFrameId(context: BrowserContext, page: Page): Promise<string> {
  const cdp = await context.newCDPSession(page);
  try {
    const { targetInfo } = await cdp.send('Target.getTargetInfo');
    return targetInfo.targetId;
  } finally {
    await cdp.detach();
  }
}

/**
 * Puts a run's context under `policy`: its HTTP(S) requests through the browser's guard, its pages'
 * WebSockets through Playwright's WebSocket routing (the Fetch domain does not see WebSocket
 * handshakes). Logs each refusal (rate-limited). Resolves once `page` is guarded; call the returned
 * function when the run ends.
 */
export async function guardRun(
  context: BrowserContext,
  page: Page,
  policy: NavigationPolicy,
  log: Logger,
  hooks: RunGuardHooks,
  capture?: AssetCapture,
): Promise<() => void> {
  const browser = context.browser();
  if (!browser) throw new Error('the browser context has no browser');
  const guard = await BrowserGuard.of(browser, policy, log);
  if (guard.policy !== policy) throw new Error('one browser cannot serve two navigation policies');
  if (capture) await guard.captureAssets(capture);
  const logRefusal = refusalLogger(log);
  const refused = (refusal: Refusal): void => {
    logRefusal(refusal);
    hooks.onRefused(refusal);
  };
  const unwatch = guard.watchMainFrame(await mainFrameId(context, page), hooks.onNavigationRefused);
  const onFailed = (request: Request): void => {
    // Sub-resources fail with "net::ERR_BLOCKED_BY_CLIENT.Inspector", documents without the suffix.
    if (!request.failure()?.errorText.startsWith('net::ERR_BLOCKED_BY_CLIENT')) return;
    refused({ url: request.url(), reason: guard.reasonFor(request.url()) ?? 'refused by the navigation policy' });
  };
  context.on('requestfailed', onFailed);
  // Routed sockets are relayed through Playwright (page ↔ node ↔ server): the price of checking them.
  await context.routeWebSocket(
    () => true,
    async (ws: WebSocketRoute) => {
      const reason = await policy.verify(ws.url().replace(/^ws/i, 'http'));
      if (reason === null) {
        ws.connectToServer();
        return;
      }
      refused({ url: ws.url(), reason });
      // 1008: policy violation; a close reason may not exceed 123 bytes.
      await ws.close({ code: 1008, reason: `refused: ${reason}`.slice(0, 120) });
    },
  );
  return () => {
    unwatch();
    context.off('requestfailed', onFailed);
  };
}
