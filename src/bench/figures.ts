/**
 * What the benchmark measures: the figures, their units, which way is better, and which peer is
 * the anchor each is compared with.
 */

export const PEERS = ['hermes3', 'llama-bench', 'batched-bench', 'node-llama-cpp'] as const;
export type PeerName = (typeof PEERS)[number];

export interface FigureSpec {
  label: string;
  unit: string;
  /** true: a larger value is better (speeds); false: smaller is better (times, memory) */
  higherIsBetter: boolean;
  /** the llama.cpp tool this figure is compared with (node-llama-cpp is compared on every figure) */
  anchor?: PeerName;
}

/** Samples of one peer in one repetition: figure name -> value. */
export type Samples = Record<string, number>;

export const PROMPT_TOKENS = 512;
export const GEN_TOKENS = 128;
/** each concurrent sequence: a 32-token prompt, then 64 generated tokens (as llama-batched-bench -npp 32 -ntg 64) */
export const CONC_PROMPT = 32;
export const CONC_GEN = 64;
/** sequences generating while the event-loop delay is sampled in the batched case */
export const DELAY_SEQUENCES = 4;
export const DRAFT_SIZES = [2, 4, 8, 16] as const;

const STATIC: Record<string, FigureSpec> = {
  pp512: { label: 'pp512', unit: 'tok/s', higherIsBetter: true, anchor: 'llama-bench' },
  tg128: { label: 'tg128', unit: 'tok/s', higherIsBetter: true, anchor: 'llama-bench' },
  ttftMs: { label: `time to first token, ${CONC_PROMPT}-token prompt`, unit: 'ms', higherIsBetter: false, anchor: 'llama-bench' },
  loadMs: { label: 'load', unit: 'ms', higherIsBetter: false, anchor: 'llama-bench' },
  peakRssMiB: { label: 'peak RSS', unit: 'MiB', higherIsBetter: false, anchor: 'llama-bench' },
  peakRssNoMmapMiB: { label: 'peak RSS, no mmap', unit: 'MiB', higherIsBetter: false, anchor: 'llama-bench' },
  delayGenP99: { label: 'event-loop delay p99, 1 sequence generating', unit: 'ms', higherIsBetter: false },
  delayGenMax: { label: 'event-loop delay max, 1 sequence generating', unit: 'ms', higherIsBetter: false },
  [`delayGen${DELAY_SEQUENCES}P99`]: { label: `event-loop delay p99, ${DELAY_SEQUENCES} sequences generating`, unit: 'ms', higherIsBetter: false },
  [`delayGen${DELAY_SEQUENCES}Max`]: { label: `event-loop delay max, ${DELAY_SEQUENCES} sequences generating`, unit: 'ms', higherIsBetter: false },
  delayLoadP99: { label: 'event-loop delay p99, model loading', unit: 'ms', higherIsBetter: false },
  delayLoadMax: { label: 'event-loop delay max, model loading', unit: 'ms', higherIsBetter: false },
};

/** Name of the aggregate-speed figure at `n` concurrent sequences. */
export const concurrencyFigure = (n: number): string => `agg${n}`;

/** The spec of a figure name, including the per-concurrency ones. */
export function figureSpec(name: string): FigureSpec {
  const conc = /^agg(\d+)$/.exec(name);
  if (conc) return { label: `aggregate tg, ${conc[1]} sequence${conc[1] === '1' ? '' : 's'}`, unit: 'tok/s', higherIsBetter: true, anchor: 'batched-bench' };
  const spec = STATIC[name];
  if (!spec) throw new Error(`unknown figure ${name}`);
  return spec;
}

/** Every figure in display order, for the given concurrency levels. */
export function figureOrder(concurrency: readonly number[]): string[] {
  const [pp, tg, ttft, load, rss, rssNoMmap, ...delays] = Object.keys(STATIC);
  return [pp, tg, ...concurrency.map(concurrencyFigure), ttft, load, rss, rssNoMmap, ...delays];
}
