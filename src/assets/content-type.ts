/**
 * The type a captured body is served with. The recorded site chose its Content-Type; we serve its
 * bytes from our own origin, so only types a browser can never run as a page of ours pass as they
 * are: images, CSS, fonts, audio and video. SVG is a document that can carry script, but `<img>`
 * and `<use>` need it as `image/svg+xml`: it passes, except to a navigation (`asDocument`), which
 * gets its source as text. Everything else is text (HTML, XHTML, XML, XSLT, JavaScript, JSON…)
 * shown as `text/plain`, or bytes to download as `application/octet-stream`; never a type a
 * browser renders as a document with script.
 */

const IMAGES = new Set([
  'image/png',
  'image/apng',
  'image/jpeg',
  'image/pjpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/bmp',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/tiff',
]);

const FONTS = new Set([
  'font/woff',
  'font/woff2',
  'font/ttf',
  'font/otf',
  'font/sfnt',
  'font/collection',
  'application/font-woff',
  'application/font-woff2',
  'application/font-sfnt',
  'application/x-font-woff',
  'application/x-font-ttf',
  'application/x-font-otf',
  'application/x-font-opentype',
  'application/vnd.ms-fontobject',
]);

/** Audio and video subtypes are codecs and containers only: none is a document or a script. */
const MEDIA = /^(audio|video)\/[a-z0-9][a-z0-9.+-]{0,63}$/;

export const SVG = 'image/svg+xml';
export const PLAIN_TEXT = 'text/plain; charset=utf-8';
export const BINARY = 'application/octet-stream';

/** A media type as RFC 9110 spells it; anything else is not a type at all. */
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;

/** Types whose bodies are text: shown as plain text rather than downloaded. */
const TEXTUAL = /^(text\/|application\/([a-z0-9.-]+\+)?(json|xml|javascript|ecmascript|x-javascript|x-ecmascript)$)|\+(xml|json)$/;

/** A charset worth keeping (CSS and SVG are decoded by it); anything odder is dropped. */
const CHARSET = /;\s*charset\s*=\s*"?([A-Za-z0-9._:-]{1,40})"?\s*(;|$)/i;

export function servedContentType(captured: string, asDocument = false): string {
  const essence = (captured.split(';', 1)[0] ?? '').trim().toLowerCase();
  if (!MEDIA_TYPE.test(essence)) return BINARY;
  const charset = CHARSET.exec(captured)?.[1];
  const withCharset = (type: string) => (charset ? `${type}; charset=${charset}` : type);
  if (essence === 'text/css') return withCharset(essence);
  if (essence === SVG) return asDocument ? PLAIN_TEXT : withCharset(SVG);
  if (IMAGES.has(essence) || FONTS.has(essence) || MEDIA.test(essence)) return essence;
  return TEXTUAL.test(essence) ? PLAIN_TEXT : BINARY;
}
