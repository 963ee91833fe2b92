/**
 * Which Hermes 3 quantization to pull: the largest one whose weights, KV cache and compute
 * buffers fit this machine at the context asked for, from the memory planner and the devices'
 * free memory (the GPUs' when there are any, else the system's RAM), each with headroom. Every
 * candidate carries its reason, so the CLI can say why.
 */
import { z } from 'zod';
import { getBackendInfo, offloadGpus, sharesHostMemory, type DeviceInfo } from '../engine/backends.js';
import { headroom } from '../engine/fit.js';
import { int, parseOptions } from '../engine/validate.js';
import { planMemory } from '../gguf/plan.js';
import { FILE_TYPES, type FileTypeName } from '../gguf/types.js';
import { formatBytes } from './progress.js';
import { availableQuants, type RemoteFile } from './refs.js';

/** Nous Research's GGUF repositories of Hermes 3, by size. */
export const HERMES3_REPOS = {
  '8b': 'NousResearch/Hermes-3-Llama-3.1-8B-GGUF',
  '70b': 'NousResearch/Hermes-3-Llama-3.1-70B-GGUF',
  '405b': 'NousResearch/Hermes-3-Llama-3.1-405B-GGUF',
} as const;
export type Hermes3Shape = keyof typeof HERMES3_REPOS;

/** The candidates when the repository's listing is not at hand (offline). */
export const BUILTIN_QUANTS = ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'Q3_K_M', 'Q2_K'] as const;

const recommendSchema = z.strictObject({
  shape: z.enum(Object.keys(HERMES3_REPOS) as [Hermes3Shape, ...Hermes3Shape[]], { error: `expected one of ${Object.keys(HERMES3_REPOS).join(', ')}` }),
  nCtx: int(256, 1 << 24).default(8192),
  /** the repository's files (listRepoFiles) or quantization names; default BUILTIN_QUANTS */
  files: z.array(z.union([z.string(), z.custom<RemoteFile>((v) => typeof (v as RemoteFile)?.path === 'string')])).optional(),
  /** the devices to fit (default getBackendInfo().devices) */
  devices: z.array(z.custom<DeviceInfo>((v) => typeof (v as DeviceInfo)?.freeBytes === 'number', { error: 'expected devices as getBackendInfo() lists them' })).optional(),
});
export type RecommendOptions = z.input<typeof recommendSchema>;

export interface QuantCandidate {
  quant: string;
  /** bytes the model needs where it runs (the GPUs together, or RAM) */
  neededBytes: number;
  /** bytes free there after headroom */
  availableBytes: number;
  fits: boolean;
  device: 'gpu' | 'cpu';
  reason: string;
}

export interface QuantRecommendation {
  /** undefined when nothing fits */
  quant: string | undefined;
  shape: Hermes3Shape;
  nCtx: number;
  /** where the recommended quantization runs */
  device: 'gpu' | 'cpu';
  /** the reference to pull, when a quantization fits */
  ref: string | undefined;
  /** one line saying why */
  reason: string;
  /** every candidate considered, largest first, GPU fits before RAM fits */
  candidates: QuantCandidate[];
}

/** Picks the largest quantization that fits this machine for `shape` and `nCtx`, with the reasons. */
export async function recommendQuant(options: RecommendOptions): Promise<QuantRecommendation> {
  const o = parseOptions(recommendSchema, options, 'recommendQuant');
  const names = o.files ? availableQuants(o.files.map((f) => (typeof f === 'string' ? { path: `x-${f}.gguf` } : f))) : [...BUILTIN_QUANTS];
  const quants = names.filter((q): q is FileTypeName => q in FILE_TYPES);
  const devices = o.devices ?? getBackendInfo().devices;
  const gpus = offloadGpus(devices);
  const cpu = devices.find((d) => d.type === 'cpu');
  const spare = (d: DeviceInfo) => Math.max(d.freeBytes - headroom(d.totalBytes), 0);
  const ram = cpu ? spare(cpu) : 0;
  const tensorSplit = gpus.length > 1 ? gpus.map((g) => Math.max(g.freeBytes, 1)) : undefined;
  const gpuFree = gpus.reduce((n, g) => n + spare(g), 0);
  // a GPU whose memory is the host's RAM (Apple Silicon, integrated GPUs) draws on the same RAM as the CPU
  const shared = gpus.map((g) => sharesHostMemory(g, cpu));
  const gpuNames = gpus.map((g) => g.name).join(' + ');

  const onGpu: QuantCandidate[] = [];
  const onCpu: QuantCandidate[] = [];
  for (const quant of quants) {
    if (gpus.length > 0) {
      const plan = await planMemory({ shape: o.shape, quant, nCtx: o.nCtx, nGpuLayers: 100000, gpu: true, tensorSplit, sharesHostMemory: shared.some(Boolean) ? shared : undefined });
      const parts = plan.devices.filter((d) => d.device === 'GPU');
      const needed = parts.reduce((n, d) => n + d.totalBytes, 0);
      const host = plan.devices.find((d) => d.device === 'CPU')!.totalBytes;
      const fits = parts.every((d) => d.totalBytes <= spare(gpus[d.gpu ?? 0])) && (plan.hostBytes ?? host) <= ram;
      const reason = `${quant} needs ${formatBytes(needed)} on ${gpuNames} (${formatBytes(plan.weightsBytes)} weights, ${formatBytes(plan.kvCacheBytes)} KV cache at ${o.nCtx} tokens) and ${formatBytes(gpuFree)} are free after headroom: ${fits ? 'fits' : 'does not fit'}`;
      onGpu.push({ quant, neededBytes: needed, availableBytes: gpuFree, fits, device: 'gpu', reason });
    }
    const plan = await planMemory({ shape: o.shape, quant, nCtx: o.nCtx, nGpuLayers: 0 });
    // repacked tensors are resident once: their mapped pages are released as they are copied
    const needed = plan.totalBytes - plan.repackBytes;
    const fits = needed <= ram;
    const reason = `${quant} needs ${formatBytes(needed)} of RAM on the CPU (${formatBytes(plan.weightsBytes)} weights, ${formatBytes(plan.kvCacheBytes)} KV cache at ${o.nCtx} tokens) and ${formatBytes(ram)} are available after headroom: ${fits ? 'fits' : 'does not fit'}`;
    onCpu.push({ quant, neededBytes: needed, availableBytes: ram, fits, device: 'cpu', reason });
  }
  const bySize = (a: QuantCandidate, b: QuantCandidate) => b.neededBytes - a.neededBytes;
  onGpu.sort(bySize);
  onCpu.sort(bySize);
  const candidates = [...onGpu, ...onCpu];
  const best = onGpu.find((c) => c.fits) ?? onCpu.find((c) => c.fits);
  const repo = HERMES3_REPOS[o.shape];
  let reason: string;
  if (!best) {
    const smallest = onCpu.at(-1);
    reason = `no quantization of Hermes 3 ${o.shape.toUpperCase()} fits at ${o.nCtx} tokens: the smallest, ${smallest?.quant ?? 'none'}, needs ${formatBytes(smallest?.neededBytes ?? 0)} and ${formatBytes(Math.max(ram, gpuFree))} are free; try a shorter context (--ctx) or a smaller model (--shape 8b)`;
  } else if (best.device === 'gpu') {
    reason = `${best.quant} is the largest quantization that fits on ${gpuNames} at ${o.nCtx} tokens (${formatBytes(best.neededBytes)} of ${formatBytes(best.availableBytes)})`;
  } else {
    const why = gpus.length > 0 ? `none fits on ${gpuNames}; ` : 'no GPU: ';
    reason = `${why}${best.quant} is the largest quantization that fits in RAM at ${o.nCtx} tokens (${formatBytes(best.neededBytes)} of ${formatBytes(best.availableBytes)})`;
  }
  return { quant: best?.quant, shape: o.shape, nCtx: o.nCtx, device: best?.device ?? (gpus.length > 0 ? 'gpu' : 'cpu'), ref: best ? `hf:${repo}:${best.quant}` : undefined, reason, candidates };
}
