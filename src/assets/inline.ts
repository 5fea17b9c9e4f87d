import { assetPrefix, urlOfKey } from './paths.js';

/** What inlining reads from the store: the hash a session's URL maps to, and that body. */
export interface AssetSource {
  assetHash(sessionId: string, url: string): string | undefined;
  assetBody(sessionId: string, hash: string): { contentType: string; body: Buffer } | undefined;
}

/**
 * Turns a recording's pieces of JSON (whole events, as `eventsJson` yields them) into pieces whose
 * asset paths are `data:` URLs of the bodies the run captured, so that an exported recording plays
 * anywhere (rrweb-player, another machine) without our server. A path whose body is missing is
 * left as it is. Each body is encoded once; `maxBytes` bounds what one export inlines in all.
 */
export function* inlineAssets(pieces: Iterable<string>, sessionId: string, store: AssetSource, maxBytes = 512 * 1024 * 1024): Generator<string> {
  const escaped = assetPrefix(sessionId).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  // In JSON text a '/' may be written '\/': accept both.
  const pattern = new RegExp(escaped.replaceAll('\\/', '(?:\\\\?\\/)') + '([A-Za-z0-9_-]+)', 'g');
  const cache = new Map<string, string | null>();
  let spent = 0;
  /** The body of `key` as a data URL, or null when the session has none. */
  const dataUrl = (key: string): string | null => {
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const url = urlOfKey(key);
    const hash = url ? store.assetHash(sessionId, url) : undefined;
    const asset = hash ? store.assetBody(sessionId, hash) : undefined;
    let out: string | null = null;
    if (asset) {
      // Types come from the recorded site: keep only a plain type/subtype in the data URL.
      const type = /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/i.test(asset.contentType) ? asset.contentType : 'application/octet-stream';
      out = `data:${type};base64,${asset.body.toString('base64')}`;
    }
    cache.set(key, out);
    return out;
  };
  for (const piece of pieces) {
    yield piece.includes('/assets/') || piece.includes('\\/assets\\/')
      ? piece.replace(pattern, (whole, key: string) => {
          const inlined = dataUrl(key);
          if (inlined === null || spent + inlined.length > maxBytes) return whole;
          spent += inlined.length;
          return inlined;
        })
      : piece;
  }
}
