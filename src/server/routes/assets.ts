import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { assetPrefix, chooseEncoding, CompressedBodies, compressible, servedContentType, urlOfKey } from '../../assets/index.js';
import { BadRequestError, NotFoundError } from '../../common/index.js';
import type { AppDeps } from '../deps.js';
import { binary, errors, sessionParams, viewerTokenQuery } from '../schemas.js';

/** How long a request for a running session's asset waits for the run's browser to hand it over. */
export const ASSET_WAIT_MS = 5000;

/**
 * The recorded site's bytes, served from our origin, must never run as a page of ours: opened
 * directly, the body is a sandboxed document (an opaque origin, no script, no forms, no popups)
 * that may load nothing but `data:` images and fonts and its own inline styles, and no page may
 * frame it. As an `<img>`, a stylesheet or a font this header does not apply and is not needed:
 * those never run script.
 */
export const ASSET_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; frame-ancestors 'none'";

const HASH = /^[0-9a-f]{64}$/;

/**
 * Fetch-metadata destinations that render the body as a document. An SVG opened so gets its
 * source as text: even sandboxed, Chromium opens a connection to the host of an `<iframe src>` in
 * it before refusing the frame, which tells that host someone looked, and when. Browsers that send
 * no `Sec-Fetch-Dest` still get the sandbox.
 */
const DOCUMENT_DESTINATIONS = new Set(['document', 'iframe', 'frame', 'fencedframe', 'embed', 'object']);

/**
 * A session's captured assets. The recording names each by the URL the page used
 * (`assetPath(session, url)`); that path redirects to the body's hash, whose answer never changes
 * and is cached for good. Both need the API key, a viewer token for this session, or the asset
 * cookie the viewer page sets; a body is served to a session only if that session captured it.
 */
export function registerAssets(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const compressed = new CompressedBodies();
  const byUrl = {
    tags: ['viewer'],
    summary: 'A captured asset, by the URL the page used: redirects to its body',
    params: sessionParams.extend({ key: z.string().describe("The base64url of the page's URL.") }),
    querystring: viewerTokenQuery,
    response: { 302: z.undefined().describe('Location: the body, by its hash.'), ...errors },
  };
  app.get('/workflows/visual/:id/assets/:key', { config: { access: 'viewer-asset' }, schema: byUrl }, async (req, reply) => {
    const { id, key } = req.params;
    const url = urlOfKey(key);
    if (url === null) throw new BadRequestError('not an asset key: the path does not name a captured http(s) URL');
    let hash = await deps.assets.lookup(id, url);
    if (hash === undefined && deps.registry.get(id)?.finished === false) {
      // The page may have asked for it a moment ago: its body is on the way from the run's browser.
      const left = new AbortController();
      const onClose = () => left.abort();
      reply.raw.once('close', onClose);
      hash = await deps.assets.waitFor(id, url, ASSET_WAIT_MS, left.signal);
      reply.raw.off('close', onClose);
    } else if (hash === undefined && deps.cluster) {
      // Cluster mode: the run's worker writes its bodies to the shared store; one asked for a moment ago may be on the way.
      const row = await deps.store.get(id);
      const until = Date.now() + ASSET_WAIT_MS;
      while (hash === undefined && row?.status === 'running' && Date.now() < until && !reply.raw.destroyed) {
        await new Promise((r) => setTimeout(r, 100));
        hash = await deps.assets.lookup(id, url);
      }
    }
    if (hash === undefined) throw new NotFoundError(`session ${id.slice(0, 64)} has no captured asset for ${url.slice(0, 200)}`);
    // A caller that came with `?token=` has no cookie to follow the redirect with: the token goes along.
    const { token } = req.query;
    const query = token !== undefined ? `?token=${encodeURIComponent(token)}` : '';
    return reply
      .header('location', `${assetPrefix(id)}h/${hash}${query}`)
      .header('cache-control', 'private, no-cache')
      .header('referrer-policy', 'no-referrer')
      .code(302)
      .send();
  });

  const byHash = {
    tags: ['viewer'],
    summary: "A captured asset's body (immutable; sandboxed when opened as a document)",
    params: sessionParams.extend({ hash: z.string().describe('SHA-256 of the body, 64 lower-case hex digits.') }),
    querystring: viewerTokenQuery,
    response: { 200: binary('The body, as the site sent it', 'application/octet-stream'), ...errors },
  };
  app.get('/workflows/visual/:id/assets/h/:hash', { config: { access: 'viewer-asset' }, schema: byHash }, async (req, reply) => {
    const { id, hash } = req.params;
    if (!HASH.test(hash)) throw new BadRequestError('not an asset hash: 64 lower-case hex digits expected');
    const asset = await deps.assets.body(id, hash);
    if (!asset) throw new NotFoundError(`session ${id.slice(0, 64)} has no captured asset ${hash}`);
    const asDocument = DOCUMENT_DESTINATIONS.has(String(req.headers['sec-fetch-dest']));
    const type = servedContentType(asset.contentType, asDocument);
    const encoding = compressible(type, asset.body.length) ? chooseEncoding(req.headers['accept-encoding']) : null;
    if (encoding) reply.header('content-encoding', encoding);
    return reply
      // The browser's cache keeps an <img>'s answer apart from a navigation's, and a compressed one apart.
      .header('vary', 'sec-fetch-dest, accept-encoding')
      .header('cache-control', 'private, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', ASSET_CSP)
      .header('cross-origin-resource-policy', 'same-origin')
      .header('referrer-policy', 'no-referrer')
      .type(type)
      .send(encoding ? await compressed.get(hash, asset.body, encoding) : asset.body);
  });
}
