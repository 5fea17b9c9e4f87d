import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { projectRoot } from '../../src/common/index.js';
import { waitFor, type ExecuteAnswer } from './stack.js';

/** What every node of a test cluster shares. */
export interface ClusterSettings {
  redisUrl: string;
  databaseUrl: string;
  prefix: string;
  /** More settings for every node. */
  env?: Record<string, string>;
}

export const CLUSTER_VIEWER_SECRET = 'cluster-e2e-viewer-token-secret-0123456789abcdef';

/** The settings a cluster node of these tests gets from the environment. */
export function clusterEnv(settings: ClusterSettings): Record<string, string> {
  return {
    DOMCAST_REDIS_URL: settings.redisUrl,
    DOMCAST_CLUSTER_PREFIX: settings.prefix,
    DOMCAST_DATABASE_URL: settings.databaseUrl,
    VIEWER_TOKEN_SECRET: CLUSTER_VIEWER_SECRET,
  };
}

/**
 * A node of a cluster as it is deployed: a process of the built CLI (`domcast serve`, `domcast
 * worker`), its JSON log lines kept, its address read from its 'domcast listening' line.
 */
export class ClusterNode {
  readonly lines: { msg?: string; url?: string; session?: string; level?: number }[] = [];
  url = '';
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const line of parts) {
        try {
          this.lines.push(JSON.parse(line) as ClusterNode['lines'][number]);
        } catch {
          this.lines.push({ msg: line });
        }
      }
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    void this.exited.then(() => {
      if (stderr.trim() !== '' && process.env.DEBUG_CLUSTER) console.error(`${name} stderr:`, stderr);
    });
  }

  /** Starts `domcast <args>` with the cluster's settings and waits until it logs `ready`. */
  static async start(settings: ClusterSettings, name: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<ClusterNode> {
    const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), ...args], {
      cwd: projectRoot,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'info',
        DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-cluster-')),
        BROWSER_ISOLATION: 'shared',
        MAX_CONCURRENT_SESSIONS: '2',
        ...clusterEnv(settings),
        ...settings.env,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const node = new ClusterNode(name, child);
    const line = await waitFor(`${name} to be ready`, () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before it was ready`);
      return node.lines.find((l) => l.msg === ready);
    }, 30_000);
    node.url = line.url ?? '';
    return node;
  }

  static api(settings: ClusterSettings, name: string, env: Record<string, string> = {}): Promise<ClusterNode> {
    return ClusterNode.start(settings, name, ['serve'], 'domcast listening', env);
  }

  static worker(settings: ClusterSettings, name: string, env: Record<string, string> = {}): Promise<ClusterNode> {
    return ClusterNode.start(settings, name, ['worker'], 'worker taking runs', env);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  kill(): Promise<void> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`);
    return (await res.json()) as T;
  }

  async execute(body: unknown): Promise<ExecuteAnswer> {
    const res = await fetch(`${this.url}/workflows/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as ExecuteAnswer['body'] };
  }

  /** A stream URL (as another node handed it out) pointed at this node. */
  streamUrl(handedOut: string): string {
    const url = new URL(handedOut);
    url.host = new URL(this.url).host;
    return url.toString();
  }
}

/** A redis-server of our own, keeping nothing on disk (as the machine's), that can be killed and started again on its port. */
export class OwnRedis {
  private child: ChildProcess | null = null;
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.child = child;
    await waitFor('redis-server to answer', async () => {
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }, 10_000, 100);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
