/**
 * Progress on stderr: a bar redrawn in place on a terminal (with speed and ETA when it counts
 * bytes), plain lines otherwise (at most one per second, and at each tenth), so logs stay short.
 */
export interface ProgressOptions {
  /** what is in progress, e.g. "loading model.gguf" */
  label: string;
  /** total bytes (speed and ETA are shown); without it the bar counts a fraction 0..1 */
  totalBytes?: number;
  stream?: NodeJS.WriteStream;
}

const units = ['B', 'kB', 'MB', 'GB', 'TB'];
export function formatBytes(n: number): string {
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly started = Date.now();
  private lastLine = 0;
  private lastTenth = -1;
  private lastDraw = 0;
  private startValue: number | undefined;
  private done = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true && process.env.TERM !== 'dumb';
  }

  /** `value`: bytes so far (with totalBytes) or a fraction 0..1. */
  update(value: number): void {
    if (this.done) return;
    this.startValue ??= value;
    const total = this.opts.totalBytes;
    const fraction = total ? Math.min(1, value / total) : Math.min(1, Math.max(0, value));
    const now = Date.now();
    const elapsed = (now - this.started) / 1000;
    let extra = '';
    if (total) {
      const speed = elapsed > 0 ? (value - this.startValue) / elapsed : 0;
      const eta = speed > 0 ? (total - value) / speed : Infinity;
      extra = ` ${formatBytes(value)} / ${formatBytes(total)}  ${formatBytes(speed)}/s  ETA ${formatSeconds(eta)}`;
    }
    const pct = `${(fraction * 100).toFixed(0).padStart(3)}%`;
    if (this.tty) {
      if (now - this.lastDraw < 80 && fraction < 1) return;
      this.lastDraw = now;
      const width = Math.max(10, Math.min(30, (this.stream.columns ?? 80) - this.opts.label.length - extra.length - 10));
      const filled = Math.round(fraction * width);
      this.stream.write(`\r\x1b[2K${this.opts.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}${extra}`);
    } else {
      const tenth = Math.floor(fraction * 10);
      // what ends within a second gets only the final line
      if (now - this.started < 1000) return;
      if (now - this.lastLine < 1000 && tenth === this.lastTenth) return;
      if (tenth === this.lastTenth && fraction < 1) return;
      this.lastLine = now;
      this.lastTenth = tenth;
      this.stream.write(`${this.opts.label}: ${pct}${extra}\n`);
    }
  }

  /** Ends the bar: a final line with the elapsed time (or `message`). */
  finish(message?: string): void {
    if (this.done) return;
    this.done = true;
    const text = message ?? `${this.opts.label}: done in ${formatSeconds((Date.now() - this.started) / 1000)}`;
    this.stream.write(this.tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
  }

  /** Clears the bar without a final line (an error follows). */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    if (this.tty) this.stream.write('\r\x1b[2K');
  }
}
