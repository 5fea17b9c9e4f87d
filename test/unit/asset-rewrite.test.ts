import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IncrementalSource, NodeType } from '@rrweb/types';
import { assetPath } from '../../src/assets/paths.js';
import {
  AssetRewriter,
  createRewriteState,
  NodeKind,
  rewriteCss,
  rewriteEvent,
  rewriteSrcset,
  type RewriteState,
  type UrlMap,
} from '../../src/assets/rewrite.js';
import { RrwebEventType } from '../../src/protocol/index.js';

/** Every http(s) URL becomes /a/<url>, so a test reads what was rewritten from what. */
const map: UrlMap = (url) => `/a/${url}`;
const css = (text: string, base?: string): string => rewriteCss(text, map, base);

/** Asserts that `fn` takes less than `ms`: what a hostile input must not cost. */
function quick<T>(ms: number, fn: () => T): T {
  const start = performance.now();
  const result = fn();
  const took = performance.now() - start;
  assert.ok(took < ms, `took ${Math.round(took)} ms (limit ${ms})`);
  return result;
}

describe('rewriteCss', () => {
  test('rewrites url() unquoted, single- and double-quoted, keeping each form', () => {
    assert.equal(css('a{background:url(http://h/a.png)}'), 'a{background:url(/a/http://h/a.png)}');
    assert.equal(css(`a{background:url('http://h/a.png')}`), `a{background:url('/a/http://h/a.png')}`);
    assert.equal(css('a{background:url( "http://h/a.png" )}'), 'a{background:url( "/a/http://h/a.png" )}');
  });

  test('reads escapes as the browser does: an escaped ) in a string, escaped characters unquoted, an escaped url name', () => {
    assert.equal(css('b{background:url( "http://h/a\\)b.png" )}'), 'b{background:url( "/a/http://h/a)b.png" )}');
    assert.equal(css('b{background:url(http://h/a\\29 b\\ c.png)}'), 'b{background:url("/a/http://h/a)b%20c.png")}');
    assert.equal(css('b{background:u\\72l(http://h/e.png)}'), 'b{background:url(/a/http://h/e.png)}');
    assert.equal(css('b{background:URL(http://h/up.png)}'), 'b{background:url(/a/http://h/up.png)}');
    assert.equal(css('b{background:url("http://h/line\\\ncontinued.png")}'), 'b{background:url("/a/http://h/linecontinued.png")}');
  });

  test('rewrites @import strings and @import url(), and image-set string entries but not their type()', () => {
    assert.equal(css('@import "http://h/x.css";'), '@import "/a/http://h/x.css";');
    assert.equal(css("@import /* c */ 'http://h/x.css' screen;"), "@import /* c */ '/a/http://h/x.css' screen;");
    assert.equal(css('@IMPORT url(http://h/x.css) layer(a);'), '@IMPORT url(/a/http://h/x.css) layer(a);');
    assert.equal(
      css('a{background:image-set("http://h/1.avif" type("image/avif") 1x, url(http://h/2.png) 2x)}'),
      'a{background:image-set("/a/http://h/1.avif" type("image/avif") 1x, url(/a/http://h/2.png) 2x)}',
    );
    assert.equal(css('a{background:-webkit-image-set("http://h/1.png" 1x)}'), 'a{background:-webkit-image-set("/a/http://h/1.png" 1x)}');
  });

  test('leaves strings that are not URLs: content, font names, a string after image-set has closed', () => {
    const text = 'a::before{content:"http://h/x.png";font-family:"http://h"}b{background:image-set(url(x) 1x) "http://h/y.png"}';
    assert.equal(css(text), text);
  });

  test('leaves data:, blob:, fragment-only, other schemes, empty and relative URLs without a base', () => {
    const text =
      'a{background:url(data:image/png;base64,AAAA),url("blob:http://h/1"),url(#grad),url(about:blank),url(javascript:x),url(),url(""),url(img/x.png)}';
    assert.equal(css(text), text);
  });

  test('resolves relative URLs against the base, and keeps a fragment after the path', () => {
    assert.equal(css('a{mask:url(../s.svg#m)}', 'http://h/css/site.css'), 'a{mask:url(/a/http://h/s.svg#m)}');
    assert.equal(css('a{background:url(//cdn.h/x.png)}', 'https://h/'), 'a{background:url(/a/https://cdn.h/x.png)}');
    assert.equal(css('a{fill:url(#local)}', 'https://h/'), 'a{fill:url(#local)}');
  });

  test('leaves what the browser does not read as a URL: comments, dimensions, bad url tokens, bad strings', () => {
    const texts = [
      '/* url(http://h/c.png) */',
      'a{width:10url(http://h/d.png)}',
      'a{background:-url(http://h/d.png)}',
      'a{background:url(http://h/bad url.png)}',
      'a{background:url(http://h/q"uote.png)}',
      'a{background:url("http://h/raw\nnewline.png")}',
      'a{background:#url(http://h/hash.png)}',
    ];
    for (const text of texts) assert.equal(css(text), text, text);
  });

  test('writes a replacement that needs it as a string, escaped', () => {
    const odd: UrlMap = () => '/x y"z\\(w)';
    assert.equal(rewriteCss('a{background:url(http://h/a.png)}', odd), 'a{background:url("/x y\\"z\\\\(w)")}');
    assert.equal(rewriteCss(`@import 'http://h/a.css';`, odd), `@import '/x y"z\\\\(w)';`);
  });

  test('unterminated CSS at the end of the text still has its URL rewritten and stays closed', () => {
    assert.equal(css('a{background:url(http://h/a.png'), 'a{background:url(/a/http://h/a.png)');
    assert.equal(css('@import "http://h/a.css'), '@import "/a/http://h/a.css"');
    assert.equal(css('a{background:url(http://h/a.png\\'), 'a{background:url(/a/http://h/a.png%EF%BF%BD)');
    assert.equal(css('a /* never closed url(http://h/x)'), 'a /* never closed url(http://h/x)');
  });

  test('returns the very text it was given when nothing is rewritten', () => {
    const text = 'a{color:red}/* rr_split */b{background:url(data:,x)}';
    assert.equal(css(text), text);
    assert.equal(rewriteCss('a{background:url(http://h/x.png)}', () => null), 'a{background:url(http://h/x.png)}');
    assert.equal(rewriteCss('a{background:url("http://h/x.png")}', (u) => u), 'a{background:url("http://h/x.png")}');
  });

  test('hostile texts take linear time: long runs of spaces, parentheses, escapes and URLs', () => {
    quick(5000, () => css(`a{background:url(${' '.repeat(500_000)}x)}`));
    quick(5000, () => css(`a{background:url("${' '.repeat(500_000)}x")}`));
    quick(5000, () => css('('.repeat(500_000) + 'image-set(' + '"http://h/x" '.repeat(10_000)));
    quick(5000, () => css('\\'.repeat(500_000)));
    quick(5000, () => css('u\\72 l('.repeat(100_000)));
    const many = quick(5000, () => css('a{background:url(http://h/x.png)}'.repeat(50_000)));
    assert.equal(many, 'a{background:url(/a/http://h/x.png)}'.repeat(50_000));
  });
});

describe('rewriteSrcset', () => {
  test('rewrites each candidate and keeps descriptors, commas and spacing', () => {
    assert.equal(rewriteSrcset('http://h/a.png 1x,  http://h/b.png 2x', map), '/a/http://h/a.png 1x,  /a/http://h/b.png 2x');
    assert.equal(rewriteSrcset('http://h/a.png 10w,http://h/b.png, http://h/c.png', map), '/a/http://h/a.png 10w,/a/http://h/b.png, /a/http://h/c.png');
    // A comma inside a run of non-spaces belongs to the URL, as the browser reads it.
    assert.equal(rewriteSrcset('http://h/a.png,http://h/b.png 100w', map), '/a/http://h/a.png,http://h/b.png 100w');
    assert.equal(rewriteSrcset('a.png 1x, data:image/png;base64,AA== 2x', map, 'http://h/p/'), '/a/http://h/p/a.png 1x, data:image/png;base64,AA== 2x');
    assert.equal(rewriteSrcset('http://h/a,b.png 1x', map), '/a/http://h/a,b.png 1x');
  });

  test('leaves an empty or unchanged srcset as it was', () => {
    for (const s of ['', '  ', ' , ', 'data:,x 1x', 'rel.png 1x']) assert.equal(rewriteSrcset(s, map), s);
  });
});

/** A FullSnapshot event around `children` of <body>. */
function snapshot(children: unknown[], head: unknown[] = []): { type: number; timestamp: number; data: { node: unknown; initialOffset: { top: number; left: number } } } {
  return {
    type: RrwebEventType.FullSnapshot,
    timestamp: 1,
    data: {
      initialOffset: { top: 0, left: 0 },
      node: {
        type: NodeType.Document,
        id: 1,
        childNodes: [
          {
            type: NodeType.Element,
            id: 2,
            tagName: 'html',
            attributes: {},
            childNodes: [
              { type: NodeType.Element, id: 3, tagName: 'head', attributes: {}, childNodes: head },
              { type: NodeType.Element, id: 4, tagName: 'body', attributes: {}, childNodes: children },
            ],
          },
        ],
      },
    },
  };
}

let nextId = 100;
const el = (tagName: string, attributes: Record<string, unknown>, childNodes: unknown[] = []): Record<string, unknown> => ({
  type: NodeType.Element,
  id: nextId++,
  tagName,
  attributes,
  childNodes,
});
const text = (textContent: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: NodeType.Text, id: nextId++, textContent, ...extra });

const mutation = (data: Record<string, unknown>): { type: number; timestamp: number; data: Record<string, unknown> } => ({
  type: RrwebEventType.IncrementalSnapshot,
  timestamp: 2,
  data: { source: IncrementalSource.Mutation, texts: [], attributes: [], removes: [], adds: [], ...data },
});

describe('rewriteEvent: FullSnapshot', () => {
  test("rrweb's numbers are the ones the rewrite reads", () => {
    assert.deepEqual([NodeType.Element, NodeType.Text], [2, 3]);
    assert.deepEqual(
      [IncrementalSource.Mutation, IncrementalSource.StyleSheetRule, IncrementalSource.StyleDeclaration, IncrementalSource.AdoptedStyleSheet],
      [0, 8, 13, 15],
    );
  });

  test('rewrites the asset attributes of every element, and only those', () => {
    const img = el('img', { src: 'http://h/a.png', srcset: 'http://h/a.png 1x, http://h/a2.png 2x', alt: 'http://h/alt', rr_dataURL: 'data:image/png;base64,AA' });
    const a = el('a', { href: 'http://h/page', style: 'background:url(http://h/bg.png)' });
    const sheet = el('link', { rel: 'stylesheet', href: 'http://h/cross.css' });
    const icon = el('link', { rel: 'Shortcut ICON', href: 'http://h/favicon.ico' });
    const canonical = el('link', { rel: 'canonical', href: 'http://h/canonical' });
    const inlined = el('link', { _cssText: '.x{background:url("http://h/x.png")}' });
    const use = el('use', { href: 'http://h/sprite.svg#icon', 'xlink:href': 'http://h/sprite.svg#icon' });
    const local = el('use', { href: '#icon' });
    const image = el('image', { href: 'http://h/i.png' });
    const fe = el('feImage', { 'xlink:href': 'http://h/fe.png' });
    const iframe = el('iframe', { src: 'http://h/frame', rr_src: 'http://h/frame' });
    const imageInput = el('input', { type: 'IMAGE', src: 'http://h/submit.png' });
    const textInput = el('input', { type: 'text', src: 'http://h/not-an-asset.png' });
    const video = el('video', { poster: 'http://h/poster.jpg' }, [el('source', { src: 'http://h/v.mp4' })]);
    const picture = el('picture', {}, [el('source', { srcset: 'http://h/p.webp' })]);
    const td = el('td', { background: 'http://h/td.gif' });
    const form = el('form', { action: 'http://h/post' });
    const base = el('base', { href: 'http://h/' });
    const event = snapshot([img, a, inlined, use, local, image, fe, iframe, imageInput, textInput, video, picture, td, form, base], [sheet, icon, canonical]);
    assert.equal(rewriteEvent(event, map), true);
    assert.deepEqual(img.attributes, {
      src: '/a/http://h/a.png',
      srcset: '/a/http://h/a.png 1x, /a/http://h/a2.png 2x',
      alt: 'http://h/alt',
      rr_dataURL: 'data:image/png;base64,AA',
    });
    assert.deepEqual(a.attributes, { href: 'http://h/page', style: 'background:url(/a/http://h/bg.png)' });
    assert.equal((sheet.attributes as Record<string, string>).href, '/a/http://h/cross.css');
    assert.equal((icon.attributes as Record<string, string>).href, '/a/http://h/favicon.ico');
    assert.equal((canonical.attributes as Record<string, string>).href, 'http://h/canonical');
    assert.deepEqual(inlined.attributes, { _cssText: '.x{background:url("/a/http://h/x.png")}' });
    assert.deepEqual(use.attributes, { href: '/a/http://h/sprite.svg#icon', 'xlink:href': '/a/http://h/sprite.svg#icon' });
    assert.deepEqual(local.attributes, { href: '#icon' });
    assert.deepEqual(image.attributes, { href: '/a/http://h/i.png' });
    assert.deepEqual(fe.attributes, { 'xlink:href': '/a/http://h/fe.png' });
    assert.deepEqual(iframe.attributes, { src: 'http://h/frame', rr_src: 'http://h/frame' });
    assert.equal((imageInput.attributes as Record<string, string>).src, '/a/http://h/submit.png');
    assert.equal((textInput.attributes as Record<string, string>).src, 'http://h/not-an-asset.png');
    assert.deepEqual(video.attributes, { poster: '/a/http://h/poster.jpg' });
    assert.deepEqual(((video.childNodes as Record<string, unknown>[])[0]!).attributes, { src: '/a/http://h/v.mp4' });
    assert.deepEqual(((picture.childNodes as Record<string, unknown>[])[0]!).attributes, { srcset: '/a/http://h/p.webp' });
    assert.deepEqual(td.attributes, { background: '/a/http://h/td.gif' });
    assert.deepEqual(form.attributes, { action: 'http://h/post' });
    assert.deepEqual(base.attributes, { href: 'http://h/' });
  });

  test('matches attribute and tag names in any case, and leaves values that are not strings', () => {
    const img = el('IMG', { SRC: 'http://h/a.png', Style: 'background:URL(http://h/b.png)', srcset: 5, poster: null, background: true });
    const use = el('USE', { 'XLINK:HREF': 'http://h/s.svg#i' });
    const link = el('LINK', { REL: 'STYLESHEET', HREF: 'http://h/s.css' });
    rewriteEvent(snapshot([img, use, link]), map);
    assert.deepEqual(img.attributes, { SRC: '/a/http://h/a.png', Style: 'background:url(/a/http://h/b.png)', srcset: 5, poster: null, background: true });
    assert.deepEqual(use.attributes, { 'XLINK:HREF': '/a/http://h/s.svg#i' });
    assert.deepEqual(link.attributes, { REL: 'STYLESHEET', HREF: '/a/http://h/s.css' });
  });

  test('rewrites the text of <style> elements, HTML (isStyle) and SVG (by its parent) alike, and no other text', () => {
    const htmlStyle = text('.a{background:url(http://h/a.png)}', { isStyle: true });
    const svgStyle = text('.b{fill:url(http://h/b.svg#p)}');
    const plain = text('url(http://h/c.png)');
    rewriteEvent(snapshot([el('style', {}, [htmlStyle]), el('svg', {}, [el('style', {}, [svgStyle])]), el('p', {}, [plain])]), map);
    assert.equal(htmlStyle.textContent, '.a{background:url(/a/http://h/a.png)}');
    assert.equal(svgStyle.textContent, '.b{fill:url(/a/http://h/b.svg#p)}');
    assert.equal(plain.textContent, 'url(http://h/c.png)');
  });

  test('says false and leaves the event alone when there is nothing to rewrite', () => {
    const event = snapshot([el('a', { href: 'http://h/x' }), el('img', { src: 'data:image/gif;base64,R0lG' }), text('hello')]);
    const before = JSON.stringify(event);
    assert.equal(rewriteEvent(event, map), false);
    assert.equal(JSON.stringify(event), before);
  });

  test('a tree 200,000 deep is walked without recursion, in bounded time', () => {
    let node: Record<string, unknown> = el('img', { src: 'http://h/deep.png' });
    const leaf = node;
    for (let i = 0; i < 200_000; i++) node = el('div', {}, [node]);
    quick(3000, () => rewriteEvent(snapshot([node]), map));
    assert.deepEqual(leaf.attributes, { src: '/a/http://h/deep.png' });
  });

  test('an event that loops on itself (built in memory, not parsed) stops at the cap on nodes', () => {
    const img = el('img', { src: 'http://h/a.png' });
    const loop = el('div', {});
    (loop.childNodes as unknown[]).push(img, loop, loop);
    assert.equal(quick(10_000, () => rewriteEvent(snapshot([loop]), map)), true);
    assert.deepEqual(img.attributes, { src: '/a/http://h/a.png' });
  });

  test('hostile shapes are skipped, not thrown on', () => {
    const shapes: unknown[] = [
      null, 5, 'x', [], { type: 2 }, { type: 2, data: null }, { type: 2, data: { node: 'x' } },
      { type: 2, data: { node: { type: 2, tagName: 5, attributes: [], childNodes: {} } } },
      { type: 2, data: { node: { type: 0, childNodes: [null, 1, 'a', [], { type: 3, id: 'x', isStyle: true, textContent: 5 }] } } },
      { type: 3, data: { source: 0, adds: [null, { node: null }, { parentId: 'x', node: { type: 3 } }], texts: [null, { id: 1 }], attributes: [null, { id: 1, attributes: null }], removes: [null, {}] } },
      { type: 3, data: { source: 0, adds: {}, texts: 'x', attributes: 5, removes: null } },
      { type: 3, data: { source: 8, adds: [null, { rule: 5 }], replace: 5 } },
      { type: 3, data: { source: 13, set: 'x' } },
      { type: 3, data: { source: 15, styles: [null, { rules: 'x' }, { rules: [null, { rule: {} }] }] } },
      { type: 4, data: { href: 5 } },
    ];
    for (const shape of shapes) assert.equal(rewriteEvent(shape, map), false);
  });
});

describe('rewriteEvent: mutations and stylesheets', () => {
  test('an added <style> with its text, and text added under a known <style> later, are rewritten; their later texts too', () => {
    const state = createRewriteState();
    const styleText = text('.a{background:url(http://h/a.png)}');
    const add = mutation({
      adds: [
        // The text first: a <style> may be listed after what is added under it.
        { parentId: 50, nextId: null, node: styleText },
        { parentId: 4, nextId: null, node: { type: NodeType.Element, id: 50, tagName: 'style', attributes: {}, childNodes: [] } },
      ],
    });
    assert.equal(rewriteEvent(add, map, state), true);
    assert.equal(styleText.textContent, '.a{background:url(/a/http://h/a.png)}');
    const later = mutation({ adds: [{ parentId: 50, nextId: null, node: { type: NodeType.Text, id: 52, textContent: 'b{background:url(http://h/b.png)}' } }] });
    rewriteEvent(later, map, state);
    assert.deepEqual(((later.data.adds as Record<string, Record<string, unknown>>[])[0]!).node!.textContent, 'b{background:url(/a/http://h/b.png)}');
    const texts = mutation({ texts: [{ id: styleText.id, value: 'c{background:url(http://h/c.png)}' }, { id: 4, value: 'url(http://h/not-css)' }, { id: 52, value: null }] });
    rewriteEvent(texts, map, state);
    assert.deepEqual(texts.data.texts, [
      { id: styleText.id, value: 'c{background:url(/a/http://h/c.png)}' },
      { id: 4, value: 'url(http://h/not-css)' },
      { id: 52, value: null },
    ]);
  });

  test('a FullSnapshot forgets the nodes of the previous document, and a removed node is forgotten', () => {
    const state = createRewriteState();
    const styleText = text('x', { isStyle: true });
    rewriteEvent(snapshot([el('style', {}, [styleText])]), map, state);
    assert.equal(state.nodes.get(styleText.id as number), NodeKind.StyleText);
    rewriteEvent(mutation({ removes: [{ parentId: 4, id: styleText.id }] }), map, state);
    assert.equal(state.nodes.has(styleText.id as number), false);
    const again = text('y', { isStyle: true });
    rewriteEvent(snapshot([el('style', {}, [again])]), map, state);
    rewriteEvent(snapshot([]), map, state);
    assert.equal(state.nodes.size, 0);
  });

  test('attribute mutations: src, srcset, style strings and objects anywhere; href only on known asset links and SVG references', () => {
    const state = createRewriteState();
    const use = el('use', { href: '#a' });
    const link = el('link', { rel: 'canonical', href: 'http://h/c' });
    rewriteEvent(snapshot([use, link]), map, state);
    const event = mutation({
      attributes: [
        { id: 7, attributes: { SRC: 'http://h/a.png', srcset: 'http://h/b.png 2x', style: 'background:url(http://h/c.png)', href: 'http://h/page', title: 'http://h/t' } },
        { id: 8, attributes: { style: { background: 'url(http://h/d.png)', 'mask-image': ['url("http://h/e.svg")', 'important'], color: false, width: '1px' } } },
        { id: use.id, attributes: { 'xlink:href': 'http://h/s.svg#i' } },
        { id: link.id, attributes: { href: 'http://h/still-canonical' } },
        { id: 9, attributes: { src: null, style: null } },
      ],
    });
    assert.equal(rewriteEvent(event, map, state), true);
    assert.deepEqual(event.data.attributes, [
      { id: 7, attributes: { SRC: '/a/http://h/a.png', srcset: '/a/http://h/b.png 2x', style: 'background:url(/a/http://h/c.png)', href: 'http://h/page', title: 'http://h/t' } },
      { id: 8, attributes: { style: { background: 'url(/a/http://h/d.png)', 'mask-image': ['url("/a/http://h/e.svg")', 'important'], color: false, width: '1px' } } },
      { id: use.id, attributes: { 'xlink:href': '/a/http://h/s.svg#i' } },
      { id: link.id, attributes: { href: 'http://h/still-canonical' } },
      { id: 9, attributes: { src: null, style: null } },
    ]);
  });

  test("a <link> whose rel changes to stylesheet has its href rewritten from then on, and back", () => {
    const state = createRewriteState();
    const link = el('link', { rel: 'prev', href: 'http://h/p' });
    rewriteEvent(snapshot([], [link]), map, state);
    const toSheet = mutation({ attributes: [{ id: link.id, attributes: { rel: 'stylesheet', href: 'http://h/s.css' } }] });
    rewriteEvent(toSheet, map, state);
    assert.deepEqual(toSheet.data.attributes, [{ id: link.id, attributes: { rel: 'stylesheet', href: '/a/http://h/s.css' } }]);
    const back = mutation({ attributes: [{ id: link.id, attributes: { REL: null, href: 'http://h/n' } }] });
    rewriteEvent(back, map, state);
    assert.deepEqual(back.data.attributes, [{ id: link.id, attributes: { REL: null, href: 'http://h/n' } }]);
  });

  test('StyleSheetRule adds, replace and replaceSync; StyleDeclaration set; AdoptedStyleSheet rules', () => {
    const rule = { type: 3, timestamp: 1, data: { source: IncrementalSource.StyleSheetRule, id: 5, adds: [{ rule: 'a{background:url(http://h/a.png)}', index: 0 }], removes: [{ index: 1 }] } };
    const replace = { type: 3, timestamp: 1, data: { source: IncrementalSource.StyleSheetRule, styleId: 1, replace: '@import "http://h/i.css";', replaceSync: 'b{background:url(http://h/b.png)}' } };
    const decl = { type: 3, timestamp: 1, data: { source: IncrementalSource.StyleDeclaration, id: 5, index: [0], set: { property: 'background', value: 'url(http://h/c.png)', priority: '' } } };
    const adopted = {
      type: 3,
      timestamp: 1,
      data: { source: IncrementalSource.AdoptedStyleSheet, id: 1, styleIds: [1], styles: [{ styleId: 1, rules: [{ rule: 'd{background:url(http://h/d.png)}' }] }] },
    };
    for (const e of [rule, replace, decl, adopted]) assert.equal(rewriteEvent(e, map), true);
    assert.equal(rule.data.adds[0]!.rule, 'a{background:url(/a/http://h/a.png)}');
    assert.equal(replace.data.replace, '@import "/a/http://h/i.css";');
    assert.equal(replace.data.replaceSync, 'b{background:url(/a/http://h/b.png)}');
    assert.equal(decl.data.set.value, 'url(/a/http://h/c.png)');
    assert.equal(adopted.data.styles[0]!.rules[0]!.rule, 'd{background:url(/a/http://h/d.png)}');
  });

  test("relative URLs (rules the page inserted, as it wrote them) resolve against the page's address from its Meta event", () => {
    const state = createRewriteState();
    rewriteEvent({ type: RrwebEventType.Meta, timestamp: 1, data: { href: 'https://h/shop/cart?x=1', width: 1, height: 1 } }, map, state);
    const rule = { type: 3, timestamp: 2, data: { source: IncrementalSource.StyleSheetRule, id: 5, adds: [{ rule: 'a{background:url(img/a.png)}' }] } };
    rewriteEvent(rule, map, state);
    assert.equal(rule.data.adds[0]!.rule, 'a{background:url(/a/https://h/shop/img/a.png)}');
    rewriteEvent({ type: RrwebEventType.Meta, timestamp: 3, data: { href: 'about:blank' } }, map, state);
    assert.equal(state.base, null);
  });

  test('custom and other events are never rewritten', () => {
    const events = [
      { type: RrwebEventType.Custom, timestamp: 1, data: { tag: 'domcast.step', payload: { url: 'http://h/a.png', style: 'url(http://h/a.png)' } } },
      { type: RrwebEventType.Custom, timestamp: 1, data: { tag: 'page', payload: { src: 'http://h/a.png' } } },
      { type: RrwebEventType.Plugin, timestamp: 1, data: { plugin: 'x', payload: { src: 'http://h/a.png' } } },
      { type: 3, timestamp: 1, data: { source: IncrementalSource.Input, id: 1, text: 'url(http://h/a.png)' } },
    ];
    const before = JSON.stringify(events);
    for (const e of events) assert.equal(rewriteEvent(e, map), false);
    assert.equal(JSON.stringify(events), before);
  });

  test('a spent budget leaves the remaining URLs as they were', () => {
    const imgs = Array.from({ length: 10 }, (_, i) => el('img', { src: `http://h/${i}.png` }));
    const budget = { chars: 20 };
    rewriteEvent(snapshot(imgs), map, createRewriteState(), budget);
    const rewritten = imgs.filter((i) => (i.attributes as Record<string, string>).src!.startsWith('/a/')).length;
    assert.ok(rewritten >= 1 && rewritten < 10, `${rewritten} rewritten`);
    assert.ok(budget.chars <= 0);
  });
});

describe('AssetRewriter', () => {
  test("maps to the session's asset paths, the fragment kept, URLs normalized as the browser requests them", () => {
    const rewriter = new AssetRewriter('s-1');
    const img = el('img', { src: 'HTTP://H.example/a b.png#frag' });
    assert.equal(rewriter.rewrite(snapshot([img])), true);
    assert.equal((img.attributes as Record<string, string>).src, `${assetPath('s-1', 'http://h.example/a%20b.png')}#frag`);
  });

  test('leaves a URL too long to be served from an asset key', () => {
    const long = `http://h/${'x'.repeat(10_000)}`;
    const img = el('img', { src: long });
    assert.equal(new AssetRewriter('s').rewrite(snapshot([img])), false);
    assert.equal((img.attributes as Record<string, string>).src, long);
  });

  test('keeps its state between events and continues from an adopted one', () => {
    const rewriter = new AssetRewriter('s');
    const styleText = text('', { isStyle: true });
    rewriter.rewrite(snapshot([el('style', {}, [styleText])]));
    const moved: RewriteState = structuredClone(rewriter.state);
    const other = new AssetRewriter('s');
    other.adopt(moved);
    const texts = mutation({ texts: [{ id: styleText.id, value: 'a{background:url(http://h/a.png)}' }] });
    assert.equal(other.rewrite(texts), true);
    assert.deepEqual(texts.data.texts, [{ id: styleText.id, value: `a{background:url(${assetPath('s', 'http://h/a.png')})}` }]);
  });
});
