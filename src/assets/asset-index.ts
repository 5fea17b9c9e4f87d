/** What the index needs of the store (SqliteStore has it). */
export interface AssetStore {
  putAsset(sessionId: string, url: string, contentType: string, body: Buffer): { hash: string; isNew: boolean };
  assetHash(sessionId: string, url: string): string | undefined;
  assetBody(sessionId: string, hash: string): { contentType: string; body: Buffer } | undefined;
  sessionAssetStats(sessionId: string): { count: number; bytes: number };
}

/**
 * Requests waiting for a URL to be captured, in all. Each holds a socket and a timer for up to its
 * timeout; past this, a request is answered at once with what is there (nothing).
 */
export const MAX_WAITERS = 1024;

type Waiter = (hash: string | undefined) => void;

/**
 * The captured bodies of every session, as the server sees them: the store keeps them, this also
 * tells a request waiting for a URL the moment its body lands (a viewer can ask for an asset a
 * moment before the run's browser has handed it over).
 */
export class AssetIndex {
  private readonly waiting = new Map<string, Set<Waiter>>();
  private waiters = 0;

  constructor(
    private readonly store: AssetStore,
    private readonly maxWaiters = MAX_WAITERS,
  ) {}

  put(sessionId: string, url: string, contentType: string, body: Buffer): { hash: string; isNew: boolean } {
    const put = this.store.putAsset(sessionId, url, contentType, body);
    const key = waitKey(sessionId, url);
    const waiters = this.waiting.get(key);
    if (waiters) {
      this.waiting.delete(key);
      for (const wake of waiters) wake(put.hash);
    }
    return put;
  }

  lookup(sessionId: string, url: string): string | undefined {
    return this.store.assetHash(sessionId, url);
  }

  /** The URL's hash once it is captured, or undefined after `timeoutMs`, on `signal`, or at once when too many wait already. */
  waitFor(sessionId: string, url: string, timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    const now = this.lookup(sessionId, url);
    if (now !== undefined || timeoutMs <= 0 || signal?.aborted || this.waiters >= this.maxWaiters) return Promise.resolve(now);
    const key = waitKey(sessionId, url);
    return new Promise((resolve) => {
      const wake: Waiter = (hash) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters--;
        resolve(hash);
      };
      const giveUp = () => {
        const set = this.waiting.get(key);
        set?.delete(wake);
        if (set?.size === 0) this.waiting.delete(key);
        wake(undefined);
      };
      const onAbort = () => giveUp();
      const timer = setTimeout(giveUp, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters++;
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      set.add(wake);
    });
  }

  /** A body, only to a session that captured it (see SqliteStore.assetBody). */
  body(sessionId: string, hash: string): { contentType: string; body: Buffer } | undefined {
    return this.store.assetBody(sessionId, hash);
  }

  stats(sessionId: string): { count: number; bytes: number } {
    return this.store.sessionAssetStats(sessionId);
  }

  /** Requests waiting for a capture now. */
  get waitingCount(): number {
    return this.waiters;
  }
}

const waitKey = (sessionId: string, url: string) => `${sessionId.length}:${sessionId}${url}`;
