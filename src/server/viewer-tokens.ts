import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { visualPath } from '../protocol/index.js';
import type { Config } from './config.js';
import { JwtError, signJwt, verifyJwt } from './jwt.js';

const ISSUER = 'domcast';
const AUDIENCE = 'domcast-viewer';
/** The only thing a viewer token allows: watching (and reading the record of) one session. */
const SCOPE = 'view';
const SECRET_FILE = 'viewer-token.key';
/** Control tokens (take control, issue 16): another audience and scope, so neither kind passes for the other. */
const CONTROL_AUDIENCE = 'domcast-control';
const CONTROL_SCOPE = 'control';

/** A control token that checked out: its id (`jti`, granted and revocable per run) and expiry (ms since the epoch). */
export type ControlGrant = { ok: true; jti: string; expiresAt: number } | { ok: false; reason: string };

export type TokenCheck = { ok: true } | { ok: false; reason: string };
/** A token that checked out, and when it stops working (ms since the epoch). */
export type TokenGrant = { ok: true; expiresAt: number } | { ok: false; reason: string };

/**
 * Signed, expiring, read-only links to one session (HS256 JWTs, `sub` = session id).
 * Holding one lets you watch that session and fetch its recording and screenshots, nothing else.
 */
export class ViewerTokens {
  constructor(
    private readonly secret: Uint8Array,
    readonly ttlSeconds: number,
  ) {}

  /** A token for one session, for `ttlSeconds` (VIEWER_TOKEN_TTL unless a caller chose a lifetime). */
  issue(sessionId: string, ttlSeconds = this.ttlSeconds): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    return Promise.resolve(signJwt({ scope: SCOPE, sub: sessionId, iss: ISSUER, aud: AUDIENCE, iat, exp: iat + ttlSeconds }, this.secret));
  }

  /** A session's viewer page and stream URLs on `httpBase` / `wsBase`, carrying a fresh token, and when it expires. */
  async links(sessionId: string, httpBase: string, wsBase: string, ttlSeconds = this.ttlSeconds): Promise<{ viewerUrl: string; streamUrl: string; expiresAt: Date }> {
    const query = `?token=${encodeURIComponent(await this.issue(sessionId, ttlSeconds))}`;
    const path = visualPath(sessionId);
    return { viewerUrl: `${httpBase}${path}/viewer${query}`, streamUrl: `${wsBase}${path}${query}`, expiresAt: new Date(Date.now() + ttlSeconds * 1000) };
  }

  async verify(token: string | null | undefined, sessionId: string): Promise<TokenCheck> {
    const grant = await this.grant(token, sessionId);
    return grant.ok ? { ok: true } : grant;
  }

  /** As verify, with the token's expiry (a cookie that carries it lives no longer). */
  grant(token: string | null | undefined, sessionId: string): Promise<TokenGrant> {
    return Promise.resolve(this.grantNow(token, sessionId));
  }

  /** The check itself: an HMAC on the event loop (src/server/jwt.ts), nothing waited for. */
  private grantNow(token: string | null | undefined, sessionId: string): TokenGrant {
    if (!token) return { ok: false, reason: 'a viewer token is required (use the viewer_url or visual_stream_url the API gave you)' };
    try {
      // `exp` is always required (a token minted without one, by a bug or a leaked key used by
      // hand, would never expire), and `sub` too, since it names the session.
      const payload = verifyJwt(token, this.secret, { issuer: ISSUER, audience: AUDIENCE, required: ['sub'] });
      if (payload.scope !== SCOPE) return { ok: false, reason: 'this token does not allow viewing' };
      if (payload.sub !== sessionId) return { ok: false, reason: 'this viewer token is for another session' };
      return { ok: true, expiresAt: (payload.exp ?? 0) * 1000 };
    } catch (err) {
      if (err instanceof JwtError && err.code === 'expired') return { ok: false, reason: 'this viewer link has expired; ask for a new one' };
      return { ok: false, reason: 'invalid viewer token' };
    }
  }

  /** A control token for one session (scope `control`, a fresh `jti`), living `ttlSeconds`. */
  issueControl(sessionId: string, ttlSeconds: number): Promise<{ token: string; jti: string; expiresAt: number }> {
    const jti = randomUUID();
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + ttlSeconds;
    const token = signJwt({ scope: CONTROL_SCOPE, sub: sessionId, iss: ISSUER, aud: CONTROL_AUDIENCE, jti, iat, exp }, this.secret);
    return Promise.resolve({ token, jti, expiresAt: exp * 1000 });
  }

  /** Checks a control token's signature, scope, session and expiry (whether it was revoked is the run's to say). */
  verifyControl(token: string | null | undefined, sessionId: string): Promise<ControlGrant> {
    return Promise.resolve(this.verifyControlNow(token, sessionId));
  }

  private verifyControlNow(token: string | null | undefined, sessionId: string): ControlGrant {
    if (!token) return { ok: false, reason: 'a control token is required (POST /workflows/{id}/control gives one)' };
    try {
      const payload = verifyJwt(token, this.secret, { issuer: ISSUER, audience: CONTROL_AUDIENCE, required: ['sub'] });
      if (payload.scope !== CONTROL_SCOPE || typeof payload.jti !== 'string' || !payload.jti) return { ok: false, reason: 'this token does not allow control' };
      if (payload.sub !== sessionId) return { ok: false, reason: 'this control token is for another session' };
      return { ok: true, jti: payload.jti, expiresAt: (payload.exp ?? 0) * 1000 };
    } catch (err) {
      if (err instanceof JwtError && err.code === 'expired') return { ok: false, reason: 'this control link has expired' };
      if (err instanceof JwtError && err.claim === 'aud') return { ok: false, reason: 'this token does not allow control (a viewer link only watches)' };
      return { ok: false, reason: 'invalid control token' };
    }
  }
}

/**
 * VIEWER_TOKEN_SECRET if set; otherwise a key kept in the data folder, so links survive a restart
 * (the recordings they point to do); without recordings, a key for this process only.
 */
export function viewerTokenSecret(config: Config): Uint8Array {
  if (config.viewerTokenSecret) return new TextEncoder().encode(config.viewerTokenSecret);
  if (!config.recordings) return randomBytes(32);
  const file = join(config.dataDir, SECRET_FILE);
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
    if (key.length >= 32) {
      // A key file made by hand, or copied with its mode lost, is tightened: it signs every link.
      chmodSync(file, 0o600);
      return key;
    }
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('base64url')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return key;
}
