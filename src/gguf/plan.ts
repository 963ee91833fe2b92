/**
 * Memory planning: what llama.cpp will allocate for a model, a context length and an offload,
 * computed from the real tensor table (or from the shape for files not on disk):
 * - weights: every tensor's bytes, on the device its layer is offloaded to. llama.cpp counts
 *   nLayer + 1 layers: nGpuLayers = n puts the output layer (output matrix and norm) and the
 *   last n - 1 blocks on the GPU; the token embedding always stays on the CPU, and a model that
 *   reuses it as the output projection (tied embeddings) gets a second copy of it with the
 *   output layer;
 * - repacked weights: on x86 CPUs without a GPU backend, llama.cpp keeps an interleaved second
 *   copy of the matrices of some types (Q4_0, Q4_K, IQ4_NL, MXFP4 with AVX2, and Q2_K with
 *   AVX-512); with a GPU backend the CPU's weights stay in the GPU's host buffer instead;
 * - KV cache: 2 x layers x KV heads x head dim x element size x context (padded to 256);
 * - compute buffer: the logits of one micro-batch (vocab x ubatch floats) or, without flash
 *   attention, the attention scores and mask if larger, plus the activations (8 x width x
 *   ubatch bytes). Once layers are offloaded, the logits are counted where the output
 *   projection runs, the scores on the GPU, and the activations on both;
 * - output buffer: one row of logits per sequence;
 * - LoRA adapters (lora: their files, or adapterBytes): their matrices' bytes, on the device of
 *   the weight each adapts (llama.cpp puts them in that weight's buffer; adapterBytes: the CPU).
 * With several GPUs (tensorSplit), the offloaded layers are split as llama.cpp splits them by
 * default: in proportion to the split (llama.cpp takes each GPU's free memory), layer by layer.
 * A GPU whose memory is the host's RAM (Apple Silicon, integrated GPUs: sharesHostMemory) is
 * marked, and the plan says how much of the host's RAM the CPU and such GPUs draw together.
 */
import { z } from 'zod';
import { OptionsError } from '../errors.js';
import { KV_CACHE_TYPES, type KvCacheType } from '../engine/options.js';
import { int, parseOptions } from '../engine/validate.js';
import { readLoraHeader } from './lora.js';
import { readGgufHeader } from './reader.js';
import { SHAPES, type ModelShape, type ShapeName } from './shapes.js';
import { plannedTensors, type PlannedTensor } from './tensors.js';
import { FILE_TYPES, GGML_TYPES, type FileTypeName, type GgufArray } from './types.js';

const planSchema = z
  .strictObject({
    modelPath: z.string().min(1).optional(),
    shape: z.enum(Object.keys(SHAPES) as [ShapeName, ...ShapeName[]], { error: `expected one of ${Object.keys(SHAPES).join(', ')}` }).optional(),
    quant: z.enum(Object.keys(FILE_TYPES) as [FileTypeName, ...FileTypeName[]], { error: `expected one of ${Object.keys(FILE_TYPES).join(', ')}` }).default('Q4_K_M'),
    nCtx: int(1, 1 << 24),
    /** layers on the GPU, as llama.cpp counts them: the output layer first, then blocks from the last one down */
    nGpuLayers: int(0, 100000).default(0),
    /** a GPU backend is present, whether or not layers are offloaded (default: nGpuLayers > 0) */
    gpu: z.boolean().optional(),
    /** the share of the offloaded layers for each GPU, as llama.cpp's tensor_split (default: one GPU) */
    tensorSplit: z.array(z.number().nonnegative()).min(1).max(64).refine((a) => a.some((x) => x > 0), { error: 'expected at least one share above 0' }).optional(),
    /** the GPUs whose memory is the host's RAM: true for all, or one flag per GPU in tensorSplit's order */
    sharesHostMemory: z.union([z.boolean(), z.array(z.boolean()).max(64)]).optional(),
    kvCacheType: z.enum(Object.keys(KV_CACHE_TYPES) as [KvCacheType, ...KvCacheType[]]).default('f16'),
    kvCacheTypeV: z.enum(Object.keys(KV_CACHE_TYPES) as [KvCacheType, ...KvCacheType[]]).optional(),
    nSeqMax: int(1, 256).default(1),
    nUbatch: int(1, 1 << 20).default(512),
    flashAttention: z.boolean().default(true),
    /** CPU features that decide weight repacking (default: AVX2 and AVX-512 present) */
    cpu: z.strictObject({ avx2: z.boolean(), avx512: z.boolean() }).default({ avx2: true, avx512: true }),
    /** LoRA adapter files loaded with the model (their tensors are counted where their weights are) */
    lora: z.array(z.looseObject({ path: z.string().min(1) }), { error: 'expected an array of { path }' }).max(32).optional(),
    /** bytes of LoRA adapters not given as files (counted on the CPU) */
    adapterBytes: z.number().int().nonnegative().default(0),
  })
  .refine((o) => (o.modelPath === undefined) !== (o.shape === undefined), { error: 'expected exactly one of modelPath and shape' });
export type PlanOptions = z.input<typeof planSchema>;

/** Bytes by kind of allocation. */
export interface MemoryParts {
  weightsBytes: number;
  repackBytes: number;
  kvCacheBytes: number;
  computeBytes: number;
  outputBytes: number;
  /** LoRA adapters' matrices */
  adapterBytes: number;
  totalBytes: number;
}

export interface DevicePlan extends MemoryParts {
  device: 'CPU' | 'GPU';
  /** which GPU (0-based, in tensorSplit's order); absent for the CPU */
  gpu?: number;
  /** a GPU whose memory is the host's RAM (sharesHostMemory): its part and the CPU's draw on one pool */
  sharesHostMemory?: true;
}

export interface MemoryPlan extends MemoryParts {
  nLayer: number;
  /** the context length llama.cpp will use (rounded up to 256) */
  nCtx: number;
  devices: DevicePlan[];
  /** with a GPU that shares the host's RAM: what the CPU and such GPUs hold there together */
  hostBytes?: number;
}

const MiB = 1024 * 1024;

/** Memory kept free on each device: 512 MiB or 5%, whichever is more. */
export function headroom(totalBytes: number): number {
  return Math.max(512 * MiB, 0.05 * totalBytes);
}

/**
 * Where llama.cpp puts each of its nLayer + 1 layers (the blocks, then the output layer at index
 * nLayer): the GPU's index in tensorSplit's order, or undefined for the CPU. The last nGpuLayers
 * layers are offloaded, split in proportion to tensorSplit (llama.cpp: upper_bound over the
 * cumulative split points).
 */
export function layerPlacement(nLayer: number, nGpuLayers: number, tensorSplit: readonly number[] = [1]): Array<number | undefined> {
  const offloaded = Math.min(nGpuLayers, nLayer + 1);
  const firstGpuLayer = nLayer + 1 - offloaded;
  const total = tensorSplit.reduce((a, b) => a + b, 0);
  let upTo = 0;
  const bounds = tensorSplit.map((x) => (upTo += x) / total);
  return Array.from({ length: nLayer + 1 }, (_, layer) => {
    if (layer < firstGpuLayer) return undefined;
    const x = (layer - firstGpuLayer) / offloaded;
    const i = bounds.findIndex((b) => b > x);
    return i < 0 ? bounds.length - 1 : i;
  });
}

const KV_TYPE_NAMES: Record<KvCacheType, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1', q5_0: 'Q5_0', q5_1: 'Q5_1', iq4_nl: 'IQ4_NL' };
const elementBytes = (t: KvCacheType) => {
  const g = GGML_TYPES[KV_TYPE_NAMES[t]];
  return g.typeSize / g.blockSize;
};

function repacked(t: PlannedTensor, cpu: { avx2: boolean; avx512: boolean }): boolean {
  if (t.name === 'token_embd.weight' || t.dims.length < 2 || t.dims[1] % 8 !== 0) return false;
  if (cpu.avx2 && ['Q4_0', 'Q4_K', 'IQ4_NL', 'MXFP4'].includes(t.type)) return true;
  return cpu.avx512 && t.type === 'Q2_K';
}

/** Plans the memory of a model file (modelPath) or of a shape and file type (shape, quant). */
export async function planMemory(options: PlanOptions): Promise<MemoryPlan> {
  const o = parseOptions(planSchema, options, 'planMemory');
  let shape: Pick<ModelShape, 'nLayer' | 'nEmbd' | 'nHead' | 'nHeadKv' | 'headDim' | 'nVocab'>;
  let tensors: PlannedTensor[];
  if (o.modelPath) {
    const h = await readGgufHeader(o.modelPath);
    const arch = h.metadata.get('general.architecture')?.value as string;
    const num = (k: string) => h.metadata.get(`${arch}.${k}`)?.value as number | undefined;
    const nEmbd = num('embedding_length') ?? 0;
    const nHead = num('attention.head_count') ?? 1;
    const vocab = h.metadata.get('tokenizer.ggml.tokens')?.value as GgufArray | undefined;
    shape = {
      nLayer: num('block_count') ?? 0,
      nEmbd,
      nHead,
      nHeadKv: num('attention.head_count_kv') ?? nHead,
      headDim: num('attention.key_length') ?? nEmbd / nHead,
      nVocab: num('vocab_size') ?? (vocab ? (vocab.length ?? vocab.values.length) : 0),
    };
    tensors = h.tensors.map((t) => {
      const layer = /^blk\.(\d+)\./.exec(t.name)?.[1];
      return { name: t.name, dims: t.dims, type: t.typeName, sizeBytes: t.sizeBytes, layer: layer === undefined ? undefined : Number(layer) };
    });
  } else {
    const s = SHAPES[o.shape!];
    shape = s;
    tensors = plannedTensors(s, o.quant);
  }
  if (shape.nLayer === 0) throw new OptionsError('the model has no layers (a vocabulary-only file?): nothing to plan');

  // llama.cpp's layers are the blocks and the output layer (index nLayer): the last nGpuLayers
  // of them go to the GPUs, layer by layer in proportion to the split
  const offloaded = Math.min(o.nGpuLayers, shape.nLayer + 1);
  const shares = o.tensorSplit ?? [1];
  const placement = layerPlacement(shape.nLayer, o.nGpuLayers, shares);
  const gpuOf = (layer: number): number | undefined => placement[layer];
  const outputGpu = gpuOf(shape.nLayer);
  const placeOf = (t: PlannedTensor): number | undefined =>
    t.layer !== undefined ? gpuOf(t.layer) : t.name === 'output.weight' || t.name === 'output_norm.weight' ? outputGpu : undefined;
  // the logits are computed where the output layer is; with tied embeddings (no output.weight)
  // llama.cpp loads a second copy of token_embd there for the output projection
  const logitsOnGpu = outputGpu !== undefined;
  const tiedCopy = outputGpu !== undefined && !tensors.some((t) => t.name === 'output.weight') ? tensors.find((t) => t.name === 'token_embd.weight') : undefined;
  const repacks = !(o.gpu ?? offloaded > 0);
  const nCtx = Math.ceil(o.nCtx / 256) * 256;
  const u = Math.min(o.nUbatch, nCtx);
  const kvPerLayer = nCtx * shape.nHeadKv * shape.headDim * (elementBytes(o.kvCacheType) + elementBytes(o.kvCacheTypeV ?? o.kvCacheType));
  const logits = shape.nVocab * u * 4;
  // without flash attention: the f32 attention scores of every head, and the mask
  const scores = o.flashAttention ? 0 : nCtx * u * (shape.nHead + 1) * 4;
  const activations = 8 * shape.nEmbd * u;
  const output = shape.nVocab * 4 * o.nSeqMax;

  const empty = { weightsBytes: 0, repackBytes: 0, kvCacheBytes: 0, computeBytes: 0, outputBytes: 0, adapterBytes: 0, totalBytes: 0 };
  const cpu: DevicePlan = { device: 'CPU', ...empty, outputBytes: output };
  const gpus: DevicePlan[] = outputGpu === undefined ? [] : shares.map((_, gpu) => ({ device: 'GPU', gpu, ...empty }));
  const on = (place: number | undefined) => (place === undefined ? cpu : gpus[place]);
  for (const t of tensors) {
    const d = on(placeOf(t));
    d.weightsBytes += t.sizeBytes;
    if (d === cpu && repacks && repacked(t, o.cpu)) cpu.repackBytes += t.sizeBytes;
  }
  if (tiedCopy) gpus[outputGpu!].weightsBytes += tiedCopy.sizeBytes;
  cpu.adapterBytes += o.adapterBytes;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const l of o.lora ?? []) {
    for (const t of (await readLoraHeader(l.path)).tensors) {
      const base = byName.get(t.name.replace(/\.lora_[ab]$/, ''));
      // a repacked weight's adapter stays on the CPU, as llama.cpp keeps it
      const d = base && !(repacks && repacked(base, o.cpu)) ? on(placeOf(base)) : cpu;
      d.adapterBytes += t.sizeBytes;
    }
  }
  for (let layer = 0; layer < shape.nLayer; layer++) on(gpuOf(layer)).kvCacheBytes += kvPerLayer;
  if (outputGpu === undefined) {
    cpu.computeBytes = Math.max(logits, scores) + activations;
  } else {
    // the compute buffers live where the work runs; the CPU keeps a host buffer for its part
    cpu.computeBytes = (logitsOnGpu ? 0 : logits) + activations;
    gpus.forEach((g, i) => {
      const hasBlocks = g.kvCacheBytes > 0;
      g.computeBytes = Math.max(logitsOnGpu && i === outputGpu ? logits : 0, hasBlocks ? scores : 0) + activations;
    });
  }
  const devices = [cpu, ...gpus];
  for (const d of devices) d.totalBytes = d.weightsBytes + d.repackBytes + d.kvCacheBytes + d.computeBytes + d.outputBytes + d.adapterBytes;
  const shared = o.sharesHostMemory;
  for (const g of gpus) if (shared === true || (Array.isArray(shared) && shared[g.gpu!])) g.sharesHostMemory = true;
  const onHost = devices.filter((d) => d === cpu || d.sharesHostMemory);
  const sum = (k: keyof MemoryParts) => devices.reduce((n, d) => n + d[k], 0);
  return {
    nLayer: shape.nLayer,
    nCtx,
    weightsBytes: sum('weightsBytes'),
    repackBytes: sum('repackBytes'),
    kvCacheBytes: sum('kvCacheBytes'),
    computeBytes: sum('computeBytes'),
    outputBytes: sum('outputBytes'),
    adapterBytes: sum('adapterBytes'),
    totalBytes: sum('totalBytes'),
    devices,
    ...(onHost.length > 1 ? { hostBytes: onHost.reduce((n, d) => n + d.totalBytes, 0) } : {}),
  };
}
