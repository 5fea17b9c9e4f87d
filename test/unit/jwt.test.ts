import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { jwtVerify, SignJWT } from 'jose';
import { JwtError, signJwt, verifyJwt } from '../../src/server/jwt.js';

const secret = new Uint8Array(32).fill(7);
const expect = { issuer: 'domcast', audience: 'domcast-viewer' };
const now = Math.floor(Date.now() / 1000);
const claims = { scope: 'view', sub: 's1', iss: 'domcast', aud: 'domcast-viewer', iat: now, exp: now + 60 };

/** The JwtError `fn` throws (fails the test if it throws nothing or something else). */
function refusal(fn: () => unknown): JwtError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof JwtError, `not a JwtError: ${String(err)}`);
    return err;
  }
  assert.fail('the token was accepted');
}

/** `token` with its payload replaced by `payload`, signature kept (so only the signature check can catch it). */
function withPayload(token: string, payload: object): string {
  const [header, , signature] = token.split('.');
  return `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signature}`;
}

const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token over any header and payload, signed with `key` (or with no signature), as someone holding the key (or none) could make it. */
function forged(header: object, payload: object, key: Uint8Array | null = secret): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${key ? createHmac('sha256', key).update(input).digest('base64url') : ''}`;
}

describe('HS256 tokens on node:crypto', () => {
  test('ours check out with jose, and jose\'s with us, claims intact', async () => {
    const ours = signJwt(claims, secret);
    const { payload } = await jwtVerify(ours, secret, { ...expect, algorithms: ['HS256'] });
    assert.deepEqual(payload, claims);
    const theirs = await new SignJWT({ scope: 'view' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('s1').setIssuer('domcast').setAudience(['other', 'domcast-viewer']).setIssuedAt().setExpirationTime('60s').sign(secret);
    const checked = verifyJwt(theirs, secret, expect);
    assert.equal(checked.sub, 's1');
    assert.equal(checked.scope, 'view');
  });

  test('a changed payload, another key, or no signature is refused', () => {
    const ours = signJwt(claims, secret);
    assert.equal(refusal(() => verifyJwt(withPayload(ours, { ...claims, sub: 's2' }), secret, expect)).code, 'signature');
    assert.equal(refusal(() => verifyJwt(signJwt(claims, new Uint8Array(32).fill(8)), secret, expect)).code, 'signature');
    assert.equal(refusal(() => verifyJwt(forged({ alg: 'HS256', typ: 'JWT' }, claims, null), secret, expect)).code, 'signature');
  });

  test('alg none, another alg, or crit is refused even when signed with the key', () => {
    assert.equal(refusal(() => verifyJwt(forged({ alg: 'none' }, claims, null), secret, expect)).code, 'malformed');
    assert.equal(refusal(() => verifyJwt(forged({ alg: 'HS512', typ: 'JWT' }, claims), secret, expect)).code, 'malformed');
    assert.equal(refusal(() => verifyJwt(forged({ alg: 'HS256', crit: ['b64'], b64: false }, claims), secret, expect)).code, 'malformed');
  });

  test('expired, not yet valid, without exp, another issuer or audience: refused with the claim named', () => {
    assert.equal(refusal(() => verifyJwt(signJwt({ ...claims, exp: now }, secret), secret, expect)).code, 'expired');
    assert.equal(refusal(() => verifyJwt(signJwt({ ...claims, nbf: now + 30 }, secret), secret, expect)).claim, 'nbf');
    assert.equal(refusal(() => verifyJwt(signJwt({ ...claims, exp: undefined }, secret), secret, expect)).claim, 'exp');
    assert.equal(refusal(() => verifyJwt(forged({ alg: 'HS256', typ: 'JWT' }, { ...claims, exp: '9999999999' }), secret, expect)).claim, 'exp');
    assert.equal(refusal(() => verifyJwt(signJwt({ ...claims, iss: 'x' }, secret), secret, expect)).claim, 'iss');
    assert.equal(refusal(() => verifyJwt(signJwt({ ...claims, aud: 'domcast-control' }, secret), secret, expect)).claim, 'aud');
    assert.equal(refusal(() => verifyJwt(signJwt({ ...claims, sub: undefined }, secret), secret, { ...expect, required: ['sub'] })).claim, 'sub');
  });

  test('garbage is refused as malformed without throwing anything else', () => {
    for (const bad of ['', 'a.b', 'a.b.c.d', '%%.%%.%%', `${'x'.repeat(5000)}.y.z`, 'WzFd.WzFd.c2ln']) {
      assert.equal(refusal(() => verifyJwt(bad, secret, expect)).code, 'malformed', bad.slice(0, 40));
    }
    // A payload is read only once its signature matched: signed garbage is malformed, unsigned is not looked at.
    const input = `${b64({ alg: 'HS256' })}.${Buffer.from('not json').toString('base64url')}`;
    const signed = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    assert.equal(refusal(() => verifyJwt(signed, secret, expect)).code, 'malformed');
    assert.equal(refusal(() => verifyJwt(`${input}.c2ln`, secret, expect)).code, 'signature');
  });
});
