/**
 * Where a captured asset is served from. The recorded page's URLs are rewritten, in the stream and
 * the store, to `assetPath(session, url)`: a path on our origin that names the session and the URL
 * the page used (base64url of its UTF-8, so it needs no escaping in attributes, `srcset` or CSS).
 * The route answers with the body the run's browser received for that URL.
 */
export const ASSET_SEGMENT = 'assets';

export function assetPrefix(sessionId: string): string {
  return `/workflows/visual/${encodeURIComponent(sessionId)}/${ASSET_SEGMENT}/`;
}

export function assetKey(url: string): string {
  return Buffer.from(url, 'utf8').toString('base64url');
}

/** The URL a key stands for, or null when the key is not one we made. */
export function urlOfKey(key: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,12000}$/.test(key)) return null;
  const url = Buffer.from(key, 'base64url').toString('utf8');
  return /^https?:\/\//i.test(url) && assetKey(url) === key ? url : null;
}

export function assetPath(sessionId: string, url: string): string {
  return assetPrefix(sessionId) + assetKey(url);
}

/** Only http(s) URLs are captured and rewritten; data:, blob: and the rest are left as they are. */
export function isCapturable(url: string): boolean {
  return /^https?:\/\//i.test(url);
}
