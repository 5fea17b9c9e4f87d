import { readFileSync } from 'node:fs';

/** Busy and total CPU time of the whole machine (all cores), in clock ticks, from /proc/stat; null where there is none. */
export function machineCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

const SAMPLE_MS = 250;
/** Samples kept: the busy share is over the last second. */
const WINDOW = 4;

/**
 * How busy the whole machine's CPUs were over the last second (0..1), from /proc/stat every 250 ms
 * while anyone holds it (`hold()` / the function it returns). 0 where /proc/stat is not readable.
 */
export class MachineLoad {
  private readonly samples: { busy: number; total: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private holders = 0;

  /** Starts sampling (if not yet); call the returned function when done. */
  hold(): () => void {
    if (this.holders++ === 0) {
      this.sample();
      this.timer = setInterval(() => this.sample(), SAMPLE_MS);
      this.timer.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holders === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
        this.samples.length = 0;
      }
    };
  }

  /** The machine's busy share over the last second, 0..1 (0 until two samples exist). */
  busy(): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.total <= first.total) return 0;
    return (last.busy - first.busy) / (last.total - first.total);
  }

  private sample(): void {
    const now = machineCpu();
    if (!now) return;
    this.samples.push(now);
    if (this.samples.length > WINDOW + 1) this.samples.shift();
  }
}

/** The process's gauge (one /proc/stat reader however many runs ask). */
export const machineLoad = new MachineLoad();
