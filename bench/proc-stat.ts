/** CPU time from /proc, for the benchmarks' load figures: the whole machine's, and a process tree's. */
import { readdirSync, readFileSync } from 'node:fs';

/** The whole machine's busy and total CPU ticks: the same reader the server's admission by load uses. */
export { machineCpu } from '../src/common/machine-load.js';

/**
 * CPU clock ticks used so far by each process below `root` (itself included), from /proc/<pid>/stat.
 */
export function treeCpuTicks(root: number): Map<number, number> {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
        // Fields after the command's closing parenthesis: state ppid … utime (14th) stime (15th).
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        parent.set(Number(name), Number(f[1]));
        ticks.set(Number(name), Number(f[11]) + Number(f[12]));
      } catch {
        // The process ended while we looked.
      }
    }
  } catch {
    return new Map();
  }
  const inTree = new Map<number, number>();
  const seen = new Set<number>([root]);
  let frontier = [root];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const [pid, ppid] of parent) if (frontier.includes(ppid) && !seen.has(pid)) next.push(pid);
    for (const pid of next) seen.add(pid);
    frontier = next;
  }
  for (const pid of seen) inTree.set(pid, ticks.get(pid) ?? 0);
  return inTree;
}

/** Clock ticks per second of /proc figures (USER_HZ): 100 on Linux. */
export const TICKS_PER_S = 100;
