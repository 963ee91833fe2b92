/**
 * Fitting a model to the memory the devices report: nGpuLayers 'auto' takes as many layers as
 * the GPUs hold, nCtx 'auto' the longest context that fits, each with headroom. A request that
 * cannot fit fails before anything is loaded, naming what would. With several GPUs the layers
 * are planned as llama.cpp splits them: in proportion to each GPU's free memory. A GPU whose
 * memory is the host's RAM (Apple Silicon, integrated GPUs) and the CPU draw on one pool: what
 * is offloaded to it is not also free RAM, so their parts are checked together against it.
 */
import { InsufficientMemoryError } from '../errors.js';
import { headroom, planMemory, type DevicePlan, type MemoryPlan, type PlanOptions } from '../gguf/plan.js';
import { readGgufHeader } from '../gguf/reader.js';
import { SHAPES, shapeParams } from '../gguf/shapes.js';
import { offloadGpus, sharesHostMemory, type DeviceInfo } from './backends.js';
import { contextRange, type ContextRange } from './options.js';

const GiB = 1024 ** 3;

export { headroom };

// approximate bits per weight of the common file types, for "a smaller quant would fit"
const BITS: Array<[string, number]> = [
  ['Q8_0', 8.5],
  ['Q6_K', 6.56],
  ['Q5_K_M', 5.69],
  ['Q4_K_M', 4.85],
  ['IQ4_XS', 4.25],
  ['Q3_K_M', 3.91],
  ['Q2_K', 3.35],
];

export interface FitRequest {
  /** the model: a file, or a shape and quant */
  model: Pick<PlanOptions, 'modelPath' | 'shape' | 'quant' | 'lora'>;
  /** a length, or the longest that fits: 'auto' (at most AUTO_CTX_MAX) or a range */
  nCtx: number | 'auto' | ContextRange;
  nGpuLayers: number | 'auto' | 'max';
  nCtxTrain: number;
  kvCacheType?: PlanOptions['kvCacheType'];
  nSeqMax?: number;
  nUbatch?: number;
  flashAttention?: boolean;
  /** the devices and their free memory (getBackendInfo().devices) */
  devices: readonly DeviceInfo[];
  /** what is being fitted, for messages */
  label: string;
  /**
   * The mapped file stays resident beside the repacked copies (mmap with mlock). Otherwise each
   * repacked tensor is resident once: its mapped pages are released as it is copied.
   */
  keepsMappedCopies?: boolean;
}

export interface Fit {
  nGpuLayers: number;
  nCtx: number;
  plan: MemoryPlan;
  /** the split between several GPUs the plan assumes (llama.cpp's tensor_split); one GPU: absent */
  tensorSplit?: number[];
}

/**
 * What a plan is checked against: the CPU and the GPUs llama.cpp offloads to, each with its free
 * memory after headroom, the host's RAM once more for the CPU and the GPUs that share it, and the
 * plan options those devices imply.
 */
function budget(req: Pick<FitRequest, 'devices' | 'model' | 'kvCacheType' | 'nSeqMax' | 'nUbatch' | 'flashAttention' | 'keepsMappedCopies'>, tensorSplit?: number[]) {
  const cpu = req.devices.find((d) => d.type === 'cpu');
  const gpus = offloadGpus(req.devices);
  const shared = gpus.map((g) => sharesHostMemory(g, cpu));
  const device = (d: DevicePlan) => (d.device === 'CPU' ? cpu : gpus[d.gpu ?? 0]);
  const spare = (d: DeviceInfo | undefined) => (d ? Math.max(d.freeBytes - headroom(d.totalBytes), 0) : 0);
  const free = (d: DevicePlan) => {
    const dev = device(d);
    return dev ? dev.freeBytes - headroom(dev.totalBytes) : d.device === 'CPU' ? Infinity : 0;
  };
  /** the memory a device's part of the plan holds resident: repacked weights count once */
  const need = (d: DevicePlan) => d.totalBytes - (req.keepsMappedCopies ? 0 : d.repackBytes);
  // the host's RAM: the CPU's free memory (a shared GPU's own figure is what it may map of it)
  const hostDevice = cpu ?? gpus.find((_, i) => shared[i]);
  return {
    /** free memory after headroom on the CPU and every GPU together, a GPU that shares the host's RAM counted in it once */
    total: cpu ? gpus.reduce((n, g, i) => n + (shared[i] ? 0 : spare(g)), spare(cpu)) : Infinity,
    free,
    name: (d: DevicePlan) => device(d)?.name ?? d.device,
    need,
    /** with GPUs that share the host's RAM: what the CPU and they hold there together, and what is free of it */
    pool: (p: MemoryPlan): { need: number; free: number; names: string[] } | undefined => {
      const parts = p.devices.filter((d) => d.device === 'CPU' || d.sharesHostMemory);
      if (!hostDevice || parts.length < 2) return undefined;
      return { need: parts.reduce((n, d) => n + need(d), 0), free: hostDevice.freeBytes - headroom(hostDevice.totalBytes), names: parts.map((d) => device(d)?.name ?? d.device) };
    },
    plan: (nCtx: number, nGpuLayers: number) =>
      planMemory({
        ...req.model,
        nCtx,
        nGpuLayers,
        gpu: gpus.length > 0,
        tensorSplit,
        sharesHostMemory: shared.some(Boolean) ? shared : undefined,
        kvCacheType: req.kvCacheType,
        nSeqMax: req.nSeqMax,
        nUbatch: req.nUbatch,
        flashAttention: req.flashAttention,
      }),
  };
}

const gib = (n: number) => (n >= GiB || n <= -GiB ? `${(n / GiB).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`);

/** ", together 70.0 GiB of the RAM the CPU and the Apple M2 share (60.0 GiB free after headroom)" */
const pooled = (pool: { need: number; free: number; names: string[] } | undefined) =>
  pool ? `, together ${gib(pool.need)} of the RAM the ${pool.names.join(' and the ')} share (${gib(pool.free)} free after headroom)` : '';

export async function fitMemory(req: FitRequest): Promise<Fit> {
  const gpus = offloadGpus(req.devices);
  // several GPUs: llama.cpp's default split, by their free memory
  const tensorSplit = gpus.length > 1 ? gpus.map((g) => Math.max(g.freeBytes, 0)) : undefined;
  const { free, name, need, plan, pool, total: budgetTotal } = budget(req, tensorSplit);
  const fitsPool = (p: MemoryPlan) => {
    const shared = pool(p);
    return !shared || shared.need <= shared.free;
  };
  const fits = (p: MemoryPlan) => p.devices.every((d) => need(d) <= free(d)) && fitsPool(p);
  const gpusFit = (p: MemoryPlan) => p.devices.every((d) => d.device === 'CPU' || need(d) <= free(d));
  const nLayer = (await plan(256, 0)).nLayer;

  const contexts = typeof req.nCtx === 'number' ? [req.nCtx] : contextCandidates(contextRange(req.nCtx, req.nCtxTrain));

  const layersFor = async (nCtx: number): Promise<number> => {
    // without a GPU llama.cpp keeps every layer on the CPU, whatever was asked
    if (gpus.length === 0) return 0;
    // nLayer + 1 'layers': the blocks and the output layer
    if (req.nGpuLayers === 'max') return nLayer + 1;
    if (typeof req.nGpuLayers === 'number') return Math.min(req.nGpuLayers, nLayer + 1);
    // the most layers whose share fits the GPU (binary search: memory grows with layers)
    let lo = 0;
    let hi = nLayer + 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (gpusFit(await plan(nCtx, mid))) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };

  for (const nCtx of contexts) {
    const layers = await layersFor(nCtx);
    const p = await plan(nCtx, layers);
    if (fits(p)) return { nGpuLayers: layers, nCtx, plan: p, tensorSplit };
  }

  // nothing fits: say what is needed, and what would fit instead
  const wantCtx = contexts[0];
  const wantLayers = await layersFor(wantCtx);
  const needed = await plan(wantCtx, wantLayers);
  const parts = needed.devices.map((d) => `${gib(need(d))} on the ${name(d)} (${gib(free(d))} free after headroom)`);
  const options: string[] = [];
  if (gpus.length > 0 && wantLayers > 0) {
    for (let n = wantLayers - 1; n >= 0; n--) {
      if (fits(await plan(wantCtx, n))) {
        options.push(`nGpuLayers: ${n}`);
        break;
      }
    }
  }
  for (let c = wantCtx / 2; c >= 256; c = Math.floor(c / 2)) {
    if (fits(await plan(c, wantLayers))) {
      options.push(`nCtx: ${c}`);
      break;
    }
  }
  const nParams = await paramCount(req);
  const bitsNow = (needed.weightsBytes * 8) / nParams;
  for (const [quant, bits] of BITS) {
    const weights = (nParams * bits) / 8;
    if (bits >= bitsNow - 0.2) continue;
    // the smaller file's weights, each resident once
    const total = needed.totalBytes - needed.weightsBytes - needed.repackBytes + weights;
    if (total <= budgetTotal) {
      // "an IQ4_XS", "a Q4_K_M": the article follows the letter's spoken name
      options.push(`${/^[AEFHILMNORSX]/.test(quant) ? 'an' : 'a'} ${quant} file (about ${gib(weights)} of weights)`);
      break;
    }
  }
  throw new InsufficientMemoryError(
    `${req.label} with a ${wantCtx}-token context needs ${parts.join(' and ')}${pooled(pool(needed))}. ` +
      (options.length > 0 ? `It would fit with ${options.join(', or ')}.` : 'No smaller setting fits this machine.'),
  );
}

async function paramCount(req: FitRequest): Promise<number> {
  if (req.model.modelPath) return (await readGgufHeader(req.model.modelPath)).tensors.reduce((n, t) => n + t.nElements, 0);
  return shapeParams(SHAPES[req.model.shape!]);
}

/**
 * Context lengths to try for a range, longest first: max, the powers of two below it down to
 * 8192, then steps of 512, ending with min.
 */
export function contextCandidates(range: { min: number; max: number }): number[] {
  const out = [range.max];
  const next = (c: number) => (c > 8192 ? 2 ** Math.ceil(Math.log2(c) - 1) : Math.ceil(c / 512) * 512 - 512);
  for (let c = next(range.max); c > range.min; c = next(c)) out.push(c);
  if (range.min < range.max) out.push(range.min);
  return out;
}

/**
 * For a model already loaded: the context part of a plan (KV cache, compute and output
 * buffers) must fit what is free now; 'auto' takes the longest context that does.
 */
export async function fitContext(req: Omit<FitRequest, 'nGpuLayers'> & { nGpuLayers: number; tensorSplit?: number[] }): Promise<number> {
  const { free, name, plan, pool } = budget(req, req.tensorSplit);
  const contextBytes = async (nCtx: number) => {
    const p = await plan(nCtx, req.nGpuLayers);
    const parts = p.devices.map((d) => ({ name: name(d), free: free(d), bytes: d.kvCacheBytes + d.computeBytes + d.outputBytes }));
    // the weights are loaded already: the host's free RAM is what is left of the pool after them
    const shared = pool(p);
    const sharedParts = p.devices.filter((d) => d.device === 'CPU' || d.sharesHostMemory);
    return { parts, pool: shared && { ...shared, need: sharedParts.reduce((n, d) => n + d.kvCacheBytes + d.computeBytes + d.outputBytes, 0) } };
  };
  const fits = (c: Awaited<ReturnType<typeof contextBytes>>) => c.parts.every((p) => p.bytes <= p.free) && (!c.pool || c.pool.need <= c.pool.free);
  const candidates = typeof req.nCtx === 'number' ? [req.nCtx] : contextCandidates(contextRange(req.nCtx, req.nCtxTrain));
  for (const c of candidates) if (fits(await contextBytes(c))) return c;
  const wanted = candidates[0];
  const { parts, pool: shared } = await contextBytes(wanted);
  let shorter: number | undefined;
  for (let c = Math.floor(wanted / 2); c >= 256 && shorter === undefined; c = Math.floor(c / 2)) if (fits(await contextBytes(c))) shorter = c;
  throw new InsufficientMemoryError(
    `a ${wanted}-token context for ${req.label} needs ${parts.map((p) => `${gib(p.bytes)} on the ${p.name} (${gib(p.free)} free after headroom)`).join(' and ')}${pooled(shared)} for its KV cache and buffers. ` +
      (shorter ? `It would fit with nCtx: ${shorter}, or a smaller kvCacheType such as q8_0.` : 'Free some memory, or use a smaller kvCacheType such as q8_0.'),
  );
}
