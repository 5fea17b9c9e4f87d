/**
 * The dashboard talks to the same API as everyone else, on this origin: the sign-in cookie goes
 * with every request (same-origin), the key never does. Paths are relative, so a proxy may mount us under a path.
 */

export interface StepView {
  index: number;
  type: string;
  description: string | null;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
  durationMs?: number;
  error?: string;
}

export interface SessionView {
  session_id: string;
  workflow: string;
  inputs: Record<string, unknown>;
  status: string;
  error: string | null;
  visual_enabled: boolean;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  duration_ms: number | null;
  current_step: number | null;
  failure: { step: number; type: string; description: string | null; selector: string | null; reason: string | null; screenshot_url: string | null } | null;
  steps: StepView[];
  outputs: Record<string, unknown>;
  viewers?: number;
  events: { total: number; bytes: number };
}

export interface InputSpec {
  name: string;
  type?: string;
  required?: boolean;
  format?: string;
}

export interface StoredWorkflow {
  name: string;
  title: string | null;
  description: string | null;
  input_schema: InputSpec[];
  error?: string;
}

export interface Links {
  viewer_url: string | null;
  visual_stream_url: string | null;
}

/** An answer that was not a 2xx: its message, code and, for a run's inputs, a message per field. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Called on a 401: the sign-in ran out (or the key changed). */
let onUnauthorized: (message: string) => void = () => {};
export function whenUnauthorized(f: (message: string) => void): void {
  onUnauthorized = f;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status === 204) return undefined as T;
  const answer = (await res.json().catch(() => ({}))) as { error?: string; code?: string; fields?: Record<string, string> };
  if (!res.ok) {
    const err = new ApiError(res.status, answer.error ?? `${method} ${path}: HTTP ${res.status}`, answer.code ?? 'HTTP', answer.fields);
    if (res.status === 401 && !path.startsWith('dashboard/')) onUnauthorized(err.message);
    throw err;
  }
  return answer as T;
}

export const sessionPath = (id: string, rest = ''): string => `workflows/${encodeURIComponent(id)}${rest}`;
