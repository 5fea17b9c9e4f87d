import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Browser, BrowserContext } from 'playwright-core';
import type { Logger } from '../common/index.js';
import { launchRelayed, relayLimits, relayOf, type RelayDrop } from './cdp-relay.js';
import { CHROMIUM_ARGS, PLAYWRIGHT_ARGS, findChromium } from './chromium.js';
import { CpuGovernor } from './cpu-governor.js';
import type { NavigationPolicy } from './navigation-policy.js';

export const VIEWPORT = { width: 1280, height: 720 } as const;

/**
 * `run`: every run gets a Chromium of its own, closed with its context, so a page can slow or crash
 * only its own browser: its DevTools pipe, its browser process, its renderer. `shared`: one
 * Chromium for every run, one isolated context each (less memory and start-up time per run).
 */
export type BrowserIsolation = 'run' | 'shared';

export interface LauncherOptions {
  chromiumPath?: string | undefined;
  log: Logger;
  /** Default `run`. */
  isolation?: BrowserIsolation;
  /** VISUAL_MAX_EVENT_MB in characters: a page's binding call longer than this is dropped by the relay (default 16 MiB). */
  maxEventChars?: number;
  /** Told of what any browser's relay dropped (for /health/visual). */
  onDrop?: (drop: RelayDrop) => void;
  /** With `run` isolation, keep a browser launched ahead for the next run (default true; `domcast run` has no next run). */
  spare?: boolean;
}

/**
 * Launches Chromium. With `run` isolation each context gets a fresh browser, and one more is kept
 * launched ahead (after the first run), so a run does not wait for Chromium to start. With `shared`,
 * one Chromium is launched on first use and again if it dies.
 */
export class BrowserLauncher {
  private shared: Promise<Browser> | undefined;
  private spare: Promise<Browser> | undefined;
  private readonly launched = new Set<Browser>();
  private sink: Promise<Server> | undefined;
  private closed = false;
  readonly isolation: BrowserIsolation;
  /** CPU fairness between the browsers this launcher started (cpu-governor.ts). */
  readonly governor = new CpuGovernor();

  constructor(private readonly options: LauncherOptions) {
    this.isolation = options.isolation ?? 'run';
  }

  /** Chromium starts at once at most: on a small machine many starting together time each other out. */
  private static readonly MAX_STARTING = 2;
  private starting = 0;
  private readonly startQueue: (() => void)[] = [];

  private async launch(): Promise<Browser> {
    // A finishing start hands its slot straight to the next in line.
    if (this.starting >= BrowserLauncher.MAX_STARTING) await new Promise<void>((resolve) => this.startQueue.push(resolve));
    else this.starting++;
    try {
      return await this.launchNow();
    } finally {
      const next = this.startQueue.shift();
      if (next) next();
      else this.starting--;
    }
  }

  private async launchNow(): Promise<Browser> {
    const executablePath = findChromium({
      explicitPath: this.options.chromiumPath,
      install: true,
      log: (m) => this.options.log.warn(m),
    });
    // Its own process group, behind a relay off the event loop (cdp-relay.ts); signals are the server's
    // to handle (SIGTERM lets runs finish first), the browser goes when its connection does.
    const browser = await launchRelayed({
      executablePath,
      args: [...PLAYWRIGHT_ARGS, ...CHROMIUM_ARGS],
      limits: relayLimits(this.options.maxEventChars ?? 16 * 1024 * 1024),
    });
    this.options.log.debug({ executablePath, version: browser.version() }, 'chromium launched');
    const relay = relayOf(browser);
    if (relay) {
      const untrack = this.governor.track(relay.pid);
      browser.on('disconnected', untrack);
      relay.on('exit', untrack);
      relay.on('drop', (drop) => {
        // A run's own browser: the run logs it with its session id (runs/manager.ts). A shared one's
        // drop cannot be told apart by run, so it is logged here.
        if (this.isolation !== 'run') this.options.log.warn({ drop }, 'a page made its browser send more than the server reads; dropped unread');
        this.options.onDrop?.(drop);
      });
    }
    if (this.closed) {
      await browser.close().catch(() => undefined);
      throw new Error('browser launcher is closed');
    }
    // Every browser, spare, shared or a run's, is closed with the launcher, whatever became of it.
    this.launched.add(browser);
    browser.on('disconnected', () => this.launched.delete(browser));
    return browser;
  }

  private launchShared(): Promise<Browser> {
    const launched = this.launch();
    launched.then(
      (browser) =>
        browser.on('disconnected', () => {
          if (this.shared === launched) this.shared = undefined;
        }),
      () => {
        if (this.shared === launched) this.shared = undefined;
      },
    );
    return launched;
  }

  /** A browser for one run: the spare when there is a live one, and a new spare launched behind it. */
  private async takeOwn(): Promise<Browser> {
    const spare = this.spare;
    this.spare = undefined;
    let got = await spare?.catch(() => undefined);
    if (!got?.isConnected()) got = await this.launch();
    // Runs that start together share one spare: the first to get here launches it.
    if (!this.closed && !this.spare && this.options.spare !== false) {
      const next = this.launch();
      next.catch(() => {
        if (this.spare === next) this.spare = undefined;
      });
      this.spare = next;
    }
    return got;
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
    const direct = policy?.directHosts();
    const proxy = direct ? { server: `http://127.0.0.1:${await this.sinkPort()}`, bypass: ['<-loopback>', ...direct].join(',') } : undefined;
    const contextOptions = { viewport: VIEWPORT, deviceScaleFactor: 1, serviceWorkers: 'block' as const, ...(proxy ? { proxy } : {}) };
    if (this.isolation === 'shared') {
      const pending = (this.shared ??= this.launchShared());
      let browser = await pending;
      // A browser that just died may not have reported 'disconnected' yet: the next run gets a fresh one.
      if (!browser.isConnected()) {
        if (this.shared === pending) this.shared = undefined;
        browser = await (this.shared ??= this.launchShared());
      }
      return browser.newContext(contextOptions);
    }
    const browser = await this.takeOwn();
    if (this.closed) {
      await browser.close().catch(() => undefined);
      throw new Error('browser launcher is closed');
    }
    const release = (): void => {
      void browser.close().catch(() => undefined);
    };
    browser.on('disconnected', release);
    try {
      const context = await browser.newContext(contextOptions);
      context.on('close', release);
      return context;
    } catch (err) {
      release();
      throw err;
    }
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
    const pending = [this.shared, this.spare];
    this.shared = this.spare = undefined;
    await Promise.all(pending.map((p) => p?.catch(() => undefined)));
    const browsers = [...this.launched];
    this.launched.clear();
    await Promise.all(browsers.map((b) => b?.close().catch(() => undefined)));
    const sink = await this.sink?.catch(() => undefined);
    this.sink = undefined;
    await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
  }
}
