import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embedUrl, parentAllowed } from '../../src/embed/index.js';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';
import { VIEWER_CSP, viewerCsp } from '../../src/server/routes/viewer.js';

const directive = (csp: string, name: string) => csp.split('; ').find((d) => d.startsWith(`${name} `));

describe('the viewer CSP built from VIEWER_ORIGINS', () => {
  test("with no VIEWER_ORIGINS only the server's own pages may frame the viewer", () => {
    assert.equal(directive(viewerCsp([]), 'frame-ancestors'), "frame-ancestors 'self'");
    assert.equal(viewerCsp([]), VIEWER_CSP);
  });

  test("each origin of VIEWER_ORIGINS is added to frame-ancestors after 'self', and nothing else changes", () => {
    const csp = viewerCsp(['https://app.example.com', 'http://127.0.0.1:8090']);
    assert.equal(directive(csp, 'frame-ancestors'), "frame-ancestors 'self' https://app.example.com http://127.0.0.1:8090");
    const others = (p: string) => p.split('; ').filter((d) => !d.startsWith('frame-ancestors '));
    assert.deepEqual(others(csp), others(VIEWER_CSP));
    assert.match(csp, /default-src 'none'/);
  });

  test('an entry is reduced to its origin, so nothing after it (a path, a directive) reaches the policy', () => {
    const csp = viewerCsp(['https://a.example/x;script-src *', 'https://a.example']);
    assert.equal(directive(csp, 'frame-ancestors'), "frame-ancestors 'self' https://a.example");
    assert.doesNotMatch(csp, /script-src \*/);
  });
});

describe('the viewer page and the embed script, served', () => {
  let server: Server;
  before(async () => {
    server = createServer(
      loadConfig({
        PORT: '0',
        LOG_LEVEL: 'silent',
        CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
        DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-unit-')),
        DOMCAST_API_KEY: 'an-api-key-of-sixteen-chars-or-more',
        VIEWER_ORIGINS: 'https://app.example.com/, http://127.0.0.1:8090',
      }),
    );
    await server.app.ready();
  });
  after(async () => {
    await server?.close();
  });

  test('the viewer page carries the CSP from VIEWER_ORIGINS and names them to its script', async () => {
    const session = server.deps.registry.create({
      workflowName: 'embedded',
      steps: [{ type: 'wait', description: null }],
      visual: true,
      quality: 'standard',
      limits: { bufferEvents: 100 },
      metrics: server.deps.metrics,
    });
    const token = await server.deps.viewerTokens.issue(session.id);
    const res = await server.app.inject({ method: 'GET', url: `/workflows/visual/${session.id}/viewer?token=${token}&embed=1` });
    assert.equal(res.statusCode, 200);
    const csp = String(res.headers['content-security-policy']);
    assert.equal(csp, viewerCsp(['https://app.example.com', 'http://127.0.0.1:8090']));
    assert.equal(directive(csp, 'frame-ancestors'), "frame-ancestors 'self' https://app.example.com http://127.0.0.1:8090");
    assert.match(res.body, /<meta name="domcast-embed-origins" content="https:\/\/app\.example\.com http:\/\/127\.0\.0\.1:8090">/);
  });

  test('GET /embed/domcast-viewer.js is public, a JavaScript module any origin may load (CORS)', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/embed/domcast-viewer.js', headers: { origin: 'https://elsewhere.example' } });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/javascript/);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(res.body, /domcast-viewer/);
  });
});

describe('embed origin checks', () => {
  const self = 'http://127.0.0.1:3000';
  const allowed = ['https://app.example.com'];

  test('the viewer talks to a parent on its own origin or a named one, and to no other', () => {
    assert.equal(parentAllowed(self, self, allowed), true);
    assert.equal(parentAllowed('https://app.example.com', self, allowed), true);
    assert.equal(parentAllowed('https://evil.example', self, allowed), false);
    assert.equal(parentAllowed('http://app.example.com', self, allowed), false);
    assert.equal(parentAllowed('null', self, ['null']), false);
  });

  test("a hello whose origin differs from the browser's own word for the parent is refused", () => {
    assert.equal(parentAllowed('https://app.example.com', self, allowed, 'https://evil.example'), false);
    assert.equal(parentAllowed('https://app.example.com', self, allowed, 'https://app.example.com'), true);
  });

  test('the element frames only http(s) viewer links, in embed mode', () => {
    const base = 'https://app.example.com/page';
    assert.equal(embedUrl('javascript:alert(1)', base, { controls: false, hideStatus: false }), null);
    assert.equal(embedUrl('data:text/html,hi', base, { controls: false, hideStatus: false }), null);
    const url = embedUrl('http://127.0.0.1:3000/workflows/visual/s/viewer?token=t', base, { controls: true, hideStatus: true })!;
    assert.equal(url.searchParams.get('embed'), '1');
    assert.equal(url.searchParams.get('controls'), '1');
    assert.equal(url.searchParams.get('status'), '0');
    assert.equal(url.searchParams.get('token'), 't');
  });
});
