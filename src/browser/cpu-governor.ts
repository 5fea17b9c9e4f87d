import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { machineLoad } from '../common/index.js';
import { BROWSER_NICE, HOG_NICE } from './priority.js';
/** The machine is contended from this busy share on (0..1). */
const BUSY = 0.8;
const SAMPLE_MS = 1000;
/** Samples kept: a browser's use is measured over the last 3 s, so a page load's burst is not a hog. */
const WINDOW = 3;
/** A browser under this many cores is idle (a spare, a page at rest): it takes no share. */
const IDLE_CORES = 0.05;
/** A hog uses at least this many times what the median of the other working browsers uses. */
const PEER_FACTOR = 2;
/** A demoted browser is put back once it uses under this share of its fair share, or the machine is no longer busy. */
const RESTORE_FRACTION = 0.5;

export interface GovernorStats {
  /** Browsers at HOG_NICE now. */
  demoted: number;
  /** Times a browser was demoted since start. */
  demotions: number;
  /** False where there is no autogroup or /proc to read: nothing is governed. */
  available: boolean;
}

interface Tracked {
  /** CPU ticks of the browser's whole session (every process it started), one per sample. */
  ticks: number[];
  demoted: boolean;
  onDemote?: ((cores: number) => void) | undefined;
}

/**
 * CPU fairness between runs' browsers. Each browser (with a browser per run, each run's) leads a
 * session of its own, which Linux schedules as one autogroup, at BROWSER_NICE below the server
 * (cdp-relay-worker.ts). While the machine is busy, a browser whose processes together used more
 * than its fair share over the last 3 s (the cores divided among the browsers that are working),
 * and at least twice what the other working browsers use (their median), is moved to HOG_NICE:
 * the other runs' pages, which need the CPU in short bursts, then get it first (weights 110
 * against 15), and the hog keeps what they leave. It is put back once it uses less
 * than half its share or the machine is no longer busy. Nothing is stopped or slowed by a timer:
 * on an idle machine a page may use every core. Chromium's own CPU throttling (CDP
 * Emulation.setCPUThrottlingRate) was tried first: it slows a page's script but not its CPU use
 * (1.15 cores at every rate from 1 to 16, 2026-12-05).
 */
export class CpuGovernor {
  private readonly browsers = new Map<number, Tracked>();
  private timer: NodeJS.Timeout | null = null;
  private releaseLoad: (() => void) | null = null;
  private readonly hz = 100;
  private readonly cores = availableParallelism();
  readonly stats: GovernorStats = { demoted: 0, demotions: 0, available: true };

  /** Starts governing the browser whose session `pid` leads; `onDemote` is told when it is demoted. Returns the function that stops it. */
  track(pid: number, onDemote?: (cores: number) => void): () => void {
    if (!pid || !this.stats.available) return () => {};
    this.browsers.set(pid, { ticks: [], demoted: false, onDemote });
    if (!this.timer) {
      this.releaseLoad = machineLoad.hold();
      this.timer = setInterval(() => this.sample(), SAMPLE_MS);
      this.timer.unref();
    }
    return () => this.untrack(pid);
  }

  /** Calls `onDemote` of an already tracked browser (a run that takes a spare browser). */
  watch(pid: number, onDemote: (cores: number) => void): void {
    const tracked = this.browsers.get(pid);
    if (tracked) tracked.onDemote = onDemote;
  }

  private untrack(pid: number): void {
    const tracked = this.browsers.get(pid);
    if (!tracked) return;
    if (tracked.demoted) this.stats.demoted--;
    this.browsers.delete(pid);
    if (this.browsers.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
      this.releaseLoad?.();
      this.releaseLoad = null;
    }
  }

  private sample(): void {
    const ticks = sessionTicks(new Set(this.browsers.keys()));
    if (!ticks) {
      // No /proc here: say so in health, and stop looking.
      this.stats.available = false;
      for (const pid of [...this.browsers.keys()]) this.untrack(pid);
      return;
    }
    const use = new Map<number, number>();
    for (const [pid, tracked] of this.browsers) {
      tracked.ticks.push(ticks.get(pid) ?? tracked.ticks.at(-1) ?? 0);
      if (tracked.ticks.length > WINDOW + 1) tracked.ticks.shift();
      if (tracked.ticks.length > WINDOW) use.set(pid, (tracked.ticks.at(-1)! - tracked.ticks[0]!) / this.hz / ((WINDOW * SAMPLE_MS) / 1000));
    }
    const workingPids = [...use].filter(([, cores]) => cores >= IDLE_CORES).map(([pid]) => pid);
    const working = workingPids.length;
    const fair = this.cores / Math.max(1, working);
    const busy = machineLoad.busy() >= BUSY;
    for (const [pid, cores] of use) {
      const tracked = this.browsers.get(pid)!;
      // A hog among its peers, not one of several runs that are all equally busy: moving those
      // would only reorder equals (in the soak's control phase it moved 3 of 4 ordinary browsers).
      const peers = median(workingPids.filter((other) => other !== pid).map((other) => use.get(other)!));
      if (!tracked.demoted && busy && working > 1 && cores > fair && cores >= PEER_FACTOR * peers) {
        if (!setAutogroupNice(pid, HOG_NICE)) continue;
        tracked.demoted = true;
        this.stats.demoted++;
        this.stats.demotions++;
        tracked.onDemote?.(cores);
      } else if (tracked.demoted && (!busy || working <= 1 || cores < fair * RESTORE_FRACTION)) {
        if (!setAutogroupNice(pid, BROWSER_NICE)) continue;
        tracked.demoted = false;
        this.stats.demoted--;
      }
    }
  }
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The autogroup nice of the session `pid` leads; false where it cannot be set (the browser is gone, or no autogroup). */
function setAutogroupNice(pid: number, nice: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    return true;
  } catch {
    return false;
  }
}

/** CPU ticks (user + system) of every process in each of `sessions`, by session id; null without /proc. */
export function sessionTicks(sessions: ReadonlySet<number>): Map<number, number> | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc');
  } catch {
    return null;
  }
  const sums = new Map<number, number>();
  for (const pid of pids) {
    if (pid.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      continue;
    }
    // After "pid (comm) ": state ppid pgrp session … utime (14th field) stime (15th).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const session = Number(f[3]);
    if (!sessions.has(session)) continue;
    sums.set(session, (sums.get(session) ?? 0) + Number(f[11]) + Number(f[12]));
  }
  return sums;
}
