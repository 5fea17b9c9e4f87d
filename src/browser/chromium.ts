import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ChromiumNotFoundError } from '../common/index.js';

const SYSTEM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Chromium builds Playwright may have cached (`~/.cache/ms-playwright/chromium-*`), newest first. */
function playwrightCacheCandidates(): string[] {
  const root = process.env.PLAYWRIGHT_BROWSERS_PATH ?? join(homedir(), '.cache', 'ms-playwright');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => /^chromium(_headless_shell)?-\d+$/.test(d))
    .sort()
    .reverse()
    .flatMap((d) => [
      join(root, d, 'chrome-linux', 'chrome'),
      join(root, d, 'chrome-linux64', 'chrome'),
      join(root, d, 'chrome-linux', 'headless_shell'),
      join(root, d, 'chrome-headless-shell-linux64', 'chrome-headless-shell'),
    ]);
}

export interface FindChromiumOptions {
  /** `CHROMIUM_PATH`; when set it must point at an executable. */
  explicitPath?: string | undefined;
  /** Install Debian's `chromium` package when nothing is found and we are root on Debian. */
  install?: boolean;
  log?: (message: string) => void;
}

const HOW_TO_GET_IT =
  'domcast needs Chromium. Install it with "sudo apt-get install chromium" (Debian/Ubuntu) ' +
  'or point CHROMIUM_PATH at a Chromium or Chrome executable.';

/** Finds Chromium: CHROMIUM_PATH, then the system package, then a Playwright cache; installs it as root on Debian. */
export function findChromium(options: FindChromiumOptions = {}): string {
  const { explicitPath, install = false, log = () => {} } = options;
  if (explicitPath) {
    if (isExecutable(explicitPath)) return explicitPath;
    throw new ChromiumNotFoundError(`CHROMIUM_PATH=${explicitPath} is not an executable file. ${HOW_TO_GET_IT}`);
  }
  const found = [...SYSTEM_PATHS, ...playwrightCacheCandidates()].find(isExecutable);
  if (found) return found;
  const canInstall = install && process.getuid?.() === 0 && existsSync('/etc/debian_version');
  if (canInstall) {
    log('Chromium not found; installing the Debian package "chromium" (apt-get)…');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env });
    const installed = SYSTEM_PATHS.find(isExecutable);
    if (installed) return installed;
  }
  throw new ChromiumNotFoundError(`Chromium was not found (looked at CHROMIUM_PATH, ${SYSTEM_PATHS.join(', ')}, the Playwright cache). ${HOW_TO_GET_IT}`);
}

/**
 * What Playwright's own launch passes (1.65), for a browser started by us behind the DevTools relay
 * (src/browser/cdp-relay.ts): headless, no throttling of background pages and timers, a fixed
 * colour profile (screenshots and the viewer compare pixels), no extensions, popups allowed.
 */
export const PLAYWRIGHT_ARGS = [
  '--disable-field-trial-config',
  '--disable-background-networking',
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-back-forward-cache',
  '--disable-breakpad',
  '--disable-component-extensions-with-background-pages',
  '--disable-component-update',
  '--no-default-browser-check',
  '--disable-default-apps',
  '--disable-dev-shm-usage',
  '--disable-extensions',
  '--disable-features=AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,ThirdPartyStoragePartitioning,AvoidCorsURLLoaderRestartOnRedirect,OptimizationHints,NetworkTimeServiceQuerying,PreconnectToSearch',
  '--enable-features=CDPScreenshotNewSurface',
  '--allow-pre-commit-input',
  '--disable-hang-monitor',
  '--disable-ipc-flooding-protection',
  '--disable-popup-blocking',
  '--disable-prompt-on-repost',
  '--disable-renderer-backgrounding',
  '--force-color-profile=srgb',
  '--metrics-recording-only',
  '--no-first-run',
  '--password-store=basic',
  '--use-mock-keychain',
  '--no-service-autorun',
  '--disable-search-engine-choice-screen',
  '--disable-infobars',
  '--headless',
  '--hide-scrollbars',
  '--mute-audio',
  '--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4',
];

/** Flags Chromium needs on a closed network and as root; the relay adds a fresh user-data dir. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
  '--disable-dev-shm-usage',
  // WebRTC gets no UDP socket at all (STUN, TURN over UDP, host candidates): pages' UDP is beyond the
  // navigation policy's reach. Its TCP sockets follow the proxy settings (see BrowserLauncher.newContext).
  '--webrtc-ip-handling-policy=disable_non_proxied_udp',
];
