import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { DemoRuns, registerDemoRoute } from '../../src/cli/demo-route.js';
import type { Session } from '../../src/session/index.js';

interface FakeRun {
  id: string;
  finished: boolean;
  currentStep: number | null;
}

function demoRuns(): { runs: DemoRuns; started: FakeRun[] } {
  const started: FakeRun[] = [];
  const runs = new DemoRuns(() => {
    const run: FakeRun = { id: `run-${started.length + 1}`, finished: false, currentStep: null };
    started.push(run);
    return run as unknown as Session;
  });
  return { runs, started };
}

describe('which demo run a viewer of the short link watches', () => {
  test('the first viewer starts a run; one who comes while it is still on its first page joins it', () => {
    const { runs, started } = demoRuns();
    assert.deepEqual(runs.forViewer(), { session: started[0], started: true });
    assert.equal(runs.forViewer().session, started[0], 'queued or starting: joined');
    started[0]!.currentStep = 1;
    assert.equal(runs.forViewer().session, started[0], 'letting the viewer settle: joined');
    assert.equal(started.length, 1);
  });

  test('past its first page, or once it is over, a new viewer gets a run of their own from its start', () => {
    const { runs, started } = demoRuns();
    runs.forViewer();
    started[0]!.currentStep = 2;
    assert.deepEqual(runs.forViewer(), { session: started[1], started: true });
    started[0]!.finished = true;
    started[1]!.finished = true;
    assert.deepEqual(runs.forViewer(), { session: started[2], started: true });
  });

  test('at most two demo runs at once: then the newest is joined wherever it is', () => {
    const { runs, started } = demoRuns();
    runs.forViewer();
    started[0]!.currentStep = 5;
    runs.forViewer();
    started[1]!.currentStep = 3;
    assert.deepEqual(runs.forViewer(), { session: started[1], started: false });
    assert.equal(started.length, 2);
    started[0]!.finished = true;
    assert.equal(runs.forViewer().started, true, 'a run ending frees its place');
  });
});

describe('GET /demo', () => {
  async function app() {
    const { runs } = demoRuns();
    const fastify = Fastify();
    registerDemoRoute(fastify, runs, async (id) => `http://127.0.0.1:3000/workflows/visual/${id}/viewer?token=t0k.en`);
    await fastify.ready();
    return fastify;
  }

  test('redirects to the viewer of the run, on the address the browser used, and is not cached', async () => {
    const fastify = await app();
    for (const host of ['127.0.0.1:3000', 'localhost:3000', '[::1]:3000']) {
      const res = await fastify.inject({ url: '/demo', headers: { host } });
      assert.equal(res.statusCode, 303, host);
      assert.equal(res.headers.location, '/workflows/visual/run-1/viewer?token=t0k.en');
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
    }
  });

  test('a Host other than this machine (DNS rebinding) is refused', async () => {
    const fastify = await app();
    for (const host of ['evil.example:3000', '127.0.0.1.evil.example', 'localhost.evil.example:3000']) {
      const res = await fastify.inject({ url: '/demo', headers: { host } });
      assert.equal(res.statusCode, 403, host);
    }
  });
});
