import type { AssetIndex } from '../assets/index.js';
import { BrowserLauncher } from '../browser/index.js';
import type { Logger } from '../common/index.js';
import { RunManager } from '../runs/index.js';
import type { SessionRegistry, StreamMetrics } from '../session/index.js';
import type { Config } from './config.js';

/** Chromium and the runs as the settings ask, for a server (createServer) and a worker node (createWorker) alike. */
export function createRunManager(
  config: Config,
  parts: { log: Logger; registry: SessionRegistry; metrics: StreamMetrics; assets: AssetIndex; chromiumPath?: string; spareBrowser?: boolean },
): { launcher: BrowserLauncher; runs: RunManager } {
  const { log, registry, metrics, assets } = parts;
  const launcher = new BrowserLauncher({
    chromiumPath: parts.chromiumPath ?? config.chromiumPath,
    log,
    isolation: config.browserIsolation,
    spare: parts.spareBrowser,
    maxEventChars: config.recordingLimits.maxEventChars,
    onDrop: (drop) => (metrics.devtoolsMessagesDropped += drop.count),
  });
  const runs = new RunManager({
    launcher,
    registry,
    metrics,
    limits: config.recordingLimits,
    maxConcurrent: config.maxConcurrentSessions,
    log,
    navigation: { allowedHosts: config.allowedHosts, blockedHosts: config.blockedHosts },
    ...(config.assets ? { assets: { sink: assets, limits: config.assets } } : {}),
  });
  return { launcher, runs };
}
