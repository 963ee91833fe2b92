// The memory plan against what llama.cpp reports it allocated (its own log lines).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, planMemory, setLogger, type ContextOptions, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';

const MiB = 1024 * 1024;

function allocated(lines: string[], what: RegExp): number {
  return lines.filter((l) => what.test(l)).reduce((n, l) => n + Number(/=\s*([\d.]+) MiB/.exec(l)?.[1] ?? 0) * MiB, 0);
}

async function actual(path: string, ctx: ContextOptions) {
  const lines: string[] = [];
  const model: Model = await loadModel({ modelPath: path, logger: (_l, s) => lines.push(s), logLevel: 'info' });
  const context = await model.createContext(ctx);
  await new Promise((r) => setTimeout(r, 50));
  setLogger(null);
  const out = {
    weights: allocated(lines, /CPU_Mapped model buffer size|CPU model buffer size/),
    repack: allocated(lines, /CPU_REPACK model buffer size/),
    kv: allocated(lines, /KV buffer size/),
    compute: allocated(lines, /compute buffer size/),
    output: allocated(lines, /output buffer size/),
  };
  await context.dispose();
  await model.dispose();
  return { ...out, total: out.weights + out.repack + out.kv + out.compute + out.output };
}

const cases: Array<[string, string, ContextOptions]> = [
  ['F16, 2k context', FIXTURES.f16, { nCtx: 2048 }],
  ['F16, 256 context', FIXTURES.f16, { nCtx: 256 }],
  ['Q4_K_M, 8k context', FIXTURES.q4km, { nCtx: 8192 }],
  ['Q4_K_M, 8k context, ubatch 128', FIXTURES.q4km, { nCtx: 8192, nUbatch: 128 }],
  ['Q8_0, 4k context, q8_0 KV cache', FIXTURES.q8, { nCtx: 4096, kvCacheType: 'q8_0' }],
  ['Q4_K_M, 32k context, no flash attention', FIXTURES.q4km, { nCtx: 32768, flashAttention: false }],
];

describe('planMemory', () => {
  const errors: string[] = [];
  afterAll(() => console.log(`plan vs llama.cpp's allocations (total):\n${errors.join('\n')}`));

  it.each(cases)('%s: within 5% of what llama.cpp allocates', async (name, path, ctx) => {
    const real = await actual(path, ctx);
    const plan = await planMemory({ modelPath: path, nCtx: ctx.nCtx as number, nUbatch: ctx.nUbatch, kvCacheType: ctx.kvCacheType, flashAttention: ctx.flashAttention !== false });
    const err = (plan.totalBytes - real.total) / real.total;
    errors.push(`  ${name}: planned ${(plan.totalBytes / MiB).toFixed(1)} MiB, allocated ${(real.total / MiB).toFixed(1)} MiB (${(err * 100).toFixed(2)}%)`);
    expect(Math.abs(err)).toBeLessThan(0.05);
    expect(Math.abs(plan.weightsBytes - real.weights) / real.weights).toBeLessThan(0.01);
    expect(Math.abs(plan.repackBytes - real.repack)).toBeLessThan(0.01 * MiB);
    expect(Math.abs(plan.kvCacheBytes - real.kv)).toBeLessThan(0.01 * MiB);
    expect(Math.abs(plan.computeBytes - real.compute) / real.compute).toBeLessThan(0.05);
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

  it('splits weights and KV cache between CPU and GPU by layer', async () => {
    const half = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 16 });
    const [cpu, gpu] = half.devices;
    expect(gpu.kvCacheBytes).toBe(cpu.kvCacheBytes);
    expect(gpu.repackBytes).toBe(0);
    expect(cpu.weightsBytes).toBeGreaterThan(gpu.weightsBytes); // the embeddings and output stay on the CPU
    const all = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 33 });
    expect(all.devices[0].kvCacheBytes).toBe(0);
    expect(all.devices[1].weightsBytes).toBeGreaterThan(4.5e9);
  });

  it('validates its options', async () => {
    await expect(planMemory({ nCtx: 4096 } as never)).rejects.toThrow('expected exactly one of modelPath and shape');
    await expect(planMemory({ shape: '9b' as never, nCtx: 1 })).rejects.toThrow('Invalid option shape for planMemory');
  });
});
