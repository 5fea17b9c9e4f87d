import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

/**
 * Captured bodies compressed for the viewers that accept it (`Accept-Encoding`): SVG, CSS, fonts
 * that are not compressed already (TTF, OTF, EOT) and text. Images, WOFF/WOFF2, audio and video are
 * compressed formats and go as they are. A body is named by its hash, so each one is compressed
 * once per encoding and kept, within a bound, for every viewer and session that asks for it.
 */

export type Encoding = 'br' | 'gzip';

/** Served types (servedContentType's answers, charset aside) worth compressing. */
const COMPRESSIBLE = /^(image\/svg\+xml|text\/css|text\/plain|font\/(ttf|otf|sfnt|collection)|application\/(font-sfnt|x-font-ttf|x-font-otf|x-font-opentype|vnd\.ms-fontobject))$/;

/** Smaller bodies gain less than the header costs. */
export const MIN_COMPRESS_BYTES = 256;
/** Larger bodies are served as they are: compressing them would hold a thread-pool thread for long. */
export const MAX_COMPRESS_BYTES = 8 * 1024 * 1024;
/** Compressed bodies kept in all, oldest dropped first. */
export const CACHE_BYTES = 32 * 1024 * 1024;

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** The encoding to answer `acceptEncoding` with: br, else gzip, else none (q=0 refuses one). */
export function chooseEncoding(acceptEncoding: string | undefined): Encoding | null {
  if (!acceptEncoding) return null;
  const accepted = new Set<string>();
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    if (name && !(q !== undefined && Number(q.slice(2)) === 0)) accepted.add(name);
  }
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip') || accepted.has('*')) return 'gzip';
  return null;
}

export function compressible(servedType: string, bytes: number): boolean {
  const essence = (servedType.split(';', 1)[0] ?? '').trim();
  return bytes >= MIN_COMPRESS_BYTES && bytes <= MAX_COMPRESS_BYTES && COMPRESSIBLE.test(essence);
}

export class CompressedBodies {
  private readonly cache = new Map<string, Buffer>();
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private bytes = 0;

  constructor(private readonly maxBytes = CACHE_BYTES) {}

  /** `body` (whose SHA-256 is `hash`) in `encoding`; compressed off the event loop the first time. */
  async get(hash: string, body: Buffer, encoding: Encoding): Promise<Buffer> {
    const key = `${encoding}:${hash}`;
    const kept = this.cache.get(key);
    if (kept) {
      // Most recently used last: the first entry is the one to drop.
      this.cache.delete(key);
      this.cache.set(key, kept);
      return kept;
    }
    let pending = this.inflight.get(key);
    if (!pending) {
      pending =
        encoding === 'br'
          ? brotli(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 9, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } })
          : gzipAsync(body, { level: 9 });
      this.inflight.set(key, pending);
      void pending.then(
        (out) => this.keep(key, out),
        () => undefined,
      ).finally(() => this.inflight.delete(key));
    }
    return pending;
  }

  private keep(key: string, out: Buffer): void {
    if (out.length > this.maxBytes || this.cache.has(key)) return;
    this.cache.set(key, out);
    this.bytes += out.length;
    for (const [oldest, buf] of this.cache) {
      if (this.bytes <= this.maxBytes) break;
      this.cache.delete(oldest);
      this.bytes -= buf.length;
    }
  }
}
