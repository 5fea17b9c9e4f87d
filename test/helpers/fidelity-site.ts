import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { projectRoot } from '../../src/common/index.js';

const SITE = join(projectRoot, 'test', 'fixtures', 'sites', 'fidelity');

/** The colour of each solid image of the site, by file name. */
export const COLORS: Record<string, [number, number, number]> = {
  red: [230, 30, 30],
  green: [30, 180, 60],
  blue: [30, 80, 230],
  teal: [0, 150, 150],
  navy: [10, 20, 110],
  yellow: [240, 210, 0],
  gray: [128, 128, 128],
  orange: [250, 140, 0],
  purple: [130, 40, 170],
  brown: [120, 70, 20],
  secret: [250, 100, 180],
};

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A solid-colour RGB PNG. */
export function solidPng([r, g, b]: [number, number, number], size = 32): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: size }, () => [r, g, b]).flat())]);
  const raw = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** The icon font Playwright ships (codicons): a web font every machine that runs the tests has. */
function iconFont(): Buffer {
  const dir = join(projectRoot, 'node_modules', 'playwright-core', 'lib', 'vite', 'recorder', 'assets');
  const file = readdirSync(dir).find((f) => /^codicon.*\.ttf$/.test(f));
  if (!file) throw new Error(`no codicon font in ${dir}`);
  return readFileSync(join(dir, file));
}

export interface FidelitySite {
  /** The site's origin (http://127.0.0.1:port). */
  a: string;
  /** A second origin that serves images without CORS headers, and the frame of frames.html. */
  b: string;
  /** The second server as another site (http://localhost:port): Chromium puts its frames in a process of their own. */
  c: string;
  /** Requests each origin got, in order (path and user agent). */
  requests: { origin: 'a' | 'b'; path: string; userAgent: string }[];
  close(): Promise<void>;
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const origin = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

/**
 * The fidelity fixture site (test/fixtures/sites/fidelity) on two origins of 127.0.0.1: relative
 * and absolute images, CSS backgrounds from a stylesheet, an inline <style> and a style attribute,
 * an image served only with the site's HttpOnly cookie, a cross-origin image without CORS headers,
 * an SVG sprite, an icon web font, srcset, an image inserted 2 s after load and a lazy one; and
 * frames.html: a same-origin frame (in /inner/), a cross-origin one of the same site, a cross-site
 * one (b as localhost) and one inside a private region, each with relative images, a relative
 * background in its <style>, srcset and URLs set after load, from a pics/ folder beside the frame's
 * document that the page's own folder does not have.
 */
export async function startFidelitySite(): Promise<FidelitySite> {
  const requests: FidelitySite['requests'] = [];
  const font = iconFont();
  let a = '';
  let b = '';
  let c = '';
  const image = (res: ServerResponse, name: string): void => {
    const color = COLORS[name];
    if (!color) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'no-store' }).end(solidPng(color));
  };
  const serverA = await listen((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ origin: 'a', path, userAgent: req.headers['user-agent'] ?? '' });
    if (path === '/' || path === '/index.html') {
      const html = readFileSync(join(SITE, 'index.html'), 'utf8').replaceAll('__A__', a).replaceAll('__B__', b);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': 'fixture_session=let-me-in; HttpOnly; Path=/; SameSite=Lax' }).end(html);
      return;
    }
    if (path === '/frames.html' || path === '/inner/frame-same.html') {
      const html = readFileSync(join(SITE, ...path.slice(1).split('/')), 'utf8').replaceAll('__B__', b).replaceAll('__C__', c);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      return;
    }
    if (path === '/css/site.css') {
      res.writeHead(200, { 'content-type': 'text/css' }).end(readFileSync(join(SITE, 'css', 'site.css')));
      return;
    }
    if (path === '/img/sprite.svg') {
      res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(readFileSync(join(SITE, 'img', 'sprite.svg')));
      return;
    }
    if (path === '/fonts/icons.ttf') {
      res.writeHead(200, { 'content-type': 'font/ttf' }).end(font);
      return;
    }
    if (path === '/private/secret.png') {
      if (!/(^|;\s*)fixture_session=let-me-in(;|$)/.test(req.headers.cookie ?? '')) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('no cookie, no image');
        return;
      }
      image(res, 'secret');
      return;
    }
    // pics/ only beside the same-origin frame's document: its relative URLs resolved against the page would miss.
    const m = /^\/(?:img|inner\/pics)\/([a-z]+)\.png$/.exec(path);
    if (m) return image(res, m[1]!);
    res.writeHead(404).end();
  });
  const serverB = await listen((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ origin: 'b', path, userAgent: req.headers['user-agent'] ?? '' });
    if (path === '/frame.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(readFileSync(join(SITE, 'frame.html')));
      return;
    }
    const m = /^\/(?:img|pics)\/([a-z]+)\.png$/.exec(path);
    if (m) return image(res, m[1]!);
    res.writeHead(404).end();
  });
  a = origin(serverA);
  b = origin(serverB);
  c = b.replace('127.0.0.1', 'localhost');
  return {
    a,
    b,
    c,
    requests,
    async close() {
      for (const s of [serverA, serverB]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
