import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FRAME_ID_SPAN, type WireEvent } from '../../src/protocol/index.js';
import { remapFrameEvent } from '../../src/session/frame-remap.js';
import { prepareBatch } from '../../src/session/index.js';

const frame = { base: 3 * FRAME_ID_SPAN, owner: 42 };
const id = (n: number) => frame.base + n;
const limits = { maxBatchChars: 1 << 24, maxEventChars: 1 << 24, maxBatchEvents: 5000, maxDepth: 2000 };

const mutation = (data: Record<string, unknown>): WireEvent => ({ type: 3, timestamp: 5, data: { source: 0, adds: [], removes: [], texts: [], attributes: [], ...data } });

describe('a cross-origin frame\'s events in its page\'s stream', () => {
  test('its FullSnapshot becomes the mutation attaching its document to its <iframe>, every id moved into its range, every node in its document', () => {
    const snapshot: WireEvent = {
      type: 2,
      timestamp: 7,
      data: {
        node: { type: 0, id: 1, childNodes: [{ type: 2, tagName: 'html', id: 2, attributes: {}, childNodes: [{ type: 3, id: 3, textContent: 'hi' }] }] },
        initialOffset: { top: 0, left: 0 },
      },
    };
    const out = remapFrameEvent(snapshot, frame);
    assert.deepEqual(out, {
      type: 3,
      timestamp: 7,
      data: {
        source: 0,
        adds: [
          {
            parentId: 42,
            nextId: null,
            node: { type: 0, id: id(1), childNodes: [{ type: 2, tagName: 'html', id: id(2), rootId: id(1), attributes: {}, childNodes: [{ type: 3, id: id(3), rootId: id(1), textContent: 'hi' }] }] },
          },
        ],
        removes: [],
        texts: [],
        attributes: [],
        isAttachIframe: true,
      },
    });
  });

  test('mutations, inputs, scrolls, mouse positions and stylesheet ids are moved; "none" ids (-1, null) stay', () => {
    const m = remapFrameEvent(
      mutation({
        adds: [{ parentId: 2, nextId: null, previousId: -1, node: { type: 3, id: 9, textContent: 'x' } }],
        removes: [{ parentId: 2, id: 8 }],
        texts: [{ id: 4, value: 'y' }],
        attributes: [{ id: 5, attributes: { class: 'z' } }],
      }),
      frame,
    )!;
    assert.deepEqual(m.data, {
      source: 0,
      adds: [{ parentId: id(2), nextId: null, previousId: -1, node: { type: 3, id: id(9), rootId: id(1), textContent: 'x' } }],
      removes: [{ parentId: id(2), id: id(8) }],
      texts: [{ id: id(4), value: 'y' }],
      attributes: [{ id: id(5), attributes: { class: 'z' } }],
    });
    assert.deepEqual(remapFrameEvent({ type: 3, timestamp: 1, data: { source: 5, id: 6, text: 'a', isChecked: false } }, frame)!.data, { source: 5, id: id(6), text: 'a', isChecked: false });
    assert.deepEqual(remapFrameEvent({ type: 3, timestamp: 1, data: { source: 3, id: 1, x: 0, y: 10 } }, frame)!.data, { source: 3, id: id(1), x: 0, y: 10 });
    assert.deepEqual(remapFrameEvent({ type: 3, timestamp: 1, data: { source: 1, positions: [{ x: 1, y: 2, id: 3, timeOffset: 0 }] } }, frame)!.data, { source: 1, positions: [{ x: 1, y: 2, id: id(3), timeOffset: 0 }] });
    assert.deepEqual(remapFrameEvent({ type: 3, timestamp: 1, data: { source: 8, styleId: 2, adds: [{ rule: 'a{}' }] } }, frame)!.data, { source: 8, styleId: id(2), adds: [{ rule: 'a{}' }] });
    assert.deepEqual(remapFrameEvent({ type: 3, timestamp: 1, data: { source: 15, id: 1, styleIds: [1, 2], styles: [{ styleId: 2, rules: [] }] } }, frame)!.data, {
      source: 15,
      id: id(1),
      styleIds: [id(1), id(2)],
      styles: [{ styleId: id(2), rules: [] }],
    });
  });

  test('what has no place in the page\'s stream is left out: Meta, Load, viewport resizes, custom and plugin events, unknown sources, ids outside the range', () => {
    for (const e of [
      { type: 4, timestamp: 1, data: { href: 'https://pay.example/', width: 300, height: 200 } },
      { type: 1, timestamp: 1, data: {} },
      { type: 0, timestamp: 1, data: {} },
      { type: 3, timestamp: 1, data: { source: 4, width: 300, height: 200 } },
      { type: 5, timestamp: 1, data: { tag: 'x', payload: { id: 1 } } },
      { type: 6, timestamp: 1, data: { plugin: 'p', payload: {} } },
      { type: 3, timestamp: 1, data: { source: 99, id: 1 } },
      mutation({ removes: [{ parentId: 1, id: FRAME_ID_SPAN }] }),
      mutation({ attributes: [{ id: 1.5, attributes: {} }] }),
      mutation({ adds: [{ parentId: 1, nextId: null, node: { type: 3, id: 2 ** 40, textContent: '' } }] }),
    ]) {
      assert.equal(remapFrameEvent(e, frame), null, JSON.stringify(e));
    }
  });

  test('prepareBatch with a frame: its events can name nothing of the top document, and never make a checkpoint', () => {
    const json = JSON.stringify([
      { type: 4, timestamp: 1, data: { href: 'https://pay.example/', width: 1, height: 1 } },
      { type: 2, timestamp: 2, data: { node: { type: 0, id: 1, childNodes: [] }, initialOffset: { top: 0, left: 0 } } },
      mutation({ removes: [{ parentId: 1, id: 2 }] }),
    ]);
    const { entries, rejected } = prepareBatch(json, limits, undefined, frame);
    assert.equal(rejected, 0);
    assert.deepEqual(entries.map((e) => e.type), [3, 3]);
    assert.ok(entries[0]!.json.includes(`"parentId":42`));
    assert.ok(entries[1]!.json.includes(`"removes":[{"parentId":${id(1)},"id":${id(2)}}]`));
    // Without a frame the same batch is the top document's, as before.
    assert.deepEqual(prepareBatch(json, limits).entries.map((e) => e.type), [4, 2, 3]);
  });
});
