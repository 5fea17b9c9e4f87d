/** What every benchmark's JSON says about the machine, and where it is written. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');
const round2 = (v: number): number => Math.round(v * 100) / 100;

/** The machine the run measured, with the 1-minute load when it started and now. */
export function machineInfo(loadAtStart: number): Record<string, unknown> {
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? null,
    memory_mb: Math.round((totalmem() / (1024 * 1024)) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    load_1m_at_start: round2(loadAtStart),
    load_1m_at_end: round2(loadavg()[0] ?? 0),
  };
}

/** Writes the result to bench/results/<file> and to stdout, as indented JSON. */
export function writeResult(file: string, result: unknown): void {
  const json = JSON.stringify(result, null, 2);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, file), `${json}\n`);
  process.stdout.write(`${json}\n`);
}
