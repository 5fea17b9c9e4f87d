// A worker node in a process of its own, for tests that kill it: it prints `started <id>` when a
// run starts and `ended <id> <status>` when it ends; a run lasts `ms` milliseconds from its data.
import { Redis } from 'ioredis';
import { RunWorker } from '../../src/cluster/index.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url, { maxRetriesPerRequest: null });
const worker = new RunWorker<{ ms: number }>(redis, {
  url,
  prefix: process.env.PREFIX ?? 'domcast-test',
  id: process.env.WORKER_ID ?? `w-${process.pid}`,
  slots: Number(process.env.SLOTS ?? 1),
  lockDurationMs: 2000,
  stalledIntervalMs: 1000,
  run: async (sessionId, data) => {
    process.stdout.write(`started ${sessionId}\n`);
    await new Promise((r) => setTimeout(r, data.ms));
    process.stdout.write(`ended ${sessionId} succeeded\n`);
    return 'succeeded';
  },
  refused: (sessionId) => process.stdout.write(`refused ${sessionId}\n`),
});
await worker.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
