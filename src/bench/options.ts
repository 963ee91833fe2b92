/** The benchmark's options, checked once, with messages that say what was expected. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { OptionsError } from '../errors.js';
import { physicalCores } from '../engine/threads.js';
import { SHAPES, type ShapeName } from '../gguf/shapes.js';
import { packageRoot } from '../native/index.js';
import { PEERS, type PeerName } from './figures.js';

export const BENCH_QUANTS = ['F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'Q4_0', 'IQ4_XS'] as const;
export type BenchQuant = (typeof BENCH_QUANTS)[number];

export interface BenchOptions {
  /** a GGUF file, or undefined: the synthetic model of `shape` and `quant` */
  modelPath?: string;
  shape: ShapeName;
  quant: BenchQuant;
  threads: number;
  /** layers offloaded to the GPU by every peer (default 0: CPU only) */
  gpuLayers: number;
  concurrency: number[];
  reps: number;
  only: PeerName[];
  speculative: boolean;
  jsonPath?: string;
  svgPath?: string;
  /** synthetic models and node-llama-cpp live here */
  cacheDir: string;
  /** the folder holding llama-bench and llama-batched-bench */
  anchorDir: string;
  /** limit for one measurement process, seconds */
  timeoutS: number;
}

export interface BenchArgs {
  model?: string;
  shape?: string;
  quant?: string;
  threads?: string;
  gpuLayers?: string;
  concurrency?: string;
  reps?: string;
  only?: string;
  speculative?: boolean;
  json?: string;
  svg?: string;
  cache?: string;
  anchors?: string;
  timeout?: string;
}

/** $XDG_CACHE_HOME/hermes3/bench, else ~/.cache/hermes3/bench */
export function defaultCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'hermes3', 'bench');
}

function int(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new OptionsError(`Invalid --${name}: expected an integer between ${min} and ${max}, received '${value}'`);
  return n;
}

export function parseBenchArgs(a: BenchArgs): BenchOptions {
  if (a.model !== undefined && (a.shape !== undefined || a.quant !== undefined)) {
    throw new OptionsError('Invalid options: --model benchmarks a file; --shape and --quant choose a synthetic model instead. Give one or the other');
  }
  if (a.model !== undefined && !existsSync(a.model)) throw new OptionsError(`Invalid --model: ${a.model} does not exist; give the path of a GGUF file, or --shape for a synthetic model`);
  const shape = a.shape ?? '1b';
  if (!(shape in SHAPES)) throw new OptionsError(`Invalid --shape: expected one of ${Object.keys(SHAPES).join(', ')}, received '${shape}'`);
  const quant = a.quant ?? 'Q4_K_M';
  if (!(BENCH_QUANTS as readonly string[]).includes(quant)) throw new OptionsError(`Invalid --quant: expected one of ${BENCH_QUANTS.join(', ')}, received '${quant}'`);
  const concurrency = (a.concurrency ?? '1,2,4,8').split(',').map((s) => s.trim());
  const levels = concurrency.map((c) => int(c, 'concurrency', 1, 256, 0));
  if (new Set(levels).size !== levels.length) throw new OptionsError(`Invalid --concurrency: expected distinct sequence counts, received '${a.concurrency}'`);
  const only = a.only === undefined ? [...PEERS] : a.only.split(',').map((s) => s.trim());
  for (const p of only) if (!(PEERS as readonly string[]).includes(p)) throw new OptionsError(`Invalid --only: expected some of ${PEERS.join(', ')}, received '${p}'`);
  if (only.length === 0) throw new OptionsError(`Invalid --only: expected some of ${PEERS.join(', ')}, received nothing`);
  return {
    modelPath: a.model === undefined ? undefined : resolve(a.model),
    shape: shape as ShapeName,
    quant: quant as BenchQuant,
    threads: int(a.threads, 'threads', 1, 1024, physicalCores()),
    gpuLayers: int(a.gpuLayers, 'gpu-layers', 0, 100000, 0),
    concurrency: levels.sort((x, y) => x - y),
    reps: int(a.reps, 'reps', 1, 100, 3),
    only: PEERS.filter((p) => only.includes(p)),
    speculative: a.speculative ?? false,
    jsonPath: a.json,
    svgPath: a.svg,
    cacheDir: resolve(a.cache ?? defaultCacheDir()),
    anchorDir: resolve(a.anchors ?? join(packageRoot, 'build', 'Release')),
    timeoutS: int(a.timeout, 'timeout', 10, 86400, 1800),
  };
}
