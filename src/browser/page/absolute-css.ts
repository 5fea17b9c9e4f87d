/**
 * rrweb makes the URLs of its snapshots absolute, each against its own node's document, but sends
 * CSS that changes later as the page wrote it: a style attribute's changed properties, new text of
 * a <style>, rules inserted or replaced through the CSSOM, adopted stylesheets. The server can only
 * resolve what is still relative against the page's address (its Meta event), which is wrong for
 * any other document: a same-origin frame (recorded by the page's recorder, in the page's events)
 * or a cross-origin one (whose Meta the server drops). Here, in the page, each node's own document
 * is known, so these URLs are made absolute against it before the event leaves.
 */
// The tokenizer alone, not the assets module's index: this runs in the page, without Node's modules.
import { rewriteCss } from '../../assets/css-urls.js';

/** rrweb's EventType.IncrementalSnapshot and the IncrementalSource values whose CSS is sent as written (plain numbers: the event is read as JSON). */
const INCREMENTAL = 3;
const Source = { Mutation: 0, StyleSheetRule: 8, StyleDeclaration: 13, AdoptedStyleSheet: 15 } as const;

/** Only CSS that may hold a URL is parsed: most style changes are colours, sizes and transforms. */
const MAY_HOLD_URL = /url\(|@import|image-set\(/i;

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The node rrweb recorded as `id` (its mirror), or null. */
export type NodeOf = (id: number) => Node | null;

/** What relative URLs of the stylesheet owned by `node` (a <style> or <link>) or of its CSS are relative to. */
function baseOf(node: Node | null): string | null {
  if (!node) return null;
  if (node.nodeName === 'LINK') {
    const href = (node as HTMLLinkElement).href;
    if (href) return href;
  }
  return node.baseURI;
}

function absolute(holder: Json | unknown[], key: string | number, base: string | null): void {
  const css = (holder as Record<string | number, unknown>)[key];
  if (base === null || typeof css !== 'string' || !MAY_HOLD_URL.test(css)) return;
  (holder as Record<string | number, unknown>)[key] = rewriteCss(css, (url) => url, base);
}

function mutation(data: Json, nodeOf: NodeOf): void {
  if (Array.isArray(data.texts)) {
    for (const t of data.texts as unknown[]) {
      if (!isRecord(t) || typeof t.id !== 'number' || typeof t.value !== 'string' || !MAY_HOLD_URL.test(t.value)) continue;
      const node = nodeOf(t.id);
      if (node?.parentNode?.nodeName === 'STYLE') absolute(t, 'value', node.baseURI);
    }
  }
  if (Array.isArray(data.attributes)) {
    for (const a of data.attributes as unknown[]) {
      // A whole style attribute (a string) came through rrweb's transformAttribute, absolute already; a diff did not.
      if (!isRecord(a) || typeof a.id !== 'number' || !isRecord(a.attributes) || !isRecord(a.attributes.style)) continue;
      const style = a.attributes.style;
      const base = nodeOf(a.id)?.baseURI ?? null;
      for (const property of Object.keys(style)) {
        const v = style[property];
        if (Array.isArray(v)) absolute(v, 0, base);
        else absolute(style, property, base);
      }
    }
  }
}

/**
 * Makes the relative URLs of the CSS in `event` (changed in place) absolute against the document
 * of the node each belongs to; a constructed stylesheet named by no node gets `fallbackBase` (this
 * recorder's document). Whatever is not an incremental event is left alone.
 */
export function absoluteCssUrls(event: unknown, nodeOf: NodeOf, fallbackBase: string): void {
  if (!isRecord(event) || event.type !== INCREMENTAL || !isRecord(event.data)) return;
  const data = event.data;
  switch (data.source) {
    case Source.Mutation:
      mutation(data, nodeOf);
      return;
    case Source.StyleSheetRule: {
      const base = typeof data.id === 'number' ? baseOf(nodeOf(data.id)) : fallbackBase;
      if (Array.isArray(data.adds)) for (const add of data.adds as unknown[]) if (isRecord(add)) absolute(add, 'rule', base);
      absolute(data, 'replace', base);
      absolute(data, 'replaceSync', base);
      return;
    }
    case Source.StyleDeclaration: {
      const base = typeof data.id === 'number' ? baseOf(nodeOf(data.id)) : fallbackBase;
      if (isRecord(data.set)) absolute(data.set, 'value', base);
      return;
    }
    case Source.AdoptedStyleSheet: {
      // Constructed sheets resolve against the document that made them: the one they are adopted in, as a rule.
      const base = typeof data.id === 'number' ? (nodeOf(data.id)?.baseURI ?? fallbackBase) : fallbackBase;
      if (!Array.isArray(data.styles)) return;
      for (const style of data.styles as unknown[]) {
        if (!isRecord(style) || !Array.isArray(style.rules)) continue;
        for (const rule of style.rules as unknown[]) if (isRecord(rule)) absolute(rule, 'rule', base);
      }
    }
  }
}
