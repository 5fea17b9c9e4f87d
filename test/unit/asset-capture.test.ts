import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CDPSession } from 'playwright-core';
import { AssetCapture, type CapturedAsset, type PausedEvent } from '../../src/browser/asset-capture.js';

/** A stand-in for the browser's CDP session: bodies by requestId; records what was sent. */
function fakeCdp(bodies: Record<string, string>) {
  const sent: [string, unknown][] = [];
  const cdp = {
    send: async (method: string, params: { requestId: string }) => {
      sent.push([method, params]);
      if (method === 'Fetch.getResponseBody') {
        const b = bodies[params.requestId];
        if (b === undefined) throw new Error('No resource with given identifier found');
        return { body: Buffer.from(b).toString('base64'), base64Encoded: true };
      }
      return {};
    },
  } as unknown as CDPSession;
  return { cdp, sent };
}

const response = (requestId: string, url: string, extra: Partial<PausedEvent> = {}): PausedEvent => ({
  requestId,
  networkId: `n-${requestId}`,
  resourceType: 'Image',
  request: { url },
  responseStatusCode: 200,
  responseHeaders: [{ name: 'Content-Type', value: 'image/png' }],
  ...extra,
});

describe('AssetCapture', () => {
  test('keeps a body under every URL of its redirect chain, and always lets the response go on', async () => {
    const got: CapturedAsset[] = [];
    const capture = new AssetCapture({ maxAssetBytes: 100, maxSessionBytes: 1000 }, (a) => got.push(a));
    const { cdp, sent } = fakeCdp({ r2: 'PNG' });
    capture.noteRequest({ requestId: 'r1', networkId: 'n', resourceType: 'Image', request: { url: 'http://a.test/old.png' } });
    await capture.onResponse(cdp, response('r1', 'http://a.test/old.png', { networkId: 'n', responseStatusCode: 302 }));
    capture.noteRequest({ requestId: 'r2', networkId: 'n', resourceType: 'Image', request: { url: 'http://b.test/new.png' } });
    await capture.onResponse(cdp, response('r2', 'http://b.test/new.png', { networkId: 'n' }));
    assert.equal(got.length, 1);
    assert.deepEqual(got[0]!.urls, ['http://a.test/old.png', 'http://b.test/new.png']);
    assert.equal(got[0]!.body.toString(), 'PNG');
    assert.equal(got[0]!.contentType, 'image/png');
    assert.deepEqual(sent.filter(([m]) => m === 'Fetch.continueResponse').map(([, p]) => (p as { requestId: string }).requestId), ['r1', 'r2']);
    assert.deepEqual(capture.counts, { captured: 1, skipped: 0, bytes: 3, skipped_by_reason: {} });
  });

  test('skips and counts what is too large, failed, or past the run\'s limit; never reads a body it will not keep', async () => {
    const got: CapturedAsset[] = [];
    const capture = new AssetCapture({ maxAssetBytes: 10, maxSessionBytes: 15 }, (a) => got.push(a));
    const { cdp, sent } = fakeCdp({ a: '0123456789', b: '0123456789', big: 'x'.repeat(11), gone: undefined as unknown as string });
    await capture.onResponse(cdp, response('declared', 'http://a.test/d.png', { responseHeaders: [{ name: 'content-length', value: '5000' }] }));
    await capture.onResponse(cdp, response('big', 'http://a.test/big.png'));
    await capture.onResponse(cdp, response('404', 'http://a.test/missing.png', { responseStatusCode: 404 }));
    await capture.onResponse(cdp, response('gone', 'http://a.test/gone.png'));
    await capture.onResponse(cdp, response('a', 'http://a.test/a.png'));
    await capture.onResponse(cdp, response('b', 'http://a.test/b.png'));
    assert.deepEqual(got.map((g) => g.urls[0]), ['http://a.test/a.png']);
    assert.equal(capture.counts.captured, 1);
    assert.equal(capture.counts.skipped, 5);
    assert.deepEqual(capture.counts.skipped_by_reason, {
      'larger than the asset limit': 2,
      'HTTP 404': 1,
      'the browser could not give the body': 1,
      "over the run's asset limit": 1,
    });
    assert.ok(!sent.some(([m, p]) => m === 'Fetch.getResponseBody' && (p as { requestId: string }).requestId === 'declared'), 'a declared oversize body is never read');
    assert.equal(sent.filter(([m]) => m === 'Fetch.continueResponse').length, 6, 'every response goes on');
  });

  test('an Other response is kept only when it is an image, a stylesheet or a font (an SVG sprite), and a sink that throws holds nothing up', async () => {
    const capture = new AssetCapture({ maxAssetBytes: 100, maxSessionBytes: 1000 }, () => {
      throw new Error('store down');
    });
    const { cdp, sent } = fakeCdp({ svg: '<svg/>', json: '{}' });
    await assert.doesNotReject(capture.onResponse(cdp, response('svg', 'http://a.test/s.svg', { resourceType: 'Other', responseHeaders: [{ name: 'content-type', value: 'image/svg+xml' }] })));
    await capture.onResponse(cdp, response('json', 'http://a.test/m.json', { resourceType: 'Other', responseHeaders: [{ name: 'content-type', value: 'application/json' }] }));
    assert.equal(capture.counts.captured, 1);
    assert.equal(sent.filter(([m]) => m === 'Fetch.continueResponse').length, 2);
  });
});
