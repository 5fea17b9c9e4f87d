import type { CDPSession } from 'playwright-core';
import { isCapturable } from '../assets/paths.js';

/** The resource types whose bodies are worth keeping for the viewer (media streams are left out: ranged and large). */
export const CAPTURED_TYPES = ['Image', 'Stylesheet', 'Font', 'Other'] as const;

/** What a capture keeps, per run. */
export interface AssetLimits {
  /** A body larger than this is skipped (bytes). */
  maxAssetBytes: number;
  /** Once the run's captured bodies reach this, the rest are skipped (bytes). */
  maxSessionBytes: number;
}

export interface CapturedAsset {
  /** Every URL that led to the body: the redirect chain's first hop, …, the final one; without fragments. */
  urls: string[];
  contentType: string;
  body: Buffer;
}

export interface AssetCounts {
  captured: number;
  skipped: number;
  bytes: number;
  /** Skipped assets by reason. */
  skipped_by_reason: Record<string, number>;
}

/** The fields of CDP's Fetch.requestPaused a capture reads. */
export interface PausedEvent {
  requestId: string;
  networkId?: string;
  resourceType: string;
  request: { url: string };
  responseStatusCode?: number;
  responseErrorReason?: string;
  responseHeaders?: { name: string; value: string }[];
}

const header = (e: PausedEvent, name: string): string | undefined => e.responseHeaders?.find((h) => h.name.toLowerCase() === name)?.value;

/** Types we would serve as something the viewer can use; the rest of `Other` (beacons, manifests…) is not kept. */
const USEFUL_OTHER = /^(image\/|font\/|text\/css|application\/(font|x-font|vnd\.ms-fontobject))/i;

/** Redirect chains followed at once, per run: more are forgotten oldest first. */
const MAX_CHAINS = 512;

/**
 * Keeps what a run's page loaded, at the response stage, in the run's own browser: the guard pauses
 * the response of every image, stylesheet, font (and SVG or font sent as `Other`), this reads its
 * body with Fetch.getResponseBody while it is paused, lets it go on, and hands the body to `sink`.
 * Cookies, auth headers and intranet hosts just work: the browser that fetched them is ours. A body
 * over a limit, a failed response or one the browser could not give is skipped and counted; it
 * never holds up or fails the page.
 */
export class AssetCapture {
  private bytes = 0;
  readonly counts: AssetCounts = { captured: 0, skipped: 0, bytes: 0, skipped_by_reason: {} };
  /** networkId → the URLs of the chain so far (each redirect hop is paused with the same networkId). */
  private readonly chains = new Map<string, string[]>();

  constructor(
    private readonly limits: AssetLimits,
    private readonly sink: (asset: CapturedAsset) => void,
  ) {}

  /** A request-stage pause: remembers the URL as a hop of its chain (for capturable types). */
  noteRequest(e: PausedEvent): void {
    if (!e.networkId || !(CAPTURED_TYPES as readonly string[]).includes(e.resourceType) || !isCapturable(e.request.url)) return;
    const chain = this.chains.get(e.networkId);
    if (chain) {
      if (chain.at(-1) !== e.request.url && chain.length < 20) chain.push(e.request.url);
      return;
    }
    this.chains.set(e.networkId, [e.request.url]);
    if (this.chains.size > MAX_CHAINS) this.chains.delete(this.chains.keys().next().value ?? '');
  }

  private skip(reason: string): void {
    this.counts.skipped++;
    this.counts.skipped_by_reason[reason] = (this.counts.skipped_by_reason[reason] ?? 0) + 1;
  }

  /** A response-stage pause: reads the body if it is wanted, then always lets the response go on. */
  async onResponse(cdp: CDPSession, e: PausedEvent): Promise<void> {
    try {
      await this.take(cdp, e);
    } finally {
      await cdp.send('Fetch.continueResponse', { requestId: e.requestId }).catch(() => cdp.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => undefined));
    }
  }

  private async take(cdp: CDPSession, e: PausedEvent): Promise<void> {
    const status = e.responseStatusCode ?? 0;
    // A redirect hop: its body is nothing; the final hop, paused later with the same networkId, is kept for every URL.
    if (status >= 300 && status < 400) return;
    const chain = (e.networkId && this.chains.get(e.networkId)) || [e.request.url];
    if (e.networkId) this.chains.delete(e.networkId);
    if (!isCapturable(e.request.url)) return;
    if (e.responseErrorReason || status < 200 || status >= 300) return this.skip(`HTTP ${status || e.responseErrorReason}`);
    const contentType = (header(e, 'content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase() || 'application/octet-stream';
    if (e.resourceType === 'Other' && !USEFUL_OTHER.test(contentType)) return;
    const declared = Number(header(e, 'content-length'));
    if (Number.isFinite(declared) && declared > this.limits.maxAssetBytes) return this.skip('larger than the asset limit');
    if (this.bytes >= this.limits.maxSessionBytes) return this.skip("over the run's asset limit");
    let body: Buffer;
    try {
      const r = (await cdp.send('Fetch.getResponseBody', { requestId: e.requestId })) as { body: string; base64Encoded: boolean };
      body = Buffer.from(r.body, r.base64Encoded ? 'base64' : 'utf8');
    } catch {
      return this.skip('the browser could not give the body');
    }
    if (body.length > this.limits.maxAssetBytes) return this.skip('larger than the asset limit');
    if (this.bytes + body.length > this.limits.maxSessionBytes) return this.skip("over the run's asset limit");
    this.bytes += body.length;
    this.counts.captured++;
    this.counts.bytes = this.bytes;
    try {
      this.sink({ urls: [...new Set([...chain, e.request.url])], contentType, body });
    } catch {
      // The sink reports its own failures; a capture never fails the page or the guard.
    }
  }
}
