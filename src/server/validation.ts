import type { FastifySchemaCompiler } from 'fastify';
import type { z } from 'zod';
import { BadRequestError } from '../common/index.js';

/** One line per problem, each naming where it is: `workflow.steps[2].url: must not be empty`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string {
  return issues
    .map((i) => {
      const path = i.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), prefix);
      return path ? `${path}: ${i.message}` : i.message;
    })
    .join('; ');
}

/** Parses at the edge: the value's type flows from the schema, a failure is a 400 that says what is wrong. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new BadRequestError(describeIssues(result.error.issues, prefix));
  return result.data;
}

/**
 * Fastify's validator for zod route schemas (params, querystring, body): a failure is the same
 * 400 `{error, code}` as parseOrThrow's, naming each field (`workflow.steps[2].url: …`).
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema }) =>
  (data) => {
    const result = schema.safeParse(data);
    return result.success ? { value: result.data } : { error: new BadRequestError(describeIssues(result.error.issues)) };
  };
