// The embedding example's "app": serves embed.html on its own origin and starts domcast runs for it
// with the API key, which stays on this server; the page gets only the run's viewer link.
//
//   export DOMCAST_API_KEY=$(openssl rand -hex 24)
//   VIEWER_ORIGINS=http://127.0.0.1:8090 npm run demo &
//   node examples/serve.mjs          # then open http://127.0.0.1:8090/
//
// DOMCAST_URL (default http://127.0.0.1:3000), PORT (8090), SITE_URL (the demo site, http://127.0.0.1:8080).
/* global fetch */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const domcast = (process.env.DOMCAST_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
const port = Number(process.env.PORT ?? 8090);
const siteUrl = process.env.SITE_URL ?? 'http://127.0.0.1:8080';
const apiKey = process.env.DOMCAST_API_KEY;
const page = readFileSync(new URL('./embed.html', import.meta.url), 'utf8').replaceAll('__DOMCAST__', domcast);

/** Starts the stored demo workflow on domcast; its viewer link, or why not. */
async function startRun() {
  const res = await fetch(`${domcast}/workflows/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({ name: 'demo', inputs: { site_url: siteUrl, username: 'ada', password: 'correct horse battery staple' }, visual_enabled: true }),
  });
  const body = await res.json();
  return res.ok ? { status: 200, body: { viewer_url: body.viewer_url, session_id: body.session_id } } : { status: 502, body: { error: `domcast answered ${res.status}: ${body.error}` } };
}

createServer(async (req, res) => {
  if (req.method === 'GET' && (req.url === '/' || req.url?.startsWith('/?'))) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
  } else if (req.method === 'POST' && req.url === '/run') {
    const { status, body } = await startRun().catch((err) => ({ status: 502, body: { error: `domcast is not reachable at ${domcast}: ${err.message}` } }));
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  } else {
    res.writeHead(404).end();
  }
}).listen(port, '127.0.0.1', () => {
  console.log(`The embedding example is at http://127.0.0.1:${port}/ (domcast at ${domcast}; it needs VIEWER_ORIGINS=http://127.0.0.1:${port})`);
});
