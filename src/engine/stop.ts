/**
 * Stop-string matching over a text stream. Text that could be the start of a stop string is held
 * back until the following text decides it, so a stop string never leaks into the output even
 * when it spans chunks.
 */
export class StopMatcher {
  private held = '';
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Feeds text; returns the text that is safe to emit now. */
  push(text: string): string {
    if (this.stopped) return '';
    if (this.stops.length === 0) return text;
    const buf = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i !== -1 && (cut === -1 || i < cut)) cut = i;
    }
    if (cut !== -1) {
      this.stopped = true;
      this.held = '';
      return buf.slice(0, cut);
    }
    const keep = heldSuffixLength(buf, this.stops);
    this.held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }

  /** Ends the stream: held text that never became a stop string is released. */
  flush(): string {
    const out = this.stopped ? '' : this.held;
    this.held = '';
    return out;
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `marks`: text to hold back in a stream. */
export function heldSuffixLength(text: string, marks: readonly string[]): number {
  let best = 0;
  for (const m of marks) {
    for (let n = Math.min(m.length - 1, text.length); n > best; n--) {
      if (text.endsWith(m.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
