import { assetPrefix, urlOfKey } from './paths.js';

/** What inlining reads from the store: the hash a session's URL maps to, and that body. */
export interface AssetSource {
  assetHash(sessionId: string, url: string): Promise<string | undefined>;
  assetBody(sessionId: string, hash: string): Promise<{ contentType: string; body: Buffer } | undefined>;
}

/**
 * Turns a recording's pieces of JSON (whole events, as `eventsJson` yields them) into pieces whose
 * asset paths are `data:` URLs of the bodies the run captured, so that an exported recording plays
 * anywhere (rrweb-player, another machine) without our server. A path whose body is missing is
 * left as it is. Each body is encoded once; `maxBytes` bounds what one export inlines in all.
 */
export async function* inlineAssets(pieces: AsyncIterable<string>, sessionId: string, store: AssetSource, maxBytes = 512 * 1024 * 1024): AsyncGenerator<string> {
  const escaped = assetPrefix(sessionId).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  // In JSON text a '/' may be written '\/': accept both.
  const pattern = new RegExp(escaped.replaceAll('\\/', '(?:\\\\?\\/)') + '([A-Za-z0-9_-]+)', 'g');
  const cache = new Map<string, string | null>();
  let spent = 0;
  /** The body of `key` as a data URL, or null when the session has none. */
  const dataUrl = async (key: string): Promise<string | null> => {
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const url = urlOfKey(key);
    const hash = url ? await store.assetHash(sessionId, url) : undefined;
    const asset = hash ? await store.assetBody(sessionId, hash) : undefined;
    let out: string | null = null;
    if (asset) {
      // Types come from the recorded site: keep only a plain type/subtype in the data URL.
      const type = /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/i.test(asset.contentType) ? asset.contentType : 'application/octet-stream';
      out = `data:${type};base64,${asset.body.toString('base64')}`;
    }
    cache.set(key, out);
    return out;
  };
  for await (const piece of pieces) {
    if (!piece.includes('/assets/') && !piece.includes('\\/assets\\/')) {
      yield piece;
      continue;
    }
    // The bodies are read into the cache first (String.replace cannot wait), then put in, in order.
    for (const match of piece.matchAll(pattern)) await dataUrl(match[1]!);
    yield piece.replace(pattern, (whole, key: string) => {
      const data = cache.get(key) ?? null;
      if (data === null || spent + data.length > maxBytes) return whole;
      spent += data.length;
      return data;
    });
  }
}
