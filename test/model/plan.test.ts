// The memory plan against what llama.cpp reports it allocated (its own log lines).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackendInfo, loadModel, planMemory, setLogger, type ContextOptions, type Model } from '../../src/index.js';
import { SHAPES } from '../../src/gguf/shapes.js';
import { plannedTensors, type PlannedTensor } from '../../src/gguf/tensors.js';
import { offloadGpus } from '../../src/engine/backends.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { FIXTURES, hasGpu } from '../fixtures.js';

const MiB = 1024 * 1024;
const withGpu = hasGpu();

type Parts = { weights: number; repack: number; kv: number; compute: number; output: number; total: number };

const zero = (): Parts => ({ weights: 0, repack: 0, kv: 0, compute: 0, output: 0, total: 0 });
const KINDS: Record<string, keyof Parts> = { model: 'weights', KV: 'kv', compute: 'compute', output: 'output' };

/** llama.cpp's own log lines ("CUDA0 KV buffer size = 2.00 MiB") summed by device and kind; host buffers count as CPU. */
function allocated(lines: string[]): { CPU: Parts; all: Parts; byDevice: Map<string, Parts> } {
  const byDevice = new Map<string, Parts>([['CPU', zero()]]);
  const all = zero();
  for (const line of lines) {
    const m = /(\S+)\s+(model|KV|compute|output) buffer size =\s*([\d.]+) MiB/.exec(line);
    if (!m) continue;
    const device = /^CPU|_Host$/.test(m[1]) ? 'CPU' : m[1];
    const kind = m[1] === 'CPU_REPACK' ? 'repack' : KINDS[m[2]];
    if (!byDevice.has(device)) byDevice.set(device, zero());
    for (const p of [byDevice.get(device)!, all]) {
      p[kind] += Number(m[3]) * MiB;
      p.total += Number(m[3]) * MiB;
    }
  }
  return { CPU: byDevice.get('CPU')!, all, byDevice };
}

async function actual(path: string, ctx: ContextOptions, nGpuLayers = 0) {
  const lines: string[] = [];
  const model: Model = await loadModel({ modelPath: path, nGpuLayers, logger: (_l, s) => lines.push(s), logLevel: 'info' });
  const context = await model.createContext(ctx);
  await new Promise((r) => setTimeout(r, 50));
  setLogger(null);
  const tensorSplit = model.tensorSplit ? [...model.tensorSplit] : undefined;
  await context.dispose();
  await model.dispose();
  return { ...allocated(lines), tensorSplit };
}

const cases: Array<[string, string, ContextOptions]> = [
  ['F16, 2k context', FIXTURES.f16, { nCtx: 2048 }],
  ['F16, 256 context', FIXTURES.f16, { nCtx: 256 }],
  ['Q4_K_M, 8k context', FIXTURES.q4km, { nCtx: 8192 }],
  ['Q4_K_M, 8k context, ubatch 128', FIXTURES.q4km, { nCtx: 8192, nUbatch: 128 }],
  ['Q8_0, 4k context, q8_0 KV cache', FIXTURES.q8, { nCtx: 4096, kvCacheType: 'q8_0' }],
  ['Q4_K_M, 32k context, no flash attention', FIXTURES.q4km, { nCtx: 32768, flashAttention: false }],
];

// On the CPU alone. With a GPU backend llama.cpp also offloads large matrix products of CPU
// layers to the GPU (its op offload), which the plan does not model; the next block covers GPUs.
describe.runIf(!withGpu)('planMemory without a GPU backend', () => {
  const errors: string[] = [];
  afterAll(() => console.log(`plan vs llama.cpp's allocations (total):\n${errors.join('\n')}`));

  it.each(cases)('%s: within 5% of what llama.cpp allocates', async (name, path, ctx) => {
    const { all: real } = await actual(path, ctx);
    const plan = await planMemory({ modelPath: path, nCtx: ctx.nCtx as number, nUbatch: ctx.nUbatch, kvCacheType: ctx.kvCacheType, flashAttention: ctx.flashAttention !== false, gpu: withGpu });
    const err = (plan.totalBytes - real.total) / real.total;
    errors.push(`  ${name}: planned ${(plan.totalBytes / MiB).toFixed(1)} MiB, allocated ${(real.total / MiB).toFixed(1)} MiB (${(err * 100).toFixed(2)}%)`);
    expect(Math.abs(err)).toBeLessThan(0.05);
    expect(Math.abs(plan.weightsBytes - real.weights) / real.weights).toBeLessThan(0.01);
    expect(Math.abs(plan.repackBytes - real.repack)).toBeLessThan(0.01 * MiB);
    expect(Math.abs(plan.kvCacheBytes - real.kv)).toBeLessThan(0.01 * MiB);
    expect(Math.abs(plan.computeBytes - real.compute) / real.compute).toBeLessThan(0.05);
  });
});

// Where a GPU backend is present (a CUDA, Metal or Vulkan build on a machine with a GPU): every
// split of llama.cpp's nLayer + 1 layers, device by device (several GPUs: split by free memory).
describe.runIf(withGpu)('planMemory with layers on the GPU', () => {
  const errors: string[] = [];
  afterAll(() => console.log(`plan vs llama.cpp's allocations by device:\n${errors.join('\n')}`));

  it.each([1, 2, 3])('nGpuLayers %i: weights and KV cache on each device as llama.cpp places them', async (nGpuLayers) => {
    const real = await actual(FIXTURES.q4km, { nCtx: 2048 }, nGpuLayers);
    const plan = await planMemory({ modelPath: FIXTURES.q4km, nCtx: 2048, nGpuLayers, gpu: true, tensorSplit: real.tensorSplit });
    const gpuNames = offloadGpus(getBackendInfo().devices).map((d) => d.name);
    for (const p of plan.devices) {
      const name = p.device === 'CPU' ? 'CPU' : gpuNames[p.gpu ?? 0];
      const r = real.byDevice.get(name) ?? zero();
      errors.push(`  ${nGpuLayers} layers, ${name}: planned ${(p.totalBytes / MiB).toFixed(2)} MiB, allocated ${(r.total / MiB).toFixed(2)} MiB (compute ${(p.computeBytes / MiB).toFixed(2)} / ${(r.compute / MiB).toFixed(2)})`);
      expect(Math.abs(p.weightsBytes - r.weights), `${name} weights`).toBeLessThan(0.02 * MiB);
      expect(Math.abs(p.kvCacheBytes - r.kv), `${name} KV cache`).toBeLessThan(0.01 * MiB);
      expect(Math.abs(p.repackBytes - r.repack), `${name} repacked`).toBeLessThan(0.01 * MiB);
    }
    // every device llama.cpp put weights or a KV cache on is in the plan
    for (const [name, r] of real.byDevice) if (r.weights + r.kv > 0.02 * MiB) expect(name === 'CPU' || gpuNames.includes(name), name).toBe(true);
    const cpu = plan.devices.find((d) => d.device === 'CPU')!;
    expect(Math.abs(cpu.computeBytes - real.CPU.compute) / real.CPU.compute, 'CPU compute').toBeLessThan(0.05);
    // with several GPUs and every layer offloaded llama.cpp runs the GPUs as a pipeline and keeps
    // copies of the graph inputs: compute memory the plan does not model, so only weights and KV
    // caches are held to llama.cpp's figures there
    if (gpuNames.length === 1 || nGpuLayers <= plan.nLayer) expect(Math.abs(plan.totalBytes - real.all.total) / real.all.total, 'total').toBeLessThan(0.05);
  });
});

describe('planMemory from a shape', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.q4km, vocabOnly: true });
  });
  afterAll(() => model.dispose());

  it('types the tensors as llama.cpp quantizes them', async () => {
    for (const [quant, path] of [['Q4_K_M', FIXTURES.q4km], ['Q8_0', FIXTURES.q8], ['F16', FIXTURES.f16]] as const) {
      const fromShape = await planMemory({ shape: 'tiny', quant, nCtx: 4096 });
      const fromFile = await planMemory({ modelPath: path, nCtx: 4096 });
      expect(fromShape.weightsBytes, quant).toBe(fromFile.weightsBytes);
      expect(fromShape.totalBytes, quant).toBe(fromFile.totalBytes);
    }
  });

  it('knows the KV cache of Hermes 3 8B, 70B and 405B', async () => {
    for (const [shape, perToken] of [['8b', 131072], ['70b', 327680], ['405b', 516096]] as const) {
      const plan = await planMemory({ shape, quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 1000 });
      expect(plan.kvCacheBytes / 8192).toBe(perToken);
    }
  });

  it('splits weights and KV cache between CPU and GPU by layer, the output layer first', async () => {
    const tensors = plannedTensors(SHAPES['8b'], 'Q4_K_M');
    const bytes = (pick: (t: PlannedTensor) => boolean) => tensors.filter(pick).reduce((n, t) => n + t.sizeBytes, 0);
    const output = bytes((t) => t.name === 'output.weight' || t.name === 'output_norm.weight');
    // 17 of llama.cpp's 33 layers: the output layer and blocks 16..31
    const half = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 17 });
    const [cpu, gpu] = half.devices;
    expect(gpu.kvCacheBytes).toBe(cpu.kvCacheBytes);
    expect(gpu.weightsBytes).toBe(output + bytes((t) => t.layer !== undefined && t.layer >= 16));
    expect(cpu.weightsBytes).toBe(bytes((t) => (t.layer === undefined ? !t.name.startsWith('output') : t.layer < 16)));
    // with a GPU backend llama.cpp does not repack the CPU's weights
    expect(cpu.repackBytes + gpu.repackBytes).toBe(0);
    // the logits are computed on the GPU with the output matrix; the CPU keeps a host buffer
    expect(gpu.computeBytes).toBeGreaterThan(128256 * 512 * 4);
    expect(cpu.computeBytes).toBeLessThan(gpu.computeBytes / 10);
    const outputOnly = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 1 });
    expect(outputOnly.devices[1].weightsBytes).toBe(output);
    expect(outputOnly.devices[1].kvCacheBytes).toBe(0);
    const all = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 33 });
    expect(all.devices[0].kvCacheBytes).toBe(0);
    expect(all.devices[0].weightsBytes).toBe(bytes((t) => t.layer === undefined && !t.name.startsWith('output')));
    expect((await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 1000 })).totalBytes).toBe(all.totalBytes);
  });

  it('splits the offloaded layers between GPUs at llama.cpp\'s split points', async () => {
    const single = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 33 });
    const split = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 33, tensorSplit: [1, 1] });
    const [cpu, g0, g1] = split.devices;
    expect(split.devices).toHaveLength(3);
    // layer l of the 33 goes to GPU 0 while l / 33 < 0.5: blocks 0..16; blocks 17..31 and the output to GPU 1
    const kvPerLayer = single.kvCacheBytes / 32;
    expect(g0.kvCacheBytes).toBe(17 * kvPerLayer);
    expect(g1.kvCacheBytes).toBe(15 * kvPerLayer);
    expect(cpu.weightsBytes).toBe(single.devices[0].weightsBytes);
    expect(g0.weightsBytes + g1.weightsBytes).toBe(single.devices[1].weightsBytes);
    // the output matrix, and so the logits, on GPU 1
    expect(g1.computeBytes).toBeGreaterThan(g0.computeBytes);
    // a share of 0 gets nothing
    const skewed = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 33, tensorSplit: [0, 1] });
    expect(skewed.devices[1].weightsBytes).toBe(0);
    await expect(planMemory({ shape: '8b', nCtx: 8192, nGpuLayers: 33, tensorSplit: [0, 0] })).rejects.toThrow('expected at least one share above 0');
  });

  it('puts a copy of tied embeddings and the logits where the output layer is, and repacks only without a GPU backend', async () => {
    const cpuOnly = await planMemory({ modelPath: FIXTURES.q4km, nCtx: 2048 });
    const withGpu = await planMemory({ modelPath: FIXTURES.q4km, nCtx: 2048, gpu: true });
    expect(cpuOnly.repackBytes).toBeGreaterThan(0);
    expect(withGpu.repackBytes).toBe(0);
    // llama.cpp loads token_embd a second time for the output projection, on the output layer's
    // device, and computes the logits there (seen in its allocations with layers on rpc-servers)
    const all = await planMemory({ modelPath: FIXTURES.q4km, nCtx: 2048, nGpuLayers: 3 });
    const tokenEmbd = (await readGgufHeader(FIXTURES.q4km)).tensors.find((t) => t.name === 'token_embd.weight')!;
    expect(all.devices[1].weightsBytes).toBeGreaterThan(tokenEmbd.sizeBytes);
    expect(all.devices[0].computeBytes).toBeLessThan(128256 * 512 * 4);
    expect(all.devices[1].computeBytes).toBeGreaterThan(128256 * 512 * 4);
  });

  it('validates its options', async () => {
    await expect(planMemory({ nCtx: 4096 } as never)).rejects.toThrow('expected exactly one of modelPath and shape');
    await expect(planMemory({ shape: '9b' as never, nCtx: 1 })).rejects.toThrow('Invalid option shape for planMemory');
  });
});
