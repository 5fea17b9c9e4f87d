import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { RrwebEventType } from '../../src/protocol/index.js';
import { WsViewer, execute, startStack, waitFor, type Stack } from '../helpers/stack.js';

const CANVAS_MUTATION = 9;
const BUFFER = 50;

describe('recording', () => {
  let stack: Stack;
  let pages: StaticSite;
  before(async () => {
    stack = await startStack({ VISUAL_EVENT_BUFFER_SIZE: String(BUFFER) });
    pages = await serveStatic(join(projectRoot, 'test', 'fixtures', 'pages'));
  });
  after(async () => {
    await pages?.close();
    await stack?.close();
  });

  const hold = (page: string, ms: number, quality: 'standard' | 'high' = 'standard') =>
    execute(stack.base, {
      workflow: { name: page, steps: [{ type: 'navigation', url: `${pages.url}/${page}` }, { type: 'wait', ms }] },
      visual_enabled: true,
      visual_quality: quality,
    });

  test('memory stays bounded by a fresh checkpoint, and a late joiner still starts from Meta + FullSnapshot', async () => {
    // Held long enough for a busy machine's page to make BUFFER * 4 events (about 55 a second here).
    const { body } = await hold('churn.html', 8000);
    const session = stack.server.deps.registry.get(body.session_id)!;
    let maxRetained = 0;
    const sampler = setInterval(() => (maxRetained = Math.max(maxRetained, session.log.retained)), 5);
    let late: WsViewer;
    try {
      await waitFor('lots of events', () => session.log.lastSeq > BUFFER * 4);
      late = await WsViewer.open(body.visual_stream_url!);
      await late.closed;
    } finally {
      clearInterval(sampler);
    }

    assert.ok(session.log.totalEvents > BUFFER * 4, `${session.log.totalEvents} events`);
    assert.ok(maxRetained <= BUFFER * 2, `retained up to ${maxRetained} events with a buffer of ${BUFFER}`);
    assert.ok(session.log.checkpointSeq > BUFFER, 'the checkpoint moved forward');
    const reset = late.frames.find((f) => f.t === 'reset');
    assert.ok(reset && reset.t === 'reset');
    assert.deepEqual(reset.events.slice(0, 2).map((e) => e.type), [RrwebEventType.Meta, RrwebEventType.FullSnapshot]);
  });

  test('a page with iframes is recorded once, from the top frame, with the frames inside its stream', async () => {
    const { body } = await hold('frames.html', 800);
    const viewer = await WsViewer.open(body.visual_stream_url!);
    await viewer.closed;
    const metas = viewer.received.filter((r) => r.event.type === RrwebEventType.Meta);
    assert.deepEqual(metas.map((r) => new URL((r.event.data as { href: string }).href).pathname), ['/frames.html']);
    const all = viewer.raw.join('');
    assert.ok(all.includes('Inner frame text'), 'the same-origin iframe is recorded by the top frame');
    assert.ok(all.includes('srcdoc frame text'), 'the srcdoc iframe is recorded by the top frame');
  });

  test('both qualities record a changing canvas as sampled pictures, never call by call; high more often than standard', async () => {
    const runs = await Promise.all([hold('canvas.html', 3000, 'high'), hold('canvas.html', 3000, 'standard')]);
    const [high, standard] = await Promise.all(
      runs.map(async ({ body }) => {
        const v = await WsViewer.open(body.visual_stream_url!);
        await v.closed;
        const canvas = v.received.filter((r) => r.event.type === RrwebEventType.IncrementalSnapshot && (r.event.data as { source: number }).source === CANVAS_MUTATION);
        for (const r of canvas) {
          const commands = (r.event.data as { commands?: { property: string; args: { rr_type?: string }[] }[] }).commands ?? [];
          assert.deepEqual(commands.map((c) => c.property), ['clearRect', 'drawImage'], 'a picture, not the page\'s calls');
          assert.equal(commands[1]!.args[0]!.rr_type, 'ImageBitmap');
        }
        return canvas.length;
      }),
    );
    assert.ok(standard! >= 2, `standard quality sent ${standard} canvas pictures`);
    assert.ok(high! > standard!, `high quality sent ${high} canvas pictures, standard ${standard}`);
  });
});
