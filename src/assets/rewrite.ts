/**
 * Rewrites the asset URLs inside a page's rrweb events so viewers load them from our origin
 * (`assetPath`) rather than from the recorded site. Pure functions over parsed JSON: the ingest
 * path calls them after parsing a batch and before measuring and writing it out, inline or in a
 * worker thread.
 */
import { RrwebEventType } from '../protocol/index.js';
import { rewriteCssWith, rewriteSrcsetWith, urlSwap, type Grew, type Swap, type UrlMap } from './css-urls.js';
import { assetKey, assetPath, isCapturable, urlOfKey } from './paths.js';

export { rewriteCss, rewriteSrcset, type UrlMap } from './css-urls.js';

/** rrweb-snapshot's NodeType and @rrweb/types' IncrementalSource values we read (plain JSON, so the numbers). */
const NodeType = { Element: 2, Text: 3 } as const;
const Source = { Mutation: 0, StyleSheetRule: 8, StyleDeclaration: 13, AdoptedStyleSheet: 15 } as const;

/** What a later mutation of a node needs to know of it, by rrweb id. */
export const NodeKind = {
  /** A <style> (HTML or SVG): text added under it is CSS. */
  StyleElement: 1,
  /** The text of a <style>: its later values are CSS. */
  StyleText: 2,
  /** A <link> whose rel loads something (stylesheet, icon, preload…): its href is an asset. */
  AssetLink: 3,
  /** Any other <link>: its href is left alone, unless its rel changes. */
  OtherLink: 4,
  /** SVG <use>, <image>, <feImage>: href and xlink:href are assets. */
  SvgRef: 5,
} as const;
export type NodeKind = (typeof NodeKind)[keyof typeof NodeKind];

/**
 * What rewriting a session's events remembers from one event to the next. Plain data: it is
 * cloned into the ingest worker with a batch and back with the result.
 */
export interface RewriteState {
  /** The page's address, from its latest Meta event: what relative URLs are resolved against. */
  base: string | null;
  /** The kinds of the nodes later mutations need, by rrweb id; emptied by each FullSnapshot. */
  nodes: Map<number, NodeKind>;
}

export function createRewriteState(): RewriteState {
  return { base: null, nodes: new Map() };
}

/** Characters rewriting may still add to what it rewrites; URLs met once it is spent are left as they were. */
export interface RewriteBudget {
  chars: number;
}

/** Nodes remembered per session: a page with more <style>s, <link>s and SVG references than this has the rest's later mutations left as they are. */
export const MAX_TRACKED_NODES = 16_384;

/** Nodes visited per event: a tree from JSON is visited once per node, but an event built in memory may share or loop. */
export const MAX_NODES_PER_EVENT = 1_000_000;

/** <link rel> tokens whose href the browser fetches as an image, a stylesheet or a font. */
const ASSET_RELS = new Set(['stylesheet', 'icon', 'apple-touch-icon', 'apple-touch-icon-precomposed', 'mask-icon', 'preload', 'prefetch']);
/** Elements whose `src` is not an asset: frames are navigations (the viewer drops their src), scripts never run. */
const NO_SRC = new Set(['iframe', 'frame', 'script']);
const SVG_REFS = new Set(['use', 'image', 'feimage']);

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** How an attribute's value holds URLs. */
type ValueForm = 'url' | 'srcset' | 'css';

/** An attribute's value, its name matched case-insensitively; undefined when absent. */
function attribute(attrs: Json, name: string): unknown {
  for (const key of Object.keys(attrs)) if (key.length === name.length && key.toLowerCase() === name) return attrs[key];
  return undefined;
}

function isAssetRel(rel: unknown): boolean {
  return typeof rel === 'string' && rel.toLowerCase().split(/[\t\n\f\r ]+/).some((token) => ASSET_RELS.has(token));
}

function elementKind(tag: string, attrs: Json | null): NodeKind | undefined {
  if (tag === 'style') return NodeKind.StyleElement;
  if (tag === 'link') return attrs && isAssetRel(attribute(attrs, 'rel')) ? NodeKind.AssetLink : NodeKind.OtherLink;
  return SVG_REFS.has(tag) ? NodeKind.SvgRef : undefined;
}

/**
 * How the attribute `name` (lowercase) holds URLs: on an element of `tag` with `attrs` (a snapshot
 * or an added node) or, for an attribute mutation (tag null), on a node of `kind`. A mutated `src`
 * is rewritten whatever the node: rrweb records a frame's as `rr_src`, and another element's src
 * is inert when it is not an asset.
 */
function valueForm(name: string, tag: string | null, kind: NodeKind | undefined, attrs: Json | null): ValueForm | null {
  switch (name) {
    case 'src':
      if (tag === null || tag === '') return 'url';
      if (NO_SRC.has(tag)) return null;
      if (tag === 'input') {
        const type = attrs ? attribute(attrs, 'type') : undefined;
        return typeof type === 'string' && type.toLowerCase() === 'image' ? 'url' : null;
      }
      return 'url';
    case 'srcset':
      return 'srcset';
    case 'poster':
    case 'background':
      return 'url';
    case 'style':
    case '_csstext':
      return 'css';
    case 'href':
    case 'xlink:href':
      return kind === NodeKind.AssetLink || kind === NodeKind.SvgRef ? 'url' : null;
    default:
      return null;
  }
}

/** One event's rewrite: the URL swap, what it changed, and what it may still spend. */
class EventRewrite {
  changed = false;
  private nodesLeft = MAX_NODES_PER_EVENT;
  private readonly swap: Swap;
  private readonly grew: Grew;

  constructor(
    map: UrlMap,
    private readonly state: RewriteState,
    budget: RewriteBudget,
  ) {
    const swap = urlSwap(map, state.base);
    this.swap = (raw) => (budget.chars > 0 ? swap(raw) : null);
    this.grew = (chars) => {
      budget.chars -= chars;
    };
  }

  private set(holder: Json | unknown[], key: string | number, value: string, form: ValueForm): void {
    let next: string;
    if (form === 'css') next = rewriteCssWith(value, this.swap, this.grew);
    else if (form === 'srcset') next = rewriteSrcsetWith(value, this.swap, this.grew);
    else {
      next = this.swap(value) ?? value;
      this.grew(next.length - value.length);
    }
    if (next === value) return;
    (holder as Record<string | number, unknown>)[key] = next;
    this.changed = true;
  }

  private css(holder: Json | unknown[], key: string | number): void {
    const value = (holder as Record<string | number, unknown>)[key];
    if (typeof value === 'string') this.set(holder, key, value, 'css');
  }

  private kind(id: unknown): NodeKind | undefined {
    return typeof id === 'number' ? this.state.nodes.get(id) : undefined;
  }

  private learn(id: unknown, kind: NodeKind | undefined): void {
    if (typeof id !== 'number') return;
    const nodes = this.state.nodes;
    if (kind === undefined) nodes.delete(id);
    else if (nodes.size < MAX_TRACKED_NODES || nodes.has(id)) nodes.set(id, kind);
  }

  fullSnapshot(data: Json): void {
    this.state.nodes.clear();
    this.tree(data.node, false);
  }

  meta(data: Json): void {
    this.state.base = typeof data.href === 'string' && isCapturable(data.href) ? data.href : null;
  }

  /** A serialized node and its descendants, without recursion. */
  private tree(root: unknown, underStyle: boolean): void {
    const nodes: unknown[] = [root];
    const inStyle: boolean[] = [underStyle];
    while (nodes.length > 0) {
      if (this.nodesLeft-- <= 0) return;
      const node = nodes.pop();
      const parentIsStyle = inStyle.pop()!;
      if (!isRecord(node)) continue;
      let isStyle = false;
      if (node.type === NodeType.Element) {
        const tag = typeof node.tagName === 'string' ? node.tagName.toLowerCase() : '';
        const attrs = isRecord(node.attributes) ? node.attributes : null;
        const kind = elementKind(tag, attrs);
        this.learn(node.id, kind);
        if (attrs) this.elementAttributes(attrs, tag, kind);
        isStyle = tag === 'style';
      } else if (node.type === NodeType.Text) {
        const styleText = node.isStyle === true || parentIsStyle;
        this.learn(node.id, styleText ? NodeKind.StyleText : undefined);
        if (styleText) this.css(node, 'textContent');
      }
      if (!Array.isArray(node.childNodes)) continue;
      // Last child first onto the stack: nodes are visited in document order.
      const children = node.childNodes as unknown[];
      for (let i = children.length - 1; i >= 0; i--) {
        nodes.push(children[i]);
        inStyle.push(isStyle);
      }
    }
  }

  private elementAttributes(attrs: Json, tag: string, kind: NodeKind | undefined): void {
    for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      if (typeof value !== 'string') continue;
      const form = valueForm(key.toLowerCase(), tag, kind, attrs);
      if (form) this.set(attrs, key, value, form);
    }
  }

  /** In the order the replayer applies them: removes, adds, texts, attributes. */
  mutation(data: Json): void {
    if (Array.isArray(data.removes)) for (const r of data.removes as unknown[]) if (isRecord(r)) this.learn(r.id, undefined);
    if (Array.isArray(data.adds)) {
      const adds = (data.adds as unknown[]).filter(isRecord);
      // Elements first: a text added under a <style> may be listed before it.
      for (const add of adds) {
        const node = add.node;
        if (isRecord(node) && node.type === NodeType.Element && typeof node.tagName === 'string') {
          this.learn(node.id, elementKind(node.tagName.toLowerCase(), isRecord(node.attributes) ? node.attributes : null));
        }
      }
      for (const add of adds) this.tree(add.node, this.kind(add.parentId) === NodeKind.StyleElement);
    }
    if (Array.isArray(data.texts)) {
      for (const t of data.texts as unknown[]) if (isRecord(t) && this.kind(t.id) === NodeKind.StyleText) this.css(t, 'value');
    }
    if (Array.isArray(data.attributes)) {
      for (const a of data.attributes as unknown[]) if (isRecord(a) && isRecord(a.attributes)) this.mutatedAttributes(a.id, a.attributes);
    }
  }

  private mutatedAttributes(id: unknown, attrs: Json): void {
    let kind = this.kind(id);
    if (kind === NodeKind.AssetLink || kind === NodeKind.OtherLink) {
      const rel = attribute(attrs, 'rel');
      if (rel !== undefined) {
        kind = isAssetRel(rel) ? NodeKind.AssetLink : NodeKind.OtherLink;
        this.learn(id, kind);
      }
    }
    for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      const name = key.toLowerCase();
      if (name === 'style' && isRecord(value)) {
        // rrweb's diff of a style attribute: property → value, [value, priority], or false (removed).
        for (const property of Object.keys(value)) {
          const v = value[property];
          if (typeof v === 'string') this.css(value, property);
          else if (Array.isArray(v)) this.css(v, 0);
        }
        continue;
      }
      if (typeof value !== 'string') continue;
      const form = valueForm(name, null, kind, null);
      if (form) this.set(attrs, key, value, form);
    }
  }

  styleSheetRule(data: Json): void {
    if (Array.isArray(data.adds)) for (const add of data.adds as unknown[]) if (isRecord(add)) this.css(add, 'rule');
    this.css(data, 'replace');
    this.css(data, 'replaceSync');
  }

  styleDeclaration(data: Json): void {
    if (isRecord(data.set)) this.css(data.set, 'value');
  }

  adoptedStyleSheet(data: Json): void {
    if (!Array.isArray(data.styles)) return;
    for (const style of data.styles as unknown[]) {
      if (!isRecord(style) || !Array.isArray(style.rules)) continue;
      for (const rule of style.rules as unknown[]) if (isRecord(rule)) this.css(rule, 'rule');
    }
  }
}

/**
 * Rewrites, in place, the asset URLs of one rrweb event through `map`, and says whether it
 * changed anything: element attributes (src, srcset, poster, background, style, rrweb's inlined
 * `_cssText`; href and xlink:href of asset <link>s and SVG <use>/<image>/<feImage>) and <style>
 * text in FullSnapshots and mutations, stylesheet rules (inserted, replaced, adopted) and style
 * declarations. `state` carries what later events need (the page's address, which nodes are
 * style text, links or SVG references) and is updated; custom, plugin and input events are left.
 * Whatever the event holds, it is not recursed into and its work is bounded by its size.
 */
export function rewriteEvent(event: unknown, map: UrlMap, state: RewriteState = createRewriteState(), budget: RewriteBudget = { chars: Infinity }): boolean {
  if (!isRecord(event) || !isRecord(event.data)) return false;
  const data = event.data;
  const type = event.type;
  if (type !== RrwebEventType.Meta && type !== RrwebEventType.FullSnapshot && type !== RrwebEventType.IncrementalSnapshot) return false;
  const rewrite = new EventRewrite(map, state, budget);
  switch (type) {
    case RrwebEventType.Meta:
      rewrite.meta(data);
      break;
    case RrwebEventType.FullSnapshot:
      rewrite.fullSnapshot(data);
      break;
    case RrwebEventType.IncrementalSnapshot:
      if (data.source === Source.Mutation) rewrite.mutation(data);
      else if (data.source === Source.StyleSheetRule) rewrite.styleSheetRule(data);
      else if (data.source === Source.StyleDeclaration) rewrite.styleDeclaration(data);
      else if (data.source === Source.AdoptedStyleSheet) rewrite.adoptedStyleSheet(data);
      break;
  }
  return rewrite.changed;
}

/**
 * A session's rewrite: each http(s) URL becomes `assetPath(sessionId, url)`, except those too
 * long for an asset key (the route could not serve them), and the state is kept between events.
 */
export class AssetRewriter {
  private readonly map: UrlMap;

  constructor(
    readonly sessionId: string,
    private current: RewriteState = createRewriteState(),
  ) {
    this.map = (url) => (isCapturable(url) && urlOfKey(assetKey(url)) === url ? assetPath(sessionId, url) : null);
  }

  /** What the next event's rewrite starts from (for a worker to continue from). */
  get state(): RewriteState {
    return this.current;
  }

  /** Continues from a state a worker reached with this session's previous batch. */
  adopt(state: RewriteState): void {
    this.current = state;
  }

  rewrite(event: unknown, budget?: RewriteBudget): boolean {
    return rewriteEvent(event, this.map, this.current, budget);
  }
}
