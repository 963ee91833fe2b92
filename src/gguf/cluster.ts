/**
 * Planning a model across hosts and GPUs (llama.cpp's RPC backend makes every remote GPU one more
 * device): which layers each device gets, its weights, KV cache and compute buffers, whether
 * that fits its memory, and when it does not, what would (a shorter context, a q8_0 KV cache, a
 * smaller quantization, more devices).
 *
 * The figures are planMemory's, with the devices' memory as the split: llama.cpp splits the
 * offloaded layers in proportion to each device's free memory (tensor_split), in its device
 * order (rpc-server devices first, the main host's GPUs last), puts the output layer on the last
 * device and keeps the token embeddings on the main host's CPU. A GPU that shares the main
 * host's RAM (Apple Silicon, integrated GPUs: type 'igpu') draws on one pool with the CPU.
 */
import { z } from 'zod';
import { OptionsError } from '../errors.js';
import { KV_CACHE_TYPES, type KvCacheType } from '../engine/options.js';
import { int, parseOptions } from '../engine/validate.js';
import { inspectGguf } from './inspect.js';
import { headroom, layerPlacement, planMemory, type DevicePlan, type MemoryPlan } from './plan.js';
import { SHAPES, type ShapeName } from './shapes.js';
import { FILE_TYPES, type FileTypeName } from './types.js';

const deviceSchema = z.strictObject({
  name: z.string().min(1).max(100),
  totalBytes: z.number({ error: 'expected a number of bytes above 0' }).positive({ error: 'expected a number of bytes above 0' }).finite(),
  /** 'gpu' (default): a GPU, local or behind an rpc-server; 'igpu': a GPU whose memory is the main host's RAM; 'cpu': the main host's RAM */
  type: z.enum(['cpu', 'gpu', 'igpu']).default('gpu'),
});

const clusterSchema = z
  .strictObject({
    modelPath: z.string().min(1).optional(),
    shape: z.enum(Object.keys(SHAPES) as [ShapeName, ...ShapeName[]], { error: `expected one of ${Object.keys(SHAPES).join(', ')}` }).optional(),
    quant: z.enum(Object.keys(FILE_TYPES) as [FileTypeName, ...FileTypeName[]], { error: `expected one of ${Object.keys(FILE_TYPES).join(', ')}` }).default('Q4_K_M'),
    nCtx: int(1, 1 << 24),
    kvCacheType: z.enum(Object.keys(KV_CACHE_TYPES) as [KvCacheType, ...KvCacheType[]]).default('f16'),
    /** layers offloaded, as llama.cpp counts them (default: all, nLayer + 1) */
    nGpuLayers: int(0, 100000).optional(),
    nSeqMax: int(1, 256).default(1),
    nUbatch: int(1, 1 << 20).default(512),
    flashAttention: z.boolean().default(true),
    /** in llama.cpp's order: rpc-server devices first, the main host's GPUs last; at most one 'cpu' */
    devices: z
      .array(deviceSchema)
      .min(1)
      .max(64)
      .refine((a) => a.filter((d) => d.type === 'cpu').length <= 1, { error: "expected at most one device of type 'cpu' (the main host's RAM)" })
      .refine((a) => a.some((d) => d.type !== 'cpu'), { error: 'expected at least one GPU' }),
  })
  .refine((o) => (o.modelPath === undefined) !== (o.shape === undefined), { error: 'expected exactly one of modelPath and shape' });
export type ClusterOptions = z.input<typeof clusterSchema>;
export type ClusterDevice = z.input<typeof deviceSchema>;

export interface ClusterDevicePlan extends DevicePlan {
  name: string;
  /** the device's memory as given; absent for the CPU when the main host's RAM was not given */
  memoryBytes?: number;
  /** memoryBytes less the headroom kept free (512 MiB or 5%) */
  usableBytes?: number;
  /** the blocks it holds, as llama.cpp numbers them; absent for none */
  blocks?: { first: number; last: number; count: number };
  /** it holds the output layer (output matrix and norm) */
  outputLayer: boolean;
  /** it holds the token embeddings (always the CPU) */
  tokenEmbeddings: boolean;
  /** its part fits its usable memory; absent when its memory was not given */
  fits?: boolean;
}

/** A change that would make the plan fit, each on its own. */
export type ClusterSuggestion =
  | { kind: 'nCtx'; nCtx: number }
  | { kind: 'kvCacheType'; kvCacheType: KvCacheType }
  | { kind: 'quant'; quant: FileTypeName; weightsBytes: number }
  | { kind: 'devices'; count: number; memoryBytes: number };

export interface ClusterPlan {
  /** the shape's name or the file's path */
  model: string;
  quant: string | undefined;
  /** the context length llama.cpp will use (rounded up to 256) */
  nCtx: number;
  kvCacheType: KvCacheType;
  nLayer: number;
  nGpuLayers: number;
  /** the CPU first, then the GPUs in the order given */
  devices: ClusterDevicePlan[];
  /** with GPUs that share the main host's RAM: what the CPU and they hold there together */
  hostPool?: { devices: string[]; needBytes: number; memoryBytes: number; usableBytes: number; fits: boolean };
  weightsBytes: number;
  kvCacheBytes: number;
  /** compute and output buffers */
  computeBytes: number;
  totalBytes: number;
  /** the memory of every device given, the main host's RAM counted once */
  memoryBytes: number;
  fits: boolean;
  /** when it does not fit: what would, each on its own */
  suggestions: ClusterSuggestion[];
  /** one line: "fits (...)" or "does not fit: ...; it would fit with ..." */
  verdict: string;
}

type Parsed = z.output<typeof clusterSchema>;
type Device = Parsed['devices'][number];
/** a file (its file type, for the plan's quant) or a shape and file type */
type Model = { modelPath: string; quant: string | undefined } | { shape: ShapeName; quant: FileTypeName };

const GiB = 1024 ** 3;
const formatGiB = (n: number) => (n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`);

/** Plans a model (a shape and quant, or a file) across the devices given, with a verdict. */
export async function planCluster(options: ClusterOptions): Promise<ClusterPlan> {
  const o = parseOptions(clusterSchema, options, 'planCluster');
  const model: Model = o.modelPath ? { modelPath: o.modelPath, quant: (await inspectGguf(o.modelPath)).fileType } : { shape: o.shape!, quant: o.quant };
  const plan = await evaluate(o, model, o.nCtx, o.kvCacheType, o.devices);
  if (plan.fits) return plan;

  const suggestions: ClusterSuggestion[] = [];
  const fitsWith = async (m: Model, nCtx: number, kv: KvCacheType, devices: Device[]) => (await evaluate(o, m, nCtx, kv, devices)).fits;
  // the longest context that fits, in llama.cpp's steps of 256 (memory grows with the context)
  if (await fitsWith(model, 256, o.kvCacheType, o.devices)) {
    let lo = 1;
    let hi = plan.nCtx / 256 - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (await fitsWith(model, mid * 256, o.kvCacheType, o.devices)) lo = mid;
      else hi = mid - 1;
    }
    suggestions.push({ kind: 'nCtx', nCtx: lo * 256 });
  }
  if (['f32', 'f16', 'bf16'].includes(o.kvCacheType) && (await fitsWith(model, o.nCtx, 'q8_0', o.devices))) suggestions.push({ kind: 'kvCacheType', kvCacheType: 'q8_0' });
  // a smaller quantization: the largest that fits (a file of a known shape is planned as that shape)
  const shape = o.shape ?? (await shapeOfFile(o.modelPath!));
  if (shape) {
    const smaller: Array<{ quant: FileTypeName; weightsBytes: number }> = [];
    for (const quant of Object.keys(FILE_TYPES) as FileTypeName[]) {
      const p = await planMemory({ shape, quant, nCtx: 256, gpu: true });
      if (p.weightsBytes < plan.weightsBytes) smaller.push({ quant, weightsBytes: p.weightsBytes });
    }
    smaller.sort((a, b) => b.weightsBytes - a.weightsBytes);
    for (const s of smaller) {
      if (await fitsWith({ shape, quant: s.quant }, o.nCtx, o.kvCacheType, o.devices)) {
        suggestions.push({ kind: 'quant', ...s });
        break;
      }
    }
  }
  // more devices like the largest: new rpc-server hosts come first in llama.cpp's order
  const gpus = o.devices.filter((d) => d.type !== 'cpu');
  const largest = Math.max(...gpus.map((d) => d.totalBytes));
  for (let count = 1; count <= Math.min(32, 64 - gpus.length); count++) {
    const more: Device[] = Array.from({ length: count }, (_, i) => ({ name: `new${i}`, totalBytes: largest, type: 'gpu' }));
    if (await fitsWith(model, o.nCtx, o.kvCacheType, [...more, ...o.devices])) {
      suggestions.push({ kind: 'devices', count, memoryBytes: largest });
      break;
    }
  }
  return { ...plan, suggestions, verdict: verdict(plan, suggestions) };
}

/** One plan against the devices: per device its layers, figures and whether they fit. */
async function evaluate(o: Parsed, model: Model, nCtx: number, kvCacheType: KvCacheType, devices: Device[]): Promise<ClusterPlan> {
  const cpu = devices.find((d) => d.type === 'cpu');
  const gpus = devices.filter((d) => d.type !== 'cpu');
  const p: MemoryPlan = await planMemory({
    ...('modelPath' in model ? { modelPath: model.modelPath } : model),
    nCtx,
    kvCacheType,
    nGpuLayers: o.nGpuLayers ?? 100000,
    gpu: true,
    // llama.cpp's default split: each device's free memory, here its size
    tensorSplit: gpus.map((g) => g.totalBytes),
    sharesHostMemory: gpus.map((g) => g.type === 'igpu'),
    nSeqMax: o.nSeqMax,
    nUbatch: o.nUbatch,
    flashAttention: o.flashAttention,
  });
  const nGpuLayers = Math.min(o.nGpuLayers ?? 100000, p.nLayer + 1);
  const placement = layerPlacement(p.nLayer, nGpuLayers, gpus.map((g) => g.totalBytes));
  const blocksOf = (gpu: number | undefined) => {
    const held = placement.slice(0, p.nLayer).flatMap((g, layer) => (g === gpu ? [layer] : []));
    return held.length > 0 ? { first: held[0], last: held.at(-1)!, count: held.length } : undefined;
  };
  const empty = { weightsBytes: 0, repackBytes: 0, kvCacheBytes: 0, computeBytes: 0, outputBytes: 0, adapterBytes: 0, totalBytes: 0 };
  const describe = (d: DevicePlan, dev: Device | undefined, gpu: number | undefined, name: string): ClusterDevicePlan => {
    const usableBytes = dev && Math.floor(dev.totalBytes - headroom(dev.totalBytes));
    return {
      ...d,
      name,
      ...(dev ? { memoryBytes: dev.totalBytes, usableBytes } : {}),
      ...(blocksOf(gpu) ? { blocks: blocksOf(gpu) } : {}),
      outputLayer: placement[p.nLayer] === gpu,
      tokenEmbeddings: gpu === undefined,
      ...(usableBytes !== undefined ? { fits: d.totalBytes <= usableBytes } : {}),
    };
  };
  const cpuPlan = p.devices.find((d) => d.device === 'CPU')!;
  // without cpu:SIZE, a GPU that shares the host's RAM says how much there is
  const igpu = gpus.find((g) => g.type === 'igpu');
  const host = cpu ?? (igpu && { ...igpu, type: 'cpu' as const });
  const rows = [
    describe(cpuPlan, host, undefined, cpu?.name ?? 'CPU'),
    // without offloaded layers planMemory lists no GPU
    ...gpus.map((g, i) => describe(p.devices.find((d) => d.gpu === i) ?? { device: 'GPU', gpu: i, ...empty, ...(g.type === 'igpu' ? { sharesHostMemory: true as const } : {}) }, g, i, g.name)),
  ];
  const onHost = rows.filter((r, i) => i === 0 || r.sharesHostMemory);
  let hostPool: ClusterPlan['hostPool'];
  if (onHost.length > 1) {
    const memoryBytes = host!.totalBytes;
    const needBytes = onHost.reduce((n, r) => n + r.totalBytes, 0);
    const usableBytes = Math.floor(memoryBytes - headroom(memoryBytes));
    hostPool = { devices: onHost.map((r) => r.name), needBytes, memoryBytes, usableBytes, fits: needBytes <= usableBytes };
  }
  const plan: ClusterPlan = {
    model: o.modelPath ?? o.shape!,
    quant: model.quant,
    nCtx: p.nCtx,
    kvCacheType,
    nLayer: p.nLayer,
    nGpuLayers,
    devices: rows,
    ...(hostPool ? { hostPool } : {}),
    weightsBytes: p.weightsBytes,
    kvCacheBytes: p.kvCacheBytes,
    computeBytes: p.computeBytes + p.outputBytes,
    totalBytes: p.totalBytes,
    memoryBytes: gpus.reduce((n, g) => n + (g.type === 'igpu' ? 0 : g.totalBytes), host?.totalBytes ?? 0),
    fits: rows.every((r) => r.fits !== false) && hostPool?.fits !== false,
    suggestions: [],
    verdict: '',
  };
  plan.verdict = verdict(plan, []);
  return plan;
}

function verdict(plan: ClusterPlan, suggestions: ClusterSuggestion[]): string {
  if (plan.fits) {
    const uses = plan.devices.filter((d) => d.usableBytes).map((d) => ({ what: `device, ${d.name},`, share: d.totalBytes / d.usableBytes! }));
    if (plan.hostPool) uses.push({ what: `part is the host's RAM (${plan.hostPool.devices.join(' and ')}), which`, share: plan.hostPool.needBytes / plan.hostPool.usableBytes });
    const fullest = uses.reduce((a, b) => (b.share > a.share ? b : a));
    return `fits: the fullest ${fullest.what} uses ${Math.round(100 * fullest.share)}% of its usable memory`;
  }
  const overflowing = plan.devices.filter((d) => d.fits === false).sort((a, b) => b.totalBytes / b.usableBytes! - a.totalBytes / a.usableBytes!);
  const needs = (d: ClusterDevicePlan) => `${d.name} needs ${formatGiB(d.totalBytes)} of ${formatGiB(d.usableBytes!)} usable`;
  // many devices over: the count and the worst of them
  const over = overflowing.length > 2 ? [`${overflowing.length} of ${plan.devices.length} devices are over their memory (the worst: ${needs(overflowing[0])})`] : overflowing.map(needs);
  const pool = plan.hostPool;
  if (pool && !pool.fits) over.push(`${pool.devices.join(' and ')} together need ${formatGiB(pool.needBytes)} of the host's ${formatGiB(pool.usableBytes)} usable`);
  const ways = suggestions.map((s) => {
    if (s.kind === 'nCtx') return `a ${s.nCtx}-token context`;
    if (s.kind === 'kvCacheType') return `a ${s.kvCacheType} KV cache`;
    if (s.kind === 'quant') return `${/^[AEFHILMNORSX]/.test(s.quant) ? 'an' : 'a'} ${s.quant} file (${formatGiB(s.weightsBytes)} of weights)`;
    return `${s.count} more ${formatGiB(s.memoryBytes).replace('.0 ', ' ')} device${s.count > 1 ? 's' : ''}`;
  });
  return `does not fit: ${over.join(', ')}; ${ways.length > 0 ? `it would fit with ${ways.join(', or ')}` : 'no shorter context, smaller quantization or up to 32 more devices would fit'}`;
}

/** The Hermes 3 shape a file has (its block count and widths), if any. */
async function shapeOfFile(path: string): Promise<ShapeName | undefined> {
  const s = (await inspectGguf(path)).shape;
  const match = Object.values(SHAPES).find((x) => x.nLayer === s.nLayer && x.nEmbd === s.nEmbd && x.nFf === s.nFf && x.nHead === s.nHead && x.nHeadKv === s.nHeadKv);
  return match?.name;
}

/**
 * Parses a device list such as `4x80GiB,2x24GiB,cpu:64GiB`: `[N x]SIZE` is N GPUs of SIZE
 * (GiB, GB, MiB, MB, TiB, TB), `cpu:SIZE` the main host's RAM, `igpu:SIZE` a GPU that shares
 * it (Apple Silicon, integrated GPUs), `NAME:[N x]SIZE` names a host's GPUs. `what` names the
 * list in messages.
 */
export function parseDeviceList(spec: string, what = 'device list'): ClusterDevice[] {
  const units: Record<string, number> = { gib: GiB, gb: 1e9, mib: 2 ** 20, mb: 1e6, tib: 2 ** 40, tb: 1e12 };
  const out: ClusterDevice[] = [];
  const fail = (expected: string, item: string) => new OptionsError(`Invalid ${what}: expected ${expected}, received '${item}'`);
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:([A-Za-z][\w.-]*):)?(?:(\d+)\s*[x*]\s*)?(\d+(?:\.\d+)?)\s*(GiB|GB|MiB|MB|TiB|TB)$/i.exec(item);
    if (!m) throw fail('[NAME:][Nx]SIZE with SIZE in GiB, GB, MiB, MB, TiB or TB (e.g. 4x80GiB, cpu:64GiB, igpu:128GiB)', item);
    const [, label, n, size, unit] = m;
    const count = n === undefined ? 1 : Number(n);
    const totalBytes = Math.round(Number(size) * units[unit.toLowerCase()]);
    const kind = label?.toLowerCase();
    if ((kind === 'cpu' || kind === 'igpu') && count !== 1) throw fail(`one ${kind} device`, item);
    if (count < 1 || totalBytes <= 0) throw fail('at least one device of more than 0 bytes', item);
    if (kind === 'cpu') out.push({ name: 'CPU', totalBytes, type: 'cpu' });
    else if (kind === 'igpu') out.push({ name: 'iGPU', totalBytes, type: 'igpu' });
    else {
      const first = out.filter((d) => d.type === 'gpu' && (label ? d.name.startsWith(`${label}/`) : !d.name.includes('/'))).length;
      for (let i = 0; i < count; i++) out.push({ name: label ? `${label}/GPU${first + i}` : `GPU${first + i}`, totalBytes, type: 'gpu' });
    }
  }
  if (out.length === 0) throw fail('devices such as 4x80GiB,2x24GiB', spec);
  return out;
}
