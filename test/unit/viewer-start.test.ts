import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PAGE_START_MAX_CHARS, startBlock, withStart } from '../../src/server/routes/viewer.js';

describe("the viewer page's start block", () => {
  test('gives back the frames exactly, with no "<" that could end the element or open a comment', () => {
    const frames = [
      { t: 'hello', epoch: 'e', note: '</script><script>alert(1)</script>' },
      { t: 'reset', from: 1, events: [{ text: '<!-- a \\< b \u2028 c -->', n: 1e20 }] },
    ];
    const html = startBlock(frames.map((f) => JSON.stringify(f)));
    const inner = /^<script type="application\/json" id="domcast-start">([^]*)<\/script>\n$/.exec(html)?.[1];
    assert.ok(inner !== undefined, html);
    assert.ok(!inner.includes('<'));
    assert.deepEqual(JSON.parse(inner), frames);
  });

  test("a page's text with replacement patterns ($&, $', $$) goes into the page as it is", () => {
    const page = '<head><script src="/assets/early.js"></script></head><body>rest</body>';
    const frames = [JSON.stringify({ t: 'hello', note: "$& $' $` $$ $1" })];
    const out = withStart(page, frames);
    assert.equal(out, `<head>${startBlock(frames)}<script src="/assets/early.js"></script></head><body>rest</body>`);
    assert.equal(out.split('early.js').length, 2, 'early.js once');
  });

  test('a start whose escaped block is over the bound is left to the socket', () => {
    const page = '<head><script src="/assets/early.js"></script></head>';
    // Under the bound as frames, over it once each `<` is six characters.
    const frames = [JSON.stringify({ t: 'hello', text: '<'.repeat(PAGE_START_MAX_CHARS / 2) })];
    assert.ok(frames[0]!.length < PAGE_START_MAX_CHARS);
    assert.equal(withStart(page, frames), page);
  });
});
