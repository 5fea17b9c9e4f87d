import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { inlineAssets } from '../assets/index.js';
import { errorMessage } from '../common/index.js';
import { RrwebEventType } from '../protocol/index.js';
import { loadConfig } from '../server/index.js';
import { createStore, type RecordingStore } from '../store/index.js';
import { createLogger } from '../common/index.js';
import { startEmbeddedServer } from './embedded.js';
import { readJsonFile } from './run.js';
import { UsageError } from './usage.js';

/** `domcast export <id>`: the recording as a JSON array of rrweb events on stdout, read from the store. */
export async function exportCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError('usage: domcast export <session_id> > run.json');
  const id = positionals[0]!;
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env });
  let store: RecordingStore | undefined;
  const where = config.databaseUrl !== undefined ? 'DOMCAST_DATABASE_URL' : `${config.dataDir} (DOMCAST_DATA_DIR)`;
  try {
    store = createStore(config, createLogger('silent'), { readOnly: true });
    await store.open();
  } catch (err) {
    await store?.close();
    throw new UsageError(`cannot open the store in ${where}: ${errorMessage(err)}`);
  }
  try {
    if (!(await store.get(id))) throw new UsageError(`no recording of session ${id} in ${where}`);
    // Captured assets travel inside the file as data: URLs: the export plays without our server.
    for await (const piece of inlineAssets(store.eventsJson(id), id, store)) process.stdout.write(piece);
    process.stdout.write('\n');
    return 0;
  } finally {
    await store.close();
  }
}

/** Checks that a file holds an rrweb recording; throws a UsageError that says what is wrong. */
export function readRecording(file: string): string[] {
  const json = readJsonFile(file);
  if (!Array.isArray(json)) throw new UsageError(`${file} is not an rrweb recording: expected a JSON array of events`);
  json.forEach((e: unknown, i) => {
    const ev = e as { type?: unknown; timestamp?: unknown } | null;
    if (!ev || typeof ev !== 'object' || typeof ev.type !== 'number' || typeof ev.timestamp !== 'number') {
      throw new UsageError(`${file} is not an rrweb recording: item ${i} has no numeric "type" and "timestamp"`);
    }
  });
  const types = (json as { type: number }[]).map((e) => e.type);
  const meta = types.indexOf(RrwebEventType.Meta);
  if (meta < 0 || !types.slice(meta).includes(RrwebEventType.FullSnapshot)) {
    throw new UsageError(`${file} is not a playable rrweb recording: it needs a Meta event followed by a FullSnapshot`);
  }
  return (json as unknown[]).map((e) => JSON.stringify(e));
}

/** `domcast replay <file.json>`: serves any rrweb recording in our viewer, until Ctrl-C. */
export async function replayCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError('usage: domcast replay <recording.json>');
  const file = positionals[0]!;
  const events = readRecording(file);
  // A scratch store: replaying a file leaves nothing behind in the real one.
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env, DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-replay-')), DOMCAST_DATABASE_URL: '' });
  const { server } = await startEmbeddedServer(config);
  const first = JSON.parse(events[0]!) as { timestamp: number };
  const last = JSON.parse(events.at(-1)!) as { timestamp: number };
  const id = randomUUID();
  server.deps.store.importRecording(
    {
      id,
      workflow: `Recording ${basename(file)}`,
      inputs: {},
      status: 'imported',
      error: null,
      visual: true,
      createdAt: Date.now(),
      startedAt: first.timestamp,
      endedAt: last.timestamp,
      steps: [],
      outputs: {},
      eventCount: events.length,
      byteCount: events.reduce((n, e) => n + e.length, 0),
    },
    events,
  );
  await server.deps.store.flush();
  console.log(`Replaying ${file} (${events.length} events): ${await server.viewerUrl(id)}`);
  console.log('Ctrl-C to stop.');
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  return new Promise<number>(() => {});
}
