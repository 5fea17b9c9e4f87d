import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface EventLoopDelaySummary {
  /** Of the last full window (of the current one until a window has completed), in ms. */
  p50: number;
  p99: number;
  max: number;
  window_s: number;
  /** The longest delay since the monitor started, in ms. */
  max_since_start: number;
}

const ms = (ns: number): number => Math.round(ns / 1e5) / 10;

/**
 * The process's event-loop delay over rolling windows: the histogram is read and reset every
 * `windowMs`, so /health/visual shows how the loop is doing now, not averaged over the uptime,
 * and a stall of seconds still shows in `max_since_start` after its window has passed.
 */
export class EventLoopDelayWindow {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private last: Omit<EventLoopDelaySummary, 'max_since_start' | 'window_s'> | null = null;
  private maxEver = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly windowMs = 10_000) {
    this.histogram.enable();
    this.timer = setInterval(() => this.rotate(), windowMs);
    this.timer.unref();
  }

  private rotate(): void {
    const h = this.histogram;
    this.last = { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
    this.maxEver = Math.max(this.maxEver, this.last.max);
    h.reset();
  }

  summary(): EventLoopDelaySummary {
    const h = this.histogram;
    const current = h.count > 0 ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } : { p50: 0, p99: 0, max: 0 };
    return { ...(this.last ?? current), window_s: this.windowMs / 1000, max_since_start: Math.max(this.maxEver, current.max) };
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
