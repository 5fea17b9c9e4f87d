import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import type { Logger } from '../common/index.js';
import { CHROMIUM_ARGS, findChromium } from './chromium.js';

export const VIEWPORT = { width: 1280, height: 720 } as const;

/** One Chromium per process, launched on first use and again if it dies; one isolated context per session. */
export class BrowserLauncher {
  private browser: Promise<Browser> | undefined;
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

  async newContext(): Promise<BrowserContext> {
    if (this.closed) throw new Error('browser launcher is closed');
    const pending = (this.browser ??= this.launch());
    let browser = await pending;
    // A browser that just died may not have reported 'disconnected' yet: the next run gets a fresh one.
    if (!browser.isConnected()) {
      if (this.browser === pending) this.browser = undefined;
      browser = await (this.browser ??= this.launch());
    }
    return browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, serviceWorkers: 'block' });
  }

  async close(): Promise<void> {
    this.closed = true;
    const b = this.browser;
    this.browser = undefined;
    if (b) await (await b.catch(() => undefined))?.close();
  }
}
