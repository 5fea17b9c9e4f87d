import type { Readable } from 'node:stream';
import { z } from 'zod';

/**
 * Schemas shared by routes. A response schema also shapes the answer: fields it does not name
 * are dropped, so an open shape (a workflow's steps, a run's inputs and outputs) is a loose object.
 */

/** Every error: a message that names what was wrong, and a stable code. */
export const errorBody = z
  .object({
    error: z.string().describe('What was wrong; a 400 names each field (`workflow.steps[2].url: must not be empty`).'),
    code: z.string().describe('BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, SESSION_RUNNING, RATE_LIMITED, SHUTTING_DOWN, …'),
    fields: z.record(z.string(), z.string()).optional().describe("A run's bad inputs, by input name: what is wrong with each (`required`, `must be a number`, …)."),
  })
  .meta({ id: 'Error' });

/** The error answers every route may give (a 4xx for the caller's mistake, a 5xx for ours). */
export const errors = { '4xx': errorBody, '5xx': errorBody } as const;

export const sessionParams = z.object({ id: z.string().min(1).max(200).describe('The session id (session_id).') });

/** A viewer token, for routes a viewer link may call (read by the access hook, checked there). */
export const viewerTokenQuery = z.object({
  token: z.string().optional().describe('A viewer token for this session (from viewer_url), instead of the API key.'),
});

/** A run's status; `imported` is a recording loaded by `domcast replay`, not run here. */
export const sessionStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'imported']);

export const isoTime = z.string().describe('ISO 8601 time (UTC).');

/**
 * A body that is not JSON (a PNG, HTML, a script), sent as a Buffer, a string or a stream: fastify serializes
 * neither, so the schema is for the document (and the handler's type) only.
 */
export const binary = (description: string, type: string) => ({
  description,
  content: { [type]: { schema: z.string().meta({ format: 'binary' }) as unknown as z.ZodType<Buffer | string | Readable> } },
});
