import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { ViewerTokens } from '../../src/server/viewer-tokens.js';

const secret = new Uint8Array(32).fill(3);

/** A token as ours are, signed with the right key, minus whatever `omit` leaves out. */
function token(omit: { exp?: boolean; sub?: boolean } = {}): Promise<string> {
  let jwt = new SignJWT({ scope: 'view' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuer('domcast').setAudience('domcast-viewer').setIssuedAt();
  if (!omit.sub) jwt = jwt.setSubject('s1');
  if (!omit.exp) jwt = jwt.setExpirationTime('60s');
  return jwt.sign(secret);
}

describe('viewer tokens', () => {
  test('a token signed with the right key is accepted (so the refusals below are for what they lack)', async () => {
    assert.deepEqual(await new ViewerTokens(secret, 60).verify(await token(), 's1'), { ok: true });
  });

  test('a token signed with the right key but without exp is refused: it would never expire', async () => {
    assert.deepEqual(await new ViewerTokens(secret, 60).verify(await token({ exp: true }), 's1'), { ok: false, reason: 'invalid viewer token' });
  });

  test('a token without sub is refused', async () => {
    assert.deepEqual(await new ViewerTokens(secret, 60).verify(await token({ sub: true }), 's1'), { ok: false, reason: 'invalid viewer token' });
  });

  test('the tokens we issue carry exp at the configured TTL', async () => {
    const issued = await new ViewerTokens(secret, 90).issue('s1');
    const payload = JSON.parse(Buffer.from(issued.split('.')[1]!, 'base64url').toString()) as { exp?: number; iat?: number };
    assert.equal(payload.exp! - payload.iat!, 90);
  });
});
