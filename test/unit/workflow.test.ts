import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { z } from 'zod';
import { BadRequestError } from '../../src/common/index.js';
import { prepareWorkflow, workflowSchema, type InputValue, type Workflow } from '../../src/workflow/index.js';

/** A file as workflow-use writes it: recorder extras such as timestamp, tabId, frameUrl on each step. */
const workflowUseFile = {
  workflow_analysis: 'Searches the catalogue.',
  name: 'Search catalogue',
  description: 'Opens the site and searches.',
  version: '1.0',
  input_schema: [
    { name: 'query', type: 'string', required: true },
    { name: 'limit', type: 'number', required: false },
  ],
  steps: [
    { type: 'navigation', url: 'https://shop.example/', timestamp: 1718000000000, tabId: 1, description: 'Open the shop', output: null },
    {
      type: 'click',
      cssSelector: 'input#search',
      xpath: 'id("search")',
      elementTag: 'INPUT',
      elementText: '',
      timestamp: 1718000001000,
      tabId: 1,
      frameUrl: 'https://shop.example/',
      description: null,
    },
    { type: 'input', cssSelector: 'input#search', value: '{query}', xpath: null, elementTag: 'INPUT', timestamp: 1718000002000, tabId: 1 },
    { type: 'key_press', cssSelector: 'input#search', key: 'Enter', timestamp: 1718000003000, tabId: 1 },
    { type: 'wait', ms: 500 },
  ],
};

function issuesOf(value: unknown): z.core.$ZodIssue[] {
  const result = workflowSchema.safeParse(value);
  assert.equal(result.success, false, 'expected the workflow to be refused');
  return result.error?.issues ?? [];
}

function parse(value: unknown): Workflow {
  return workflowSchema.parse(value);
}

const minimal = (steps: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'w', steps, ...extra });

describe('workflowSchema', () => {
  test('a workflow-use style file parses', () => {
    const wf = parse(workflowUseFile);
    assert.equal(wf.name, 'Search catalogue');
    assert.deepEqual(wf.steps.map((s) => s.type), ['navigation', 'click', 'input', 'key_press', 'wait']);
    assert.equal(wf.input_schema.length, 2);
  });

  test('unknown extra step fields are kept as they are', () => {
    const step = parse(workflowUseFile).steps[1] as Record<string, unknown>;
    assert.equal(step.timestamp, 1718000001000);
    assert.equal(step.tabId, 1);
    assert.equal(step.frameUrl, 'https://shop.example/');
  });

  test('unknown extra top-level fields are kept', () => {
    const wf = parse(workflowUseFile) as Record<string, unknown>;
    assert.equal(wf.workflow_analysis, 'Searches the catalogue.');
  });

  test('description, version and input_schema get defaults', () => {
    const wf = parse(minimal([{ type: 'wait', ms: 1 }]));
    assert.equal(wf.description, '');
    assert.equal(wf.version, '1.0');
    assert.deepEqual(wf.input_schema, []);
  });

  test('a workflow without steps is refused at the steps path', () => {
    const issues = issuesOf({ name: 'w' });
    assert.deepEqual(issues.map((i) => i.path), [['steps']]);
  });

  test('a workflow with an empty steps list is refused', () => {
    const issues = issuesOf(minimal([]));
    assert.deepEqual(issues[0]?.path, ['steps']);
    assert.equal(issues[0]?.message, 'a workflow needs at least one step');
  });

  test('a workflow without a name is refused', () => {
    const issues = issuesOf({ name: '', steps: [{ type: 'wait', ms: 1 }] });
    assert.deepEqual(issues[0]?.path, ['name']);
  });

  test('an unknown step type is refused with a message listing the supported types', () => {
    const issues = issuesOf(minimal([{ type: 'wait', ms: 1 }, { type: 'hover', cssSelector: 'a' }]));
    assert.deepEqual(issues[0]?.path, ['steps', 1, 'type']);
    assert.match(issues[0]?.message ?? '', /unknown step type "hover"/);
    for (const type of ['navigation', 'click', 'input', 'key_press', 'wait']) assert.match(issues[0]?.message ?? '', new RegExp(type));
  });

  test('a step without a type is refused as an unknown step type', () => {
    const issues = issuesOf(minimal([{ url: 'https://x.test' }]));
    assert.match(issues[0]?.message ?? '', /unknown step type/);
  });

  test('an agent step is refused: it needs a language model domcast does not run', () => {
    const issues = issuesOf(minimal([{ type: 'agent', task: 'find the cheapest flight' }]));
    assert.match(issues[0]?.message ?? '', /step type "agent" needs a language model/);
  });

  test('a select_change step without selectedText is refused at that field', () => {
    const issues = issuesOf(minimal([{ type: 'select_change', cssSelector: 'select#size' }]));
    assert.deepEqual(issues[0]?.path, ['steps', 0, 'selectedText']);
  });

  test('scroll, extract_page_content and screenshot steps parse', () => {
    const w = workflowSchema.parse(
      minimal([
        { type: 'scroll', scrollX: 0, scrollY: 400 },
        { type: 'extract_page_content', goal: 'the price', output: 'price' },
        { type: 'screenshot', output: 'shot' },
      ]),
    );
    assert.deepEqual(w.steps.map((s) => s.type), ['scroll', 'extract_page_content', 'screenshot']);
  });

  test('a navigation step with an empty url is refused at that url', () => {
    const issues = issuesOf(minimal([{ type: 'navigation', url: '' }]));
    assert.deepEqual(issues[0]?.path, ['steps', 0, 'url']);
    assert.equal(issues[0]?.message, 'must not be empty');
  });

  test('a click step needs a cssSelector', () => {
    const issues = issuesOf(minimal([{ type: 'click' }]));
    assert.deepEqual(issues[0]?.path, ['steps', 0, 'cssSelector']);
  });

  test('a wait step needs cssSelector or ms', () => {
    const issues = issuesOf(minimal([{ type: 'wait' }]));
    assert.equal(issues[0]?.message, 'a wait step needs cssSelector or ms');
    assert.ok(workflowSchema.safeParse(minimal([{ type: 'wait', cssSelector: '#done' }])).success);
  });

  test('a step timeout must be a positive whole number', () => {
    assert.deepEqual(issuesOf(minimal([{ type: 'click', cssSelector: 'a', timeoutMs: 0 }]))[0]?.path, ['steps', 0, 'timeoutMs']);
    assert.deepEqual(issuesOf(minimal([{ type: 'click', cssSelector: 'a', timeoutMs: 1.5 }]))[0]?.path, ['steps', 0, 'timeoutMs']);
  });

  test('an input_schema item with an unknown type is refused', () => {
    const issues = issuesOf(minimal([{ type: 'wait', ms: 1 }], { input_schema: [{ name: 'x', type: 'date' }] }));
    assert.deepEqual(issues[0]?.path, ['input_schema', 0, 'type']);
  });
});

describe('prepareWorkflow', () => {
  const wf = (steps: unknown[], inputSchema: unknown[] = []): Workflow => parse(minimal(steps, { input_schema: inputSchema }));

  function badRequest(fn: () => unknown): BadRequestError {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof BadRequestError, `expected a BadRequestError, got ${String(err)}`);
      assert.equal(err.statusCode, 400);
      return err;
    }
    assert.fail('expected a BadRequestError');
  }

  test('fills {name} placeholders in url, value and cssSelector', () => {
    const prepared = prepareWorkflow(
      wf([
        { type: 'navigation', url: '{site}/search?q={q}' },
        { type: 'input', cssSelector: '#{field}', value: 'hello {q}!' },
      ]),
      { site: 'https://x.test', q: 'shoes', field: 'name' },
    );
    const [nav, input] = prepared.steps as Record<string, unknown>[];
    assert.equal(nav?.url, 'https://x.test/search?q=shoes');
    assert.equal(input?.cssSelector, '#name');
    assert.equal(input?.value, 'hello shoes!');
  });

  test('number and boolean inputs are written as text', () => {
    const prepared = prepareWorkflow(
      wf([{ type: 'input', cssSelector: 'a', value: '{n}/{b}' }], [
        { name: 'n', type: 'number' },
        { name: 'b', type: 'bool' },
      ]),
      { n: 3, b: false },
    );
    assert.equal((prepared.steps[0] as Record<string, unknown>).value, '3/false');
  });

  test('leaves the workflow it was given untouched', () => {
    const original = wf([{ type: 'navigation', url: '{site}/' }]);
    prepareWorkflow(original, { site: 'https://x.test' });
    assert.equal((original.steps[0] as Record<string, unknown>).url, '{site}/');
  });

  test('keeps extra step fields while filling', () => {
    const prepared = prepareWorkflow(wf([{ type: 'navigation', url: '{u}', tabId: 4 }]), { u: 'https://x.test' });
    assert.equal((prepared.steps[0] as Record<string, unknown>).tabId, 4);
  });

  test('text that only looks like a placeholder is left alone', () => {
    const prepared = prepareWorkflow(wf([{ type: 'input', cssSelector: 'a', value: '{} { spaced } {1abc}' }]), {});
    assert.equal((prepared.steps[0] as Record<string, unknown>).value, '{} { spaced } {1abc}');
  });

  test('a missing required input is a bad request naming the input', () => {
    const err = badRequest(() => prepareWorkflow(wf([{ type: 'wait', ms: 1 }], [{ name: 'query', type: 'string', required: true }]), {}));
    assert.equal(err.message, 'input "query" is required');
  });

  test('a missing optional input is fine when no step uses it', () => {
    const prepared = prepareWorkflow(wf([{ type: 'wait', ms: 1 }], [{ name: 'query', type: 'string', required: false }]), {});
    assert.equal(prepared.steps.length, 1);
  });

  const wrongTypes: [string, InputValue][] = [
    ['string', 5],
    ['number', '5'],
    ['bool', 'true'],
  ];
  for (const [type, value] of wrongTypes) {
    test(`a ${typeof value} given for a ${type} input is a bad request naming the input and both types`, () => {
      const err = badRequest(() => prepareWorkflow(wf([{ type: 'wait', ms: 1 }], [{ name: 'x', type }]), { x: value }));
      assert.equal(err.message, `input "x" must be a ${type}, got ${typeof value}`);
    });
  }

  test('a placeholder with no input given is a bad request naming the step field and the input', () => {
    const err = badRequest(() => prepareWorkflow(wf([{ type: 'wait', ms: 1 }, { type: 'navigation', url: '{site}/x' }]), {}));
    assert.equal(err.message, 'steps[1].url uses {site} but no input "site" was given');
  });

  test('every problem with the inputs is named at once: missing, unused placeholders, wrong types, unknown names', () => {
    const schema = [
      { name: 'user', type: 'string' as const, required: true },
      { name: 'password', type: 'string' as const, required: true },
      { name: 'count', type: 'number' as const },
    ];
    const steps = [{ type: 'navigation', url: '{site}/login' }, { type: 'input', cssSelector: '#u', value: '{user}' }];
    const err = badRequest(() => prepareWorkflow(wf(steps, schema), { count: 'two', usr: 'ann' }));
    assert.equal(
      err.message,
      'inputs "user", "password" are required; steps[0].url uses {site} but no input "site" was given; ' +
        'input "count" must be a number, got string; unknown input "usr" (this workflow takes "user", "password", "count", "site")',
    );
  });

  test('an input the workflow does not take is refused, naming what it takes (or that it takes none)', () => {
    const one = badRequest(() => prepareWorkflow(wf([{ type: 'navigation', url: '{site}' }]), { site: 'https://x.test', stie: 'y' }));
    assert.equal(one.message, 'unknown input "stie" (this workflow takes "site")');
    const none = badRequest(() => prepareWorkflow(wf([{ type: 'wait', ms: 1 }]), { a: 1, b: 2 }));
    assert.equal(none.message, 'unknown inputs "a", "b" (this workflow takes no inputs)');
  });
});
