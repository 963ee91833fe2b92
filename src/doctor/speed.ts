/**
 * The speed probe: generate for a few seconds and compare tokens/s with what memory bandwidth
 * allows. Generating one token reads every weight once (all but the token embedding, of which it
 * reads one row, unless the output projection reuses it), so the ceiling on the CPU is
 * bandwidth / weight bytes per token (design.md, "the physical limit").
 */
import { loadModel } from '../engine/model.js';
import type { GgufHeader } from '../gguf/reader.js';
import type { Finding, MachineFacts } from './types.js';

const DEFAULT_BANDWIDTH_BYTES = 256 * 2 ** 20;
// below this many weight bytes per token the bandwidth bound says little (the synthetic tiny model reads 34 MiB)
const SMALL_MODEL_BYTES = 256 * 2 ** 20;

export interface ProbeOptions {
  /** how long to generate (default 5 s) */
  seconds?: number;
  /** the most tokens to generate (default 256) */
  maxTokens?: number;
  /** the buffer the bandwidth probe copies (default 256 MiB) */
  bandwidthBytes?: number;
  threads?: number;
}

/** Memory bandwidth of a single-threaded copy: bytes read plus bytes written per second, the best of `rounds`. */
export function measureBandwidth(bytes = DEFAULT_BANDWIDTH_BYTES, rounds = 4): { bytesPerSecond: number; seconds: number } {
  const from = Buffer.alloc(bytes, 1);
  const to = Buffer.alloc(bytes);
  from.copy(to); // both buffers resident before timing
  let best = Infinity;
  const started = performance.now();
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    from.copy(to);
    best = Math.min(best, performance.now() - t);
  }
  return { bytesPerSecond: (2 * bytes) / (Math.max(best, 1e-3) / 1000), seconds: (performance.now() - started) / 1000 };
}

/** Weight bytes one generated token reads: every tensor except the token embedding, which is read whole only when tied to the output. */
export function bytesPerToken(header: Pick<GgufHeader, 'tensors'>): number {
  const tied = !header.tensors.some((t) => t.name === 'output.weight');
  return header.tensors.reduce((n, t) => n + (t.name === 'token_embd.weight' && !tied ? 0 : t.sizeBytes), 0);
}

const gbs = (n: number) => `${(n / 1e9).toFixed(1)} GB/s`;

export async function probeSpeed(
  check: { modelPath: string; header: Pick<GgufHeader, 'tensors'>; nGpuLayers?: number | 'max' | 'auto'; cpuVariantBehind?: boolean },
  facts: MachineFacts,
  options: ProbeOptions = {},
): Promise<Finding> {
  const seconds = options.seconds ?? 5;
  const maxTokens = options.maxTokens ?? 256;
  const bandwidth = measureBandwidth(options.bandwidthBytes);
  const loadStarted = performance.now();
  const model = await loadModel({ modelPath: check.modelPath, nGpuLayers: check.nGpuLayers ?? 'auto', nCtx: 512 });
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  let timings;
  let threads = 0;
  try {
    const ctx = await model.createContext({ nCtx: 512, threads: options.threads });
    threads = ctx.threads;
    // end-of-generation tokens banned, so a random or terse model generates for the whole probe
    const logitBias = Object.fromEntries(model.info.specialTokens.eog.map((t) => [String(t), -Infinity]));
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), seconds * 1000);
    try {
      for await (const chunk of ctx.sequence().generate('The history of the printing press', { maxTokens, temperature: 0, logitBias, signal: abort.signal })) {
        if (chunk.timings) timings = chunk.timings;
      }
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await model.dispose();
  }
  const tps = timings?.generateTokensPerSecond ?? 0;
  const perToken = bytesPerToken(check.header);
  const bound = bandwidth.bytesPerSecond / perToken;
  const measurement: SpeedMeasurement = {
    tokensPerSecond: tps,
    generatedTokens: timings?.generatedTokens ?? 0,
    generateSeconds: (timings?.generateMs ?? 0) / 1000,
    promptTokensPerSecond: timings?.promptTokensPerSecond ?? 0,
    loadSeconds,
    threads,
    nGpuLayers: model.nGpuLayers,
    bandwidthBytesPerSecond: bandwidth.bytesPerSecond,
    bandwidthProbeBytes: options.bandwidthBytes ?? DEFAULT_BANDWIDTH_BYTES,
    bytesPerToken: perToken,
    boundTokensPerSecond: bound,
    ratio: tps / bound,
  };
  return judgeSpeed(measurement, facts, { cpuVariantBehind: check.cpuVariantBehind });
}

/** What the probe measured (the speed finding's data). */
export interface SpeedMeasurement {
  tokensPerSecond: number;
  generatedTokens: number;
  generateSeconds: number;
  promptTokensPerSecond: number;
  loadSeconds: number;
  threads: number;
  nGpuLayers: number;
  bandwidthBytesPerSecond: number;
  bandwidthProbeBytes: number;
  bytesPerToken: number;
  boundTokensPerSecond: number;
  /** tokensPerSecond / boundTokensPerSecond */
  ratio: number;
}

/** The finding for a measurement: ok, or under 30% of the bandwidth bound with what to try. */
export function judgeSpeed(m: SpeedMeasurement, facts: Pick<MachineFacts, 'cpu' | 'loadAverage'>, context: { cpuVariantBehind?: boolean } = {}): Finding {
  const tps = m.tokensPerSecond.toFixed(1);
  const data = { ...m };
  const measured =
    `${tps} tokens/s over ${m.generatedTokens} tokens (${m.generateSeconds.toFixed(1)} s, ${m.threads} threads; prompt ${m.promptTokensPerSecond.toFixed(0)} tokens/s; load ${m.loadSeconds.toFixed(1)} s). ` +
    `Memory bandwidth ${gbs(m.bandwidthBytesPerSecond)} (one thread copying ${Math.round(m.bandwidthProbeBytes / 2 ** 20)} MiB, read + write; a single-threaded copy underestimates what all cores reach), ` +
    `${(m.bytesPerToken / 2 ** 20).toFixed(0)} MiB of weights read per token: a bound of about ${m.boundTokensPerSecond.toFixed(1)} tokens/s; this is ${(m.ratio * 100).toFixed(0)}% of it`;
  const ok = (note: string): Finding => ({ id: 'speed', status: 'ok', title: `${tps} tokens/s generating`, detail: measured + note, data });
  if (m.generatedTokens < 2) {
    return {
      id: 'speed',
      status: 'info',
      title: 'too few tokens generated to measure',
      detail: `${measured}. The probe ended before two tokens were generated (a slow load or prompt).`,
      fix: 'measure with hermes3 bench --model FILE, which runs longer',
      data,
    };
  }
  if (m.nGpuLayers > 0) return ok(`. ${m.nGpuLayers} layers ran on the GPU, whose bandwidth (not measured here) bounds them instead.`);
  if (m.bytesPerToken < SMALL_MODEL_BYTES) {
    return ok(
      `. The model is too small to judge by bandwidth: below ${SMALL_MODEL_BYTES / 2 ** 20} MiB of weights per token, fixed costs (sampling over the vocabulary, thread wake-ups) take most of each token's time.`,
    );
  }
  if (m.ratio >= 0.3) return ok(m.ratio > 1 ? ' (above the bound: several cores together read faster than one thread copies).' : '.');
  const fixes = [
    m.threads !== facts.cpu.physicalCores
      ? `use as many threads as physical cores (--threads ${facts.cpu.physicalCores}, threads: ${facts.cpu.physicalCores}); ${m.threads} were used`
      : `try fewer threads (--threads ${Math.max(1, Math.floor(m.threads / 2))}): generation is memory-bound and more threads than the memory system feeds only contend`,
  ];
  if (context.cpuVariantBehind) fixes.push("rebuild for this CPU's variant (see 'cpu.variant')");
  fixes.push(
    facts.loadAverage > facts.cpu.logicalCores * 0.5
      ? `stop other processes using the CPU (load average ${facts.loadAverage.toFixed(1)} on ${facts.cpu.logicalCores} logical cores)`
      : 'check that no other process used the CPU during the probe (top), then run hermes3 doctor again',
  );
  return {
    id: 'speed',
    status: 'warn',
    title: `${tps} tokens/s generating: under 30% of what memory bandwidth allows`,
    detail: `${measured}.`,
    fix: fixes.join('; '),
    data,
  };
}
