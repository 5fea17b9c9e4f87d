import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotFoundError, readBuiltAsset } from '../../common/index.js';
import { assetCookie } from '../asset-cookie.js';
import type { AppDeps } from '../deps.js';
import { binary, errors, sessionParams } from '../schemas.js';
import { registerEmbed } from './embed.js';

/**
 * The replayed page lives in rrweb's sandboxed iframe, which inherits this policy: nothing is
 * fetched from anywhere but us, recorded scripts never run, recorded styles do apply. Only our own
 * pages and those of `embedOrigins` (VIEWER_ORIGINS) may put the viewer in a frame.
 */
export function viewerCsp(embedOrigins: readonly string[]): string {
  // Config validated each entry as a bare origin; new URL(...).origin keeps anything else (a path, a ';') out of the policy.
  const ancestors = ["'self'", ...new Set(embedOrigins.map((o) => new URL(o).origin))];
  return [...BASE_CSP, `frame-ancestors ${ancestors.join(' ')}`].join('; ');
}

const BASE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "media-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-src 'self' blob: data:",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
];

/** The policy with no other origin allowed to embed the viewer (VIEWER_ORIGINS unset). */
export const VIEWER_CSP = viewerCsp([]);

/**
 * The viewer page, told which origins may embed it: in embed mode it talks (postMessage) only to a
 * parent on one of them or on its own origin (src/viewer/embed.ts).
 */
export function viewerPage(html: string, embedOrigins: readonly string[]): string {
  const meta = `<meta name="domcast-embed-origins" content="${escapeHtml(embedOrigins.join(' '))}">`;
  return html.replace('</head>', `${meta}\n</head>`);
}

/**
 * A live run's page carries what its stream would send first (hello and the reset from the latest
 * checkpoint, `StreamHub.startFrames`) when that is at most this many characters: the viewer draws
 * it without waiting for its socket (issue 15, late join). Larger starts come over the socket,
 * compressed.
 */
export const PAGE_START_MAX_CHARS = 256 * 1024;

/**
 * `frames` (JSON texts) as a JSON array in a data block the viewer reads (src/viewer/early.ts).
 * Every `<` is escaped, so the text can neither end the element nor open a comment in it; JSON.parse
 * gives the same strings back.
 */
export function startBlock(frames: readonly string[]): string {
  return `<script type="application/json" id="domcast-start">[${frames.join(',').replace(/</g, '\\u003c')}]</script>\n`;
}

const EARLY_SCRIPT = '<script src="/assets/early.js"></script>';

/** The page with the stream's start before early.js, which reads it (a function: `$&` in a page's text is text, not a pattern). */
export function withStart(html: string, frames: readonly string[] | null): string {
  if (!frames) return html;
  // The bound holds for what is sent: escaping a `<` takes six characters.
  const block = startBlock(frames);
  return block.length > PAGE_START_MAX_CHARS ? html : html.replace(EARLY_SCRIPT, () => `${block}${EARLY_SCRIPT}`);
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What a person who opened a viewer link sees when it cannot be shown: the reason, in words. */
export function viewerErrorPage(status: number, message: string): string {
  const title = status === 401 ? 'This viewer link does not work' : 'Nothing to watch here';
  const hint = status === 401 ? 'Ask whoever shared it for a fresh link (links expire after a while).' : 'The run may have been deleted, or the link is mistyped.';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>domcast · ${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{margin:0;min-height:100vh;display:grid;place-items:center;background:#0b1120;color:#e2e8f0;font:15px/1.5 system-ui,sans-serif}
main{max-width:32rem;padding:2rem;border:1px solid #1e293b;border-radius:12px;background:#0f172a}h1{font-size:1.15rem;margin:0 0 .5rem}
p{margin:.25rem 0;color:#94a3b8}code{color:#fca5a5}</style></head>
<body><main><h1>${escapeHtml(title)}</h1><p><code>${escapeHtml(message)}</code></p><p>${hint}</p></main></body></html>`;
}

const viewerPageSchema = {
  tags: ['viewer'],
  summary: 'The viewer: live while the run goes, a replay once it ended',
  params: sessionParams,
  querystring: z.looseObject({
    token: z.string().describe("The link's viewer token (only this counts here, not the API key)."),
    t: z.string().optional().describe('Opens the replay at this moment, ms from its start.'),
    embed: z.string().optional().describe('1: embed mode, for a frame in another page (README, Embedding): the replayed page alone, scaled to fit; status and steps go to the parent by postMessage.'),
    controls: z.string().optional().describe('1, in embed mode: show the replay and rewind controls.'),
    status: z.string().optional().describe('0, in embed mode: no status overlay.'),
  }),
  response: { 200: binary('The viewer page', 'text/html'), ...errors },
};

const viewerAssetSchema = {
  tags: ['viewer'],
  summary: "The viewer's script and styles",
  params: z.object({ name: z.string().max(100) }),
  response: { 200: binary('A script or a stylesheet', 'text/plain'), ...errors },
};

const ASSETS: Record<string, { file: string; type: string }> = {
  'viewer.js': { file: 'viewer/viewer.js', type: 'text/javascript; charset=utf-8' },
  'early.js': { file: 'viewer/early.js', type: 'text/javascript; charset=utf-8' },
  'viewer.css': { file: 'viewer/viewer.css', type: 'text/css; charset=utf-8' },
  'rrweb.css': { file: 'viewer/rrweb.css', type: 'text/css; charset=utf-8' },
};

export function registerViewer(app: FastifyInstance, deps: AppDeps): void {
  const html = viewerPage(readBuiltAsset('viewer/index.html'), deps.config.viewerOrigins);
  const csp = viewerCsp(deps.config.viewerOrigins);
  const assets = new Map(Object.entries(ASSETS).map(([name, a]) => [name, { body: readBuiltAsset(a.file), type: a.type }]));

  app.get<{ Params: { id: string } }>('/workflows/visual/:id/viewer', { config: { access: 'viewer-only' }, schema: viewerPageSchema }, async (req, reply) => {
    const { id } = req.params;
    const session = deps.registry.get(id) ?? (await deps.store.get(id));
    if (!session) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
    if (!session.visual) throw new NotFoundError(`session ${id} runs with visual_enabled=false; there is nothing to view`);
    // The replay's <img>, CSS and fonts fetch the session's captured assets without a header: the link's token goes to them as a cookie.
    const grant = req.viewerGrant;
    const cookie = grant && assetCookie(id, grant.token, grant.expiresAt, req.protocol === 'https');
    if (cookie) reply.header('set-cookie', cookie);
    return reply
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      // The run's status as the page is served: the viewer starts live or replay at once, without
      // asking (a late joiner's round trip). A status that changes meanwhile reaches it on the stream.
      .send(withStart(html.replace('data-status="unknown"', `data-status="${session.status}"`), deps.hub.startFrames(id, PAGE_START_MAX_CHARS, req.raw)));
  });

  registerEmbed(app);

  app.get<{ Params: { name: string } }>('/assets/:name', { config: { access: 'public' }, schema: viewerAssetSchema }, async (req, reply) => {
    const asset = assets.get(req.params.name);
    if (!asset) throw new NotFoundError(`no asset ${req.params.name}`);
    return reply.header('cache-control', 'public, max-age=300').header('x-content-type-options', 'nosniff').type(asset.type).send(asset.body);
  });
}
