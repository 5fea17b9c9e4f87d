/** What the index needs of the store (every RecordingStore has it). */
export interface AssetStore {
  putAsset(sessionId: string, url: string, contentType: string, body: Buffer): Promise<{ hash: string; isNew: boolean }>;
  assetHash(sessionId: string, url: string): Promise<string | undefined>;
  assetBody(sessionId: string, hash: string): Promise<{ contentType: string; body: Buffer } | undefined>;
  sessionAssetStats(sessionId: string): Promise<{ count: number; bytes: number }>;
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

  async put(sessionId: string, url: string, contentType: string, body: Buffer): Promise<{ hash: string; isNew: boolean }> {
    const put = await this.store.putAsset(sessionId, url, contentType, body);
    const key = waitKey(sessionId, url);
    for (const wake of [...(this.waiting.get(key) ?? [])]) wake(put.hash);
    return put;
  }

  lookup(sessionId: string, url: string): Promise<string | undefined> {
    return this.store.assetHash(sessionId, url);
  }

  /** The URL's hash once it is captured, or undefined after `timeoutMs`, on `signal`, or at once when too many wait already. */
  waitFor(sessionId: string, url: string, timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    if (timeoutMs <= 0 || signal?.aborted || this.waiters >= this.maxWaiters) return this.lookup(sessionId, url);
    const key = waitKey(sessionId, url);
    return new Promise((resolve, reject) => {
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      const waiting = set;
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', giveUp);
        this.waiters--;
        waiting.delete(wake);
        if (waiting.size === 0 && this.waiting.get(key) === waiting) this.waiting.delete(key);
      };
      const wake: Waiter = (hash) => {
        leave();
        resolve(hash);
      };
      const giveUp = () => wake(undefined);
      const timer = setTimeout(giveUp, timeoutMs);
      signal?.addEventListener('abort', giveUp, { once: true });
      this.waiters++;
      waiting.add(wake);
      // Waiting first, then looking: a capture that lands while the store is asked still wakes us.
      this.lookup(sessionId, url).then(
        (now) => {
          if (now !== undefined && waiting.has(wake)) wake(now);
        },
        (err: unknown) => {
          if (!waiting.has(wake)) return;
          leave();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** A body, only to a session that captured it (see RecordingStore.assetBody). */
  body(sessionId: string, hash: string): Promise<{ contentType: string; body: Buffer } | undefined> {
    return this.store.assetBody(sessionId, hash);
  }

  stats(sessionId: string): Promise<{ count: number; bytes: number }> {
    return this.store.sessionAssetStats(sessionId);
  }

  /** Requests waiting for a capture now. */
  get waitingCount(): number {
    return this.waiters;
  }
}

const waitKey = (sessionId: string, url: string) => `${sessionId.length}:${sessionId}${url}`;
