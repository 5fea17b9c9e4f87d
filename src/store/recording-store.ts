/** What the store keeps about a session (the event log is kept apart, in chunks). */
export interface StoredSession {
  id: string;
  workflow: string;
  inputs: Record<string, unknown>;
  status: string;
  error: string | null;
  visual: boolean;
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  steps: unknown[];
  outputs: Record<string, unknown>;
  eventCount: number;
  byteCount: number;
  /** The rest of what GET /workflows/{id} reports; absent in rows written before it was kept. */
  detail?: SessionDetail;
}

/** What the API reports of a run beyond the columns, kept so a run reads the same after a restart. */
export interface SessionDetail {
  currentStep: number | null;
  lastSeq: number;
  latency: { average: number | null; p95: number | null };
  refusedRequests: number;
  recordingStopped: string | null;
  assets: { captured: number; skipped: number; bytes: number; skipped_by_reason: Record<string, number> } | null;
}

export interface ListQuery {
  status?: string | undefined;
  /** Runs of the workflow with this name only. */
  workflow?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

export interface PruneOptions {
  maxAgeMs?: number | undefined;
  maxBytes?: number | undefined;
  isLive: (id: string) => boolean;
  isKnown?: (id: string) => boolean;
}

/**
 * The recordings store, whichever database holds it (SQLite by default, PostgreSQL with
 * DOMCAST_DATABASE_URL). Writes on the hot path (`append`, `saveSession`, `saveScreenshot`) only
 * queue and return at once; `flush()` writes the queue. Everything that reads, and the writes a
 * caller waits for (an asset a viewer may ask for next, a delete), returns a Promise.
 */
export interface RecordingStore {
  /** Where the recordings are, for messages: the SQLite file, or PostgreSQL's host:port/database (never a password). */
  readonly location: string;
  /** Sessions found unfinished at open (a previous process died while they ran); known once `open()` resolved. */
  readonly interrupted: number;
  /** Events written so far by this process. */
  readonly eventsWritten: number;
  /** Connects and brings the schema up to date; rejects with a StoreError that says what is wrong. */
  open(): Promise<void>;
  /** Queues events for writing; returns at once. */
  append(sessionId: string, from: number, events: readonly string[]): void;
  /** Queues a metadata update (the newest wins). */
  saveSession(session: StoredSession): void;
  /** Queues a step's PNG (a screenshot step, or the page when the step failed). */
  saveScreenshot(sessionId: string, step: number, png: Buffer): void;
  /** Queues a whole recording (`domcast replay` of a file). */
  importRecording(session: StoredSession, events: readonly string[]): void;
  /** Writes everything queued so far; concurrent callers share one write. */
  flush(): Promise<void>;
  get(id: string): Promise<StoredSession | undefined>;
  /** Newest first; the cursor is opaque (the last row's position). */
  list(q: ListQuery): Promise<{ sessions: StoredSession[]; nextCursor: string | null }>;
  screenshot(sessionId: string, step: number): Promise<Buffer | undefined>;
  /** The recorded events of a session, chunk by chunk, each as JSON text of an array. */
  eventChunks(id: string): AsyncGenerator<string>;
  /** The whole recording as the text of one JSON array of rrweb events, in pieces (for streaming). */
  eventsJson(id: string): AsyncGenerator<string>;
  /**
   * Keeps a body the run's browser received for `url`: once, whatever the number of URLs and
   * sessions it came from (content-addressed by SHA-256), and the session's URL now stands for it.
   * Written at once, not behind the queue: a viewer may ask for it a moment later. A body the URL
   * stood for before, that no session uses any more, is deleted.
   */
  putAsset(sessionId: string, url: string, contentType: string, body: Buffer): Promise<{ hash: string; isNew: boolean }>;
  /** The hash of the body a session's URL stands for, if it was captured. */
  assetHash(sessionId: string, url: string): Promise<string | undefined>;
  /**
   * A body, only to a session that captured it: one stored once for several sessions is not
   * served to a session that did not, so a hash seen elsewhere opens nothing.
   */
  assetBody(sessionId: string, hash: string): Promise<{ contentType: string; body: Buffer } | undefined>;
  /** A session's captured URLs and the bytes of their bodies (a body shared with other sessions counts for each). */
  sessionAssetStats(sessionId: string): Promise<{ count: number; bytes: number }>;
  /** Removes a session, its events, screenshots and the asset bodies no other session uses. */
  delete(id: string): Promise<boolean>;
  /** Bytes the recordings take, as DOMCAST_MAX_STORE_MB counts them. */
  sizeBytes(): Promise<number>;
  /**
   * Removes finished sessions, oldest first: those ended more than `maxAgeMs` ago, then more
   * until the store (captured assets included) is under `maxBytes`. Sessions still running are
   * never removed. First, captured assets of sessions neither on record nor `isKnown` (by default
   * `isLive`) are deleted: runs not kept (DOMCAST_RECORDINGS=false) once the server forgets them,
   * and runs of a previous process that died before their record was written.
   */
  prune(options: PruneOptions): Promise<string[]>;
  /** Writes what is queued and closes the database. */
  close(): Promise<void>;
}
