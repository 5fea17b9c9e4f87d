import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { assetCookie, assetCookieToken } from '../../src/server/asset-cookie.js';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzIn0.c2lnbmF0dXJl';
const request = (cookie?: string) => ({ headers: cookie === undefined ? {} : { cookie } }) as FastifyRequest;

describe('the asset cookie', () => {
  test('over http it is Strict, HttpOnly, scoped to the session, and lives as long as the token', () => {
    const cookie = assetCookie('s 1', TOKEN, Date.now() + 600_500, false);
    assert.equal(cookie, `domcast_assets=${TOKEN}; Path=/workflows/visual/s%201/assets/; Max-Age=600; HttpOnly; SameSite=Strict`);
  });

  test('over https it also works in a viewer embedded in another site: SameSite=None, Secure, Partitioned', () => {
    const cookie = assetCookie('s', TOKEN, Date.now() + 60_000, true) ?? '';
    assert.match(cookie, /; HttpOnly; SameSite=None; Secure; Partitioned$/);
  });

  test('an expired token makes a cookie that is gone at once, and a token that is not a compact JWT makes none', () => {
    assert.match(assetCookie('s', TOKEN, Date.now() - 5000, false) ?? '', /Max-Age=0;/);
    assert.equal(assetCookie('s', `${TOKEN}; Domain=evil.test`, Date.now() + 60_000, false), null);
  });

  test('the token is read back from among other cookies', () => {
    assert.equal(assetCookieToken(request(`a=1; domcast_assets=${TOKEN}; b=2`)), TOKEN);
    assert.equal(assetCookieToken(request('domcast_assets=; other=x')), null);
    assert.equal(assetCookieToken(request('xdomcast_assets=nope')), null);
    assert.equal(assetCookieToken(request()), null);
  });
});
