import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CustomTag, RrwebEventType, type StepCustomPayload } from '../../src/protocol/index.js';
import { WsViewer, execute, startStack, type Stack } from '../helpers/stack.js';

describe('bad input and failed steps', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.close();
  });

  test('a bad body gets a 400 with a JSON error that says what is wrong, and starts nothing', async () => {
    const cases: [string, RegExp][] = [
      ['{"workflow": ', /JSON/i],
      [JSON.stringify({ inputs: {} }), /workflow/],
      [JSON.stringify({ workflow: { name: 'x', steps: [] } }), /workflow\.steps: a workflow needs at least one step/],
      [JSON.stringify({ workflow: { name: 'x', steps: [{ type: 'navigation', url: 5 }] } }), /workflow\.steps\[0\]\.url/],
      [JSON.stringify({ workflow: { name: 'x', steps: [{ type: 'navigation', url: 'http://127.0.0.1/' }] }, visual_enabled: 'yes' }), /visual_enabled/],
      [JSON.stringify({ workflow: { name: 'x', steps: [{ type: 'teleport' }] } }), /unknown step type "teleport"/],
    ];
    for (const [raw, message] of cases) {
      const { status, body } = await execute(stack.base, undefined, raw);
      assert.equal(status, 400, raw);
      assert.match(body.error ?? '', message, raw);
    }
    assert.equal(stack.server.deps.registry.activeCount, 0);
  });

  test('a step whose element is missing fails the run with its selector, a screenshot and a status pushed to viewers', async () => {
    const { body } = await execute(stack.base, {
      workflow: {
        name: 'broken',
        steps: [
          { type: 'navigation', url: `${stack.site.url}/index.html` },
          { type: 'click', cssSelector: '#no-such-button', timeoutMs: 1000, description: 'click a ghost' },
          { type: 'navigation', url: `${stack.site.url}/about.html` },
        ],
      },
      visual_enabled: true,
    });
    const viewer = await WsViewer.open(body.visual_stream_url!);
    await viewer.closed;
    const result = (await (await fetch(`${stack.base}/workflows/${body.session_id}`)).json()) as {
      status: string;
      error: string;
      steps: { state: string; selector?: string; screenshotAvailable?: boolean }[];
      failure: Record<string, unknown> | null;
    };
    assert.equal(result.status, 'failed');
    assert.match(result.error, /step 2 \(click #no-such-button\) failed/);
    assert.deepEqual(result.steps.map((s) => s.state), ['succeeded', 'failed', 'skipped']);
    assert.equal(result.steps[1]?.selector, '#no-such-button');
    assert.deepEqual(result.failure, {
      step: 1,
      type: 'click',
      description: 'click a ghost',
      selector: '#no-such-button',
      reason: result.error,
      screenshot_url: `/workflows/${body.session_id}/steps/1/screenshot`,
    });
    const shot = await fetch(`${stack.base}/workflows/${body.session_id}/screenshot`);
    assert.equal(shot.headers.get('content-type'), 'image/png');
    assert.deepEqual([...new Uint8Array(await shot.arrayBuffer()).subarray(1, 4)], [0x50, 0x4e, 0x47]);

    const fail = viewer.received
      .filter((r) => r.event.type === RrwebEventType.Custom && (r.event.data as { tag: string }).tag === CustomTag.step)
      .map((r) => (r.event.data as { payload: StepCustomPayload }).payload)
      .find((p) => p.phase === 'fail');
    assert.equal(fail?.selector, '#no-such-button');
    const end = viewer.frames.at(-1);
    assert.deepEqual(end?.t === 'end' && end.status, 'failed');

    // A viewer who comes after the failure is told what failed straight away.
    const late = await WsViewer.open(body.visual_stream_url!);
    await late.closed;
    const hello = late.hello();
    assert.equal(hello?.status, 'failed');
    assert.match(hello?.error ?? '', /#no-such-button/);
    assert.equal(hello?.steps[1]?.screenshotAvailable, true);
  });
});
