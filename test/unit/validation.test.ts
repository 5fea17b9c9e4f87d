import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { BadRequestError } from '../../src/common/index.js';
import { describeIssues, parseOrThrow } from '../../src/server/validation.js';
import { workflowSchema } from '../../src/workflow/index.js';

function issues(schema: z.ZodType, value: unknown): z.core.$ZodIssue[] {
  const result = schema.safeParse(value);
  assert.equal(result.success, false);
  return result.error?.issues ?? [];
}

describe('describeIssues', () => {
  test('names the path with dots for keys and brackets for indexes, after the prefix', () => {
    const wf = { name: 'w', steps: [{ type: 'wait', ms: 1 }, { type: 'wait', ms: 1 }, { type: 'navigation', url: '' }] };
    assert.equal(describeIssues(issues(workflowSchema, wf), 'workflow'), 'workflow.steps[2].url: must not be empty');
  });

  test('without a prefix the path starts at the first key', () => {
    const schema = z.object({ a: z.object({ b: z.array(z.string()) }) });
    assert.equal(describeIssues(issues(schema, { a: { b: ['x', 1] } })), 'a.b[1]: Invalid input: expected string, received number');
  });

  test('an index at the root is written in brackets with no leading dot', () => {
    const schema = z.array(z.object({ n: z.number() }));
    assert.match(describeIssues(issues(schema, [{ n: 1 }, { n: 'x' }])), /^\[1\]\.n: /);
  });

  test('an issue at the root gets the prefix alone as its path', () => {
    assert.match(describeIssues(issues(z.object({}), 'text'), 'workflow'), /^workflow: /);
  });

  test('an issue at the root with no prefix is the bare message', () => {
    const [issue] = issues(z.object({}), 'text');
    assert.ok(issue);
    assert.equal(describeIssues([issue]), issue.message);
  });

  test('several issues are joined with "; ", each with its own path', () => {
    const schema = z.object({ a: z.string(), b: z.number() });
    const text = describeIssues(issues(schema, { a: 1, b: 'x' }), 'body');
    const parts = text.split('; ');
    assert.equal(parts.length, 2);
    assert.match(parts[0] ?? '', /^body\.a: /);
    assert.match(parts[1] ?? '', /^body\.b: /);
  });
});

describe('parseOrThrow', () => {
  test('returns the parsed value, defaults applied', () => {
    const schema = z.object({ n: z.number(), flag: z.boolean().default(false) });
    assert.deepEqual(parseOrThrow(schema, { n: 1 }), { n: 1, flag: false });
  });

  test('throws a 400 BadRequestError whose message names the path', () => {
    const wf = { name: 'w', steps: [{ type: 'click', cssSelector: 5 }] };
    assert.throws(
      () => parseOrThrow(workflowSchema, wf, 'workflow'),
      (err: unknown) =>
        err instanceof BadRequestError && err.statusCode === 400 && err.message === 'workflow.steps[0].cssSelector: Invalid input: expected string, received number',
    );
  });
});
