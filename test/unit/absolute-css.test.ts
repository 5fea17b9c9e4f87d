import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { absoluteCssUrls, type NodeOf } from '../../src/browser/page/absolute-css.js';

/** Nodes as the recorder's mirror would give them: only what the function reads. */
const FRAME_DOC = 'http://b.test/inner/frame.html';
const nodes = new Map<number, unknown>([
  [7, { nodeName: 'DIV', baseURI: FRAME_DOC }],
  [8, { nodeName: '#text', baseURI: FRAME_DOC, parentNode: { nodeName: 'STYLE' } }],
  [9, { nodeName: '#text', baseURI: FRAME_DOC, parentNode: { nodeName: 'P' } }],
  [10, { nodeName: 'STYLE', baseURI: FRAME_DOC }],
  [11, { nodeName: 'LINK', baseURI: FRAME_DOC, href: 'http://cdn.test/css/site.css' }],
  [12, { nodeName: '#document', baseURI: FRAME_DOC }],
]);
const nodeOf: NodeOf = (id) => (nodes.get(id) as Node | undefined) ?? null;
const PAGE = 'http://a.test/page.html';

const incremental = (data: Record<string, unknown>) => ({ type: 3, timestamp: 1, data });

describe("CSS the page changes after a snapshot: relative URLs made absolute against their node's document", () => {
  test("a style attribute's changed properties, with or without a priority", () => {
    const event = incremental({
      source: 0,
      texts: [],
      adds: [],
      removes: [],
      attributes: [{ id: 7, attributes: { style: { 'background-image': 'url("pics/a.png")', mask: ['url(#m)', 'important'], color: 'red', border: false } } }],
    });
    absoluteCssUrls(event, nodeOf, PAGE);
    assert.deepEqual(event.data.attributes, [
      { id: 7, attributes: { style: { 'background-image': 'url("http://b.test/inner/pics/a.png")', mask: ['url(#m)', 'important'], color: 'red', border: false } } },
    ]);
  });

  test("new text of a <style>, not of any other element", () => {
    const event = incremental({ source: 0, adds: [], removes: [], attributes: [], texts: [{ id: 8, value: '.x { background: url(b.png) }' }, { id: 9, value: 'see url(b.png)' }] });
    absoluteCssUrls(event, nodeOf, PAGE);
    assert.deepEqual(event.data.texts, [
      { id: 8, value: '.x { background: url(http://b.test/inner/b.png) }' },
      { id: 9, value: 'see url(b.png)' },
    ]);
  });

  test("rules inserted or replaced in a <style>'s sheet, a <link>'s (against the stylesheet's URL), a constructed one's (the recorder's document) and adopted ones", () => {
    const inStyle = incremental({ source: 8, id: 10, adds: [{ rule: '#r { background: url(c.png) }', index: 0 }] });
    const inLink = incremental({ source: 8, id: 11, adds: [{ rule: '@import "more.css";' }] });
    const constructed = incremental({ source: 8, styleId: 3, replaceSync: '#r { background: image-set("d.png" 1x) }' });
    const declaration = incremental({ source: 13, id: 10, index: [0], set: { property: 'background', value: 'url(e.png)' } });
    const adopted = incremental({ source: 15, id: 12, styleIds: [1], styles: [{ styleId: 1, rules: [{ rule: '#r { background: url(f.png) }' }] }] });
    for (const e of [inStyle, inLink, constructed, declaration, adopted]) absoluteCssUrls(e, nodeOf, PAGE);
    assert.deepEqual(inStyle.data.adds, [{ rule: '#r { background: url(http://b.test/inner/c.png) }', index: 0 }]);
    assert.deepEqual(inLink.data.adds, [{ rule: '@import "http://cdn.test/css/more.css";' }]);
    assert.equal(constructed.data.replaceSync, '#r { background: image-set("http://a.test/d.png" 1x) }');
    assert.deepEqual(declaration.data.set, { property: 'background', value: 'url(http://b.test/inner/e.png)' });
    assert.deepEqual(adopted.data.styles, [{ styleId: 1, rules: [{ rule: '#r { background: url(http://b.test/inner/f.png) }' }] }]);
  });

  test('absolute, data: and fragment URLs, nodes the mirror no longer has, and other events are left as they are', () => {
    const event = incremental({
      source: 0,
      adds: [],
      removes: [],
      texts: [{ id: 99, value: 'a { background: url(g.png) }' }],
      attributes: [{ id: 7, attributes: { style: { background: 'url(http://other.test/h.png), url(data:image/png;base64,AA==), url(#f)' } } }, { id: 99, attributes: { style: { background: 'url(i.png)' } } }],
    });
    const before = structuredClone(event);
    absoluteCssUrls(event, nodeOf, PAGE);
    assert.deepEqual(event, before);
    const snapshot = { type: 2, timestamp: 1, data: { node: { type: 0, id: 1, childNodes: [] } } };
    absoluteCssUrls(snapshot, nodeOf, PAGE);
    assert.deepEqual(snapshot, { type: 2, timestamp: 1, data: { node: { type: 0, id: 1, childNodes: [] } } });
  });
});
