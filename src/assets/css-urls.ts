/**
 * Finding and replacing the URLs in CSS text and `srcset` values, as browsers read them (CSS
 * Syntax Level 3 tokenizing, the HTML srcset parser), without I/O. Only the spans of URLs that are
 * replaced change: anything else, comments and invalid CSS included, comes out as it went in.
 */

/** The address a page's absolute http(s) URL (without its fragment) is served from, or null to leave it. */
export type UrlMap = (absUrl: string) => string | null;

/** The replacement of one URL as written (its CSS escapes decoded), or null to leave it. */
export type Swap = (raw: string) => string | null;

/** Told how many characters each replacement added (negative when it removed some). */
export type Grew = (chars: number) => void;

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

/** Without the C0 controls and spaces around it, as the URL parser takes it (by hand: a regex anchored at the end is quadratic on long runs of spaces). */
function trimControls(raw: string): string {
  let start = 0;
  let end = raw.length;
  while (start < end && raw.charCodeAt(start) <= 0x20) start++;
  while (end > start && raw.charCodeAt(end - 1) <= 0x20) end--;
  return start === 0 && end === raw.length ? raw : raw.slice(start, end);
}

/**
 * A Swap for `map`: resolves the URL as the browser would (against `base` when relative), leaves
 * fragment-only references, data:, blob: and every other non-http(s) URL alone, and keeps the
 * fragment (`sprite.svg#icon`) on what `map` gives, since the browser fetches without it.
 */
export function urlSwap(map: UrlMap, base?: string | null): Swap {
  return (raw) => {
    const text = trimControls(raw);
    if (text === '' || text.startsWith('#')) return null;
    // Decided on the scheme before parsing: a multi-megabyte data: URL is not copied to be left alone.
    const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
    if (scheme === undefined ? !base : scheme !== 'http' && scheme !== 'https') return null;
    let url: URL;
    try {
      url = new URL(text, base ?? undefined);
    } catch {
      return null;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    const fragment = url.hash;
    url.hash = '';
    const to = map(url.href);
    return to === null ? null : to + fragment;
  };
}

const CR = 0x0d;
const LF = 0x0a;
const FF = 0x0c;
const BACKSLASH = 0x5c;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const LPAREN = 0x28;
const RPAREN = 0x29;

const isNewline = (c: number): boolean => c === LF || c === CR || c === FF;
const isWhitespace = (c: number): boolean => c === 0x20 || c === 0x09 || isNewline(c);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isNameStart = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
const isName = (c: number): boolean => isNameStart(c) || isDigit(c) || c === 0x2d;
const isNonPrintable = (c: number): boolean => (c >= 0 && c <= 0x08) || c === 0x0b || (c >= 0x0e && c <= 0x1f) || c === 0x7f;

/** A cursor over CSS text that consumes tokens the way CSS Syntax Level 3 does (only those that matter here). */
class CssCursor {
  i = 0;
  readonly n: number;

  constructor(readonly s: string) {
    this.n = s.length;
  }

  /** The code unit at `at`, or -1 past the end. */
  at(at: number): number {
    return at < this.n ? this.s.charCodeAt(at) : -1;
  }

  validEscape(at: number): boolean {
    return this.at(at) === BACKSLASH && !isNewline(this.at(at + 1));
  }

  startsIdent(at: number): boolean {
    const c = this.at(at);
    if (c === 0x2d) {
      const next = this.at(at + 1);
      return isNameStart(next) || next === 0x2d || this.validEscape(at + 1);
    }
    if (c === BACKSLASH) return this.validEscape(at);
    return c >= 0 && isNameStart(c);
  }

  startsNumber(at: number): boolean {
    const c = this.at(at);
    if (c === 0x2b || c === 0x2d) return isDigit(this.at(at + 1)) || (this.at(at + 1) === 0x2e && isDigit(this.at(at + 2)));
    if (c === 0x2e) return isDigit(this.at(at + 1));
    return isDigit(c);
  }

  /** After a backslash: the code point it stands for. */
  escape(): string {
    if (this.i >= this.n) return '\uFFFD';
    if (isHex(this.at(this.i))) {
      const start = this.i;
      while (this.i - start < 6 && isHex(this.at(this.i))) this.i++;
      const cp = parseInt(this.s.slice(start, this.i), 16);
      if (this.at(this.i) === CR && this.at(this.i + 1) === LF) this.i += 2;
      else if (isWhitespace(this.at(this.i))) this.i++;
      return cp === 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ? '\uFFFD' : String.fromCodePoint(cp);
    }
    const cp = this.s.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return String.fromCodePoint(cp);
  }

  /** An ident sequence (escapes decoded). */
  name(): string {
    let out = '';
    let run = this.i;
    while (this.i < this.n) {
      const c = this.at(this.i);
      if (isName(c)) this.i++;
      else if (this.validEscape(this.i)) {
        out += this.s.slice(run, this.i);
        this.i++;
        out += this.escape();
        run = this.i;
      } else break;
    }
    return out + this.s.slice(run, this.i);
  }

  numeric(): void {
    if (this.at(this.i) === 0x2b || this.at(this.i) === 0x2d) this.i++;
    while (isDigit(this.at(this.i))) this.i++;
    if (this.at(this.i) === 0x2e && isDigit(this.at(this.i + 1))) {
      this.i++;
      while (isDigit(this.at(this.i))) this.i++;
    }
    const e = this.at(this.i);
    if (e === 0x45 || e === 0x65) {
      const sign = this.at(this.i + 1) === 0x2b || this.at(this.i + 1) === 0x2d ? 1 : 0;
      if (isDigit(this.at(this.i + 1 + sign))) {
        this.i += 1 + sign;
        while (isDigit(this.at(this.i))) this.i++;
      }
    }
    // A unit: `10url(x)` is a dimension then a parenthesis, not a URL.
    if (this.startsIdent(this.i)) this.name();
    else if (this.at(this.i) === 0x25) this.i++;
  }

  /** After the opening quote: the string's value, or null for a bad string (a raw newline ends it, unconsumed). */
  string(quote: number): string | null {
    let out = '';
    let run = this.i;
    while (this.i < this.n) {
      const c = this.at(this.i);
      if (c === quote) {
        out += this.s.slice(run, this.i);
        this.i++;
        return out;
      }
      if (isNewline(c)) return null;
      if (c === BACKSLASH) {
        out += this.s.slice(run, this.i);
        const next = this.at(this.i + 1);
        if (next === -1) this.i++;
        else if (isNewline(next)) this.i += next === CR && this.at(this.i + 2) === LF ? 3 : 2;
        else {
          this.i++;
          out += this.escape();
        }
        run = this.i;
      } else this.i++;
    }
    return out + this.s.slice(run);
  }

  /** After `url(` and its whitespace, an unquoted URL up to and with its `)`: the URL, or null for a bad url token. */
  url(): string | null {
    let out = '';
    let run = this.i;
    while (this.i < this.n) {
      const c = this.at(this.i);
      if (c === RPAREN) {
        out += this.s.slice(run, this.i);
        this.i++;
        return out;
      }
      if (isWhitespace(c)) {
        out += this.s.slice(run, this.i);
        while (isWhitespace(this.at(this.i))) this.i++;
        if (this.i >= this.n) return out;
        if (this.at(this.i) === RPAREN) {
          this.i++;
          return out;
        }
        return this.badUrl();
      }
      if (c === DQUOTE || c === SQUOTE || c === LPAREN || isNonPrintable(c)) return this.badUrl();
      if (c === BACKSLASH) {
        if (!this.validEscape(this.i)) return this.badUrl();
        out += this.s.slice(run, this.i);
        this.i++;
        out += this.escape();
        run = this.i;
      } else this.i++;
    }
    return out + this.s.slice(run);
  }

  private badUrl(): null {
    while (this.i < this.n) {
      const c = this.at(this.i);
      if (c === RPAREN) {
        this.i++;
        return null;
      }
      if (this.validEscape(this.i)) {
        this.i++;
        this.escape();
      } else this.i++;
    }
    return null;
  }
}

/** A CSS string in `quote`, able to hold any text. */
function cssString(value: string, quote: '"' | "'"): string {
  const q = quote.charCodeAt(0);
  let out = quote;
  let run = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const control = c < 0x20 || c === 0x7f;
    if (!control && c !== BACKSLASH && c !== q) continue;
    out += value.slice(run, i) + (control ? `\\${c.toString(16)} ` : `\\${value[i]}`);
    run = i + 1;
  }
  return out + value.slice(run) + quote;
}

/** `url(…)` for `value`: unquoted when it can be, as a string otherwise. */
function cssUrl(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (isWhitespace(c) || c === DQUOTE || c === SQUOTE || c === LPAREN || c === RPAREN || c === BACKSLASH || isNonPrintable(c)) return `url(${cssString(value, '"')})`;
  }
  return `url(${value})`;
}

/** Rebuilds a text from the spans that changed; the original string itself when none did. */
class Splicer {
  private readonly parts: string[] = [];
  private copied = 0;

  constructor(
    private readonly text: string,
    private readonly grew?: Grew,
  ) {}

  replace(start: number, end: number, by: string): void {
    this.parts.push(this.text.slice(this.copied, start), by);
    this.copied = end;
    this.grew?.(by.length - (end - start));
  }

  result(): string {
    if (this.parts.length === 0) return this.text;
    this.parts.push(this.text.slice(this.copied));
    return this.parts.join('');
  }
}

/**
 * Replaces, through `swap`, the URLs of `url(…)` (quoted or not, escapes and all), of `@import "…"`
 * and of the string entries of `image-set()` / `-webkit-image-set()`. Linear in the text, whatever
 * it holds; a replaced URL is written out anew (the rest of the text is copied as it was).
 */
export function rewriteCssWith(css: string, swap: Swap, grew?: Grew): string {
  const cur = new CssCursor(css);
  const out = new Splicer(css, grew);
  let depth = 0;
  // Depths at which an image-set( is open: its direct string arguments are URLs (not those of a nested type("…")).
  const imageSets: number[] = [];
  // The next token, if a string, is a URL: after `@import`, or after `url(` and whitespace.
  let urlString = false;
  while (cur.i < cur.n) {
    const start = cur.i;
    const c = cur.at(start);
    if (c === 0x2f && cur.at(start + 1) === 0x2a) {
      const end = css.indexOf('*/', start + 2);
      cur.i = end < 0 ? cur.n : end + 2;
      continue;
    }
    if (isWhitespace(c)) {
      cur.i++;
      continue;
    }
    const wantsString = urlString || (imageSets.length > 0 && imageSets.at(-1) === depth);
    urlString = false;
    if (c === DQUOTE || c === SQUOTE) {
      cur.i++;
      const value = cur.string(c);
      const to = wantsString && value !== null ? swap(value) : null;
      if (to !== null && to !== value) out.replace(start, cur.i, cssString(to, c === DQUOTE ? '"' : "'"));
    } else if (cur.startsNumber(start)) {
      cur.numeric();
    } else if (cur.startsIdent(start)) {
      const name = cur.name();
      if (cur.at(cur.i) !== LPAREN) continue;
      cur.i++;
      depth++;
      const fn = name.length <= 17 ? name.toLowerCase() : '';
      if (fn === 'url') {
        while (isWhitespace(cur.at(cur.i))) cur.i++;
        const q = cur.at(cur.i);
        if (q === DQUOTE || q === SQUOTE) {
          urlString = true;
          continue;
        }
        depth--;
        const value = cur.url();
        const to = value === null ? null : swap(value);
        if (to !== null && to !== value) out.replace(start, cur.i, cssUrl(to));
      } else if (fn === 'image-set' || fn === '-webkit-image-set') imageSets.push(depth);
    } else if (c === 0x40 && cur.startsIdent(start + 1)) {
      cur.i++;
      const name = cur.name();
      urlString = name.length === 6 && name.toLowerCase() === 'import';
    } else if (c === 0x23) {
      cur.i++;
      if (isName(cur.at(cur.i)) || cur.validEscape(cur.i)) cur.name();
    } else {
      // Any bracket nests (the tokenizer would pair `{` with `}`; only whether a string sits directly in image-set( matters here).
      if (c === LPAREN || c === 0x5b || c === 0x7b) depth++;
      else if ((c === RPAREN || c === 0x5d || c === 0x7d) && depth > 0) {
        if (imageSets.at(-1) === depth) imageSets.pop();
        depth--;
      }
      cur.i++;
    }
  }
  return out.result();
}

/** Replaces, through `swap`, the URL of each image candidate of a `srcset` (HTML's parser), keeping descriptors and separators. */
export function rewriteSrcsetWith(srcset: string, swap: Swap, grew?: Grew): string {
  const n = srcset.length;
  const space = (i: number): boolean => {
    const c = srcset.charCodeAt(i);
    return c === 0x20 || c === 0x09 || c === LF || c === FF || c === CR;
  };
  const out = new Splicer(srcset, grew);
  let i = 0;
  for (;;) {
    while (i < n && (space(i) || srcset.charCodeAt(i) === 0x2c)) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && !space(i)) i++;
    let end = i;
    if (srcset.charCodeAt(end - 1) === 0x2c) {
      while (end > start && srcset.charCodeAt(end - 1) === 0x2c) end--;
    } else {
      let inParens = false;
      while (i < n) {
        const c = srcset.charCodeAt(i++);
        if (c === LPAREN) inParens = true;
        else if (c === RPAREN) inParens = false;
        else if (c === 0x2c && !inParens) break;
      }
    }
    const url = srcset.slice(start, end);
    const to = swap(url);
    if (to !== null && to !== url) out.replace(start, end, to);
  }
  return out.result();
}

/** rewriteCssWith for a map: relative URLs are resolved against `base`, when given. */
export function rewriteCss(css: string, map: UrlMap, base?: string): string {
  return rewriteCssWith(css, urlSwap(map, base));
}

/** rewriteSrcsetWith for a map: relative URLs are resolved against `base`, when given. */
export function rewriteSrcset(srcset: string, map: UrlMap, base?: string): string {
  return rewriteSrcsetWith(srcset, urlSwap(map, base));
}
