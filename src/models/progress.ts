/** Download progress: what a pull reports, the speed over a sliding window, and sizes for people. */

export interface PullProgress {
  /** the file being downloaded, relative to the models directory */
  file: string;
  /** 1-based index of the file among the model's files, and their count (split models have several) */
  fileIndex: number;
  fileCount: number;
  receivedBytes: number;
  /** undefined when the server did not say */
  totalBytes: number | undefined;
  /** over the last few seconds; 0 until there is a measurement */
  bytesPerSecond: number;
  /** undefined while unknown */
  etaSeconds: number | undefined;
}

/** Decimal units, as Hugging Face shows file sizes: 4.92 GB, 512 MB, 12 kB. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e11 ? 0 : n >= 1e10 ? 1 : 2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

/** Speed over a window of recent samples, so a stall shows within seconds. */
export class SpeedMeter {
  private samples: Array<{ t: number; bytes: number }> = [];
  constructor(private readonly windowMs = 5000) {}

  add(bytes: number, t = performance.now()): void {
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > this.windowMs) this.samples.shift();
  }

  bytesPerSecond(): number {
    if (this.samples.length < 2) return 0;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    return b.t > a.t ? ((b.bytes - a.bytes) * 1000) / (b.t - a.t) : 0;
  }
}

/** Calls `emit` at most every `intervalMs`, and always for the last report (received = total). */
export function progressReporter(emit: ((p: PullProgress) => void) | undefined, base: Omit<PullProgress, 'receivedBytes' | 'bytesPerSecond' | 'etaSeconds'>, intervalMs = 100) {
  const meter = new SpeedMeter();
  let last = -Infinity;
  return (receivedBytes: number, totalBytes = base.totalBytes, force = false): void => {
    const now = performance.now();
    meter.add(receivedBytes, now);
    if (!emit) return;
    if (!force && now - last < intervalMs && receivedBytes !== totalBytes) return;
    last = now;
    const bytesPerSecond = meter.bytesPerSecond();
    const etaSeconds = totalBytes !== undefined && bytesPerSecond > 0 ? (totalBytes - receivedBytes) / bytesPerSecond : totalBytes === receivedBytes ? 0 : undefined;
    emit({ ...base, totalBytes, receivedBytes, bytesPerSecond, etaSeconds });
  };
}
