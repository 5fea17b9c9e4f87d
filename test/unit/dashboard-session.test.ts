import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { BadRequestError } from '../../src/common/index.js';
import { checkSameOrigin, DashboardSessions, sessionCookie, sessionCookieId } from '../../src/server/dashboard-session.js';
import { checkInputs } from '../../src/workflow/index.js';
import { InputsError } from '../../src/common/index.js';

const request = (method: string, headers: Record<string, string>) => ({ method, headers: { host: '127.0.0.1:3000', ...headers } }) as unknown as FastifyRequest;

test('a sign-in is good until it expires or is revoked; ids are random and unguessable', () => {
  let now = 1_000_000;
  const sessions = new DashboardSessions(60_000, () => now);
  const a = sessions.create();
  const b = sessions.create();
  assert.notEqual(a.id, b.id);
  assert.match(a.id, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(sessions.valid(a.id), true);
  assert.equal(sessions.valid('x'.repeat(43)), false);
  assert.equal(sessions.valid(null), false);
  sessions.revoke(a.id);
  assert.equal(sessions.valid(a.id), false);
  now += 60_001;
  assert.equal(sessions.valid(b.id), false, 'expired');
});

test('the cookie is HttpOnly, SameSite=Strict, for the whole site, Secure over https; clearing it expires it', () => {
  const cookie = sessionCookie({ id: 'abc', expiresAt: Date.now() + 3600_000 }, false);
  assert.match(cookie, /^domcast_session=abc; Max-Age=3(59[0-9]|600); Path=\/; HttpOnly; SameSite=Strict$/);
  assert.match(sessionCookie({ id: 'abc', expiresAt: Date.now() + 1000 }, true), /; Secure$/);
  assert.match(sessionCookie(null, false), /^domcast_session=; Max-Age=0;/);
});

test("only a well-formed id is read from the Cookie header", () => {
  const id = 'A'.repeat(43);
  assert.equal(sessionCookieId(request('GET', { cookie: `other=1; domcast_session=${id}` })), id);
  assert.equal(sessionCookieId(request('GET', { cookie: 'domcast_session=short' })), null);
  assert.equal(sessionCookieId(request('GET', {})), null);
});

test('a write with the cookie must come from our own origin; reads need not', () => {
  const refused = (method: string, headers: Record<string, string>) =>
    assert.throws(() => checkSameOrigin(request(method, headers)), (e: unknown) => e instanceof BadRequestError && e.statusCode === 403, JSON.stringify(headers));
  checkSameOrigin(request('GET', { origin: 'http://evil.example' }));
  checkSameOrigin(request('POST', { origin: 'http://127.0.0.1:3000' }));
  checkSameOrigin(request('DELETE', { 'sec-fetch-site': 'same-origin', origin: 'http://127.0.0.1:3000' }));
  checkSameOrigin(request('POST', { 'sec-fetch-site': 'same-origin' }));
  refused('POST', {});
  refused('POST', { origin: 'http://evil.example' });
  refused('POST', { origin: 'http://127.0.0.1:8080' });
  refused('POST', { origin: 'null' });
  refused('POST', { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:3000' });
  refused('POST', { 'sec-fetch-site': 'same-origin', origin: 'http://evil.example' });
});

test("a run's bad inputs are named per field, beside the unchanged message", () => {
  const workflow = {
    name: 'w',
    input_schema: [
      { name: 'user', type: 'string' as const, required: true },
      { name: 'n', type: 'number' as const, required: false },
    ],
    steps: [{ type: 'navigation' as const, url: 'http://x/{site}' }],
  };
  try {
    checkInputs(workflow as never, { n: 'two', extra: 1 });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof InputsError);
    assert.equal(err.code, 'BAD_REQUEST');
    assert.match(err.message, /^input "user" is required; steps\[0\]\.url uses \{site\} but no input "site" was given; input "n" must be a number, got string; unknown input "extra"/);
    assert.deepEqual(err.fields, { user: 'required', site: 'required (steps[0].url uses it)', n: 'must be a number', extra: 'not an input of this workflow' });
  }
});
