import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HS256 JSON Web Tokens (RFC 7519), signed and checked synchronously with node:crypto.
 *
 * Why not jose: its HMAC goes through WebCrypto, whose work waits its turn in libuv's thread pool
 * behind the hub's compression, so checking a viewer's token took 1 to 47 ms on a busy server, in
 * the path of every viewer that opens (issue 15, late join). An HMAC of a few hundred bytes takes
 * microseconds on the event loop. The format is the same: jose's tokens check here and ours there
 * (test/unit/jwt.test.ts).
 */

export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  [claim: string]: unknown;
}

/** Why a token did not check out: `expired` is the one callers tell apart (a fresh link helps). */
export class JwtError extends Error {
  constructor(
    readonly code: 'malformed' | 'signature' | 'expired' | 'claim',
    message: string,
    /** With `claim`: which claim was wrong or missing. */
    readonly claim?: string,
  ) {
    super(message);
  }
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
/** A token longer than this is refused before any work: ours are about 250 characters. */
const MAX_TOKEN_CHARS = 4096;

const mac = (secret: Uint8Array, input: string): Buffer => createHmac('sha256', secret).update(input).digest();

/** A signed token carrying `claims`, as jose's `SignJWT` with `alg: HS256, typ: JWT` makes it. */
export function signJwt(claims: JwtClaims, secret: Uint8Array): string {
  const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${mac(secret, input).toString('base64url')}`;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodePart(part: string, what: string): Record<string, unknown> {
  if (!B64URL.test(part)) throw new JwtError('malformed', `the token's ${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new JwtError('malformed', `the token's ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtError('malformed', `the token's ${what} is not an object`);
  return value as Record<string, unknown>;
}

/**
 * The claims of `token` once its HS256 signature, `iss`, `aud`, `exp` and `nbf` check out; `exp`
 * and each of `required` must be present. Throws JwtError otherwise. Times are in seconds since the
 * epoch, compared with `now` (ms) without tolerance, as jose does by default.
 */
export function verifyJwt(token: string, secret: Uint8Array, expect: { issuer: string; audience: string; required?: readonly string[]; now?: number }): JwtClaims {
  if (token.length > MAX_TOKEN_CHARS) throw new JwtError('malformed', 'the token is too long');
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError('malformed', 'a token has three parts');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodePart(headerPart, 'header');
  // Only HS256: `none` or an asymmetric alg would be a downgrade, `crit` a feature we do not have.
  if (header.alg !== 'HS256') throw new JwtError('malformed', `the token's alg is ${String(header.alg)}, not HS256`);
  if ('crit' in header) throw new JwtError('malformed', 'the token has critical header parameters');
  if (!B64URL.test(signaturePart)) throw new JwtError('malformed', "the token's signature is not base64url");
  const expected = mac(secret, `${headerPart}.${payloadPart}`);
  const given = Buffer.from(signaturePart, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new JwtError('signature', 'the signature does not match');
  const claims = decodePart(payloadPart, 'payload') as JwtClaims;
  const now = Math.floor((expect.now ?? Date.now()) / 1000);
  for (const name of new Set(['exp', ...(expect.required ?? [])])) {
    if (claims[name] === undefined) throw new JwtError('claim', `the token has no "${name}" claim`, name);
  }
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    if (claims[name] !== undefined && (typeof claims[name] !== 'number' || !Number.isFinite(claims[name]))) throw new JwtError('claim', `the token's "${name}" is not a number`, name);
  }
  if (claims.exp! <= now) throw new JwtError('expired', 'the token has expired', 'exp');
  if (claims.nbf !== undefined && claims.nbf > now) throw new JwtError('claim', 'the token is not valid yet', 'nbf');
  if (claims.iss !== expect.issuer) throw new JwtError('claim', 'the token has another issuer', 'iss');
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!audiences.includes(expect.audience)) throw new JwtError('claim', 'the token is for another audience', 'aud');
  return claims;
}
