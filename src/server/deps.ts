import type { AssetIndex } from '../assets/index.js';
import type { ClusterApi } from '../cluster/api-node.js';
import type { Logger } from '../common/index.js';
import type { RunManager } from '../runs/index.js';
import type { SessionRegistry, StreamMetrics } from '../session/index.js';
import type { RecordingStore } from '../store/index.js';
import type { StreamHub } from '../stream/index.js';
import type { WorkflowLibrary } from '../workflow/index.js';
import type { Config } from './config.js';
import type { DashboardSessions } from './dashboard-session.js';
import type { ViewerTokens } from './viewer-tokens.js';

/** What route modules may use. */
export interface AppDeps {
  config: Config;
  log: Logger;
  registry: SessionRegistry;
  metrics: StreamMetrics;
  runs: RunManager;
  hub: StreamHub;
  library: WorkflowLibrary;
  store: RecordingStore;
  /** Captured asset bodies (in the store) and requests waiting for one. */
  assets: AssetIndex;
  /** Removes recordings past DOMCAST_RETENTION_DAYS / DOMCAST_MAX_STORE_MB now; returns their ids. */
  applyRetention: () => Promise<string[]>;
  startedAt: number;
  viewerTokens: ViewerTokens;
  /** Dashboard sign-ins (the cookie that stands for the API key). */
  dashboardSessions: DashboardSessions;
  /** Cluster mode (DOMCAST_REDIS_URL): the queue, the copies of runs on workers, the sweep; null otherwise (and until the server is ready). */
  cluster: ClusterApi | null;
  /** Set once shutdown began: no new runs are accepted. */
  lifecycle: { draining: boolean };
}
