/** Medians and event-loop delay summaries. */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Event-loop delay at 1 ms resolution over whatever runs between start() and stop(). */
export class DelayMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 1 });

  start(): this {
    this.histogram.reset();
    this.histogram.enable();
    return this;
  }

  /** p99 and max in milliseconds */
  stop(): { p99: number; max: number } {
    this.histogram.disable();
    return { p99: this.histogram.percentile(99) / 1e6, max: this.histogram.max / 1e6 };
  }
}

/**
 * Length of the union of time intervals: the wall time during which at least one sequence was
 * generating.
 */
export function unionLength(intervals: ReadonlyArray<readonly [number, number]>): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [start, end] = sorted[0] ?? [0, 0];
  for (const [s, e] of sorted.slice(1)) {
    if (s > end) {
      total += end - start;
      [start, end] = [s, e];
    } else end = Math.max(end, e);
  }
  return total + (end - start);
}
