import { createServer, type AddressInfo, type Server } from 'node:net';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import type { Logger } from '../common/index.js';
import { CHROMIUM_ARGS, findChromium } from './chromium.js';
import type { NavigationPolicy } from './navigation-policy.js';

export const VIEWPORT = { width: 1280, height: 720 } as const;

/** One Chromium per process, launched on first use and again if it dies; one isolated context per session. */
export class BrowserLauncher {
  private browser: Promise<Browser> | undefined;
  private sink: Promise<Server> | undefined;
  private closed = false;

  constructor(
    private readonly options: { chromiumPath?: string | undefined; log: Logger },
  ) {}

  private launch(): Promise<Browser> {
    const executablePath = findChromium({
      explicitPath: this.options.chromiumPath,
      install: true,
      log: (m) => this.options.log.warn(m),
    });
    // Signals are the server's to handle (SIGTERM lets runs finish first); Playwright would kill the browser at once.
    const launched = chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
    launched.then(
      (b) => {
        this.options.log.info({ executablePath, version: b.version() }, 'chromium launched');
        b.on('disconnected', () => {
          if (this.browser === launched) this.browser = undefined;
        });
      },
      () => {
        if (this.browser === launched) this.browser = undefined;
      },
    );
    return launched;
  }

  /**
   * A new isolated context. With `policy` and an ALLOWED_HOSTS list, only the listed hosts are
   * reached directly: every other connection goes to `sink`, a proxy that accepts nothing. The
   * guard refuses those requests before they are sent anyway; this stops what it never sees:
   * Chromium's speculative connections (it preconnects to a frame's or a new page's URL before the
   * request exists) and WebRTC over TCP (TURN, ICE-TCP), whose sockets follow the proxy settings.
   * `<-loopback>` because Chromium otherwise never proxies loopback addresses.
   */
  async newContext(policy?: NavigationPolicy): Promise<BrowserContext> {
    if (this.closed) throw new Error('browser launcher is closed');
    const pending = (this.browser ??= this.launch());
    let browser = await pending;
    // A browser that just died may not have reported 'disconnected' yet: the next run gets a fresh one.
    if (!browser.isConnected()) {
      if (this.browser === pending) this.browser = undefined;
      browser = await (this.browser ??= this.launch());
    }
    const direct = policy?.directHosts();
    const proxy = direct ? { server: `http://127.0.0.1:${await this.sinkPort()}`, bypass: ['<-loopback>', ...direct].join(',') } : undefined;
    return browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, serviceWorkers: 'block', ...(proxy ? { proxy } : {}) });
  }

  /** The proxy that takes nothing: a connection to it is closed at once, so Chromium fails the request with a proxy error. */
  private async sinkPort(): Promise<number> {
    this.sink ??= new Promise<Server>((resolve, reject) => {
      const server = createServer((socket) => socket.destroy());
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
    return ((await this.sink).address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.closed = true;
    const b = this.browser;
    this.browser = undefined;
    if (b) await (await b.catch(() => undefined))?.close();
    const sink = await this.sink?.catch(() => undefined);
    this.sink = undefined;
    await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
  }
}
