import { describe, expect, it } from 'vitest';
import { InsufficientMemoryError } from '../../src/errors.js';
import type { DeviceInfo } from '../../src/engine/backends.js';
import { contextCandidates, fitContext, fitMemory, headroom } from '../../src/engine/fit.js';
import { AUTO_CTX_MAX } from '../../src/engine/options.js';
import { planMemory } from '../../src/gguf/plan.js';

const GiB = 1024 ** 3;
const cpu = (free: number): DeviceInfo => ({ name: 'CPU', description: 'test', type: 'cpu', backend: 'CPU', freeBytes: free * GiB, totalBytes: 2 * free * GiB });
const gpu = (free: number): DeviceInfo => ({ name: 'CUDA0', description: 'test', type: 'gpu', backend: 'CUDA', freeBytes: free * GiB, totalBytes: free * GiB });
const hermes8b = { model: { shape: '8b' as const, quant: 'Q4_K_M' as const }, nCtxTrain: 131072, label: 'Hermes 3 8B Q4_K_M' };

describe('fitting to device memory', () => {
  it("offloads every layer with nGpuLayers 'auto' when the GPU holds them", async () => {
    const fit = await fitMemory({ ...hermes8b, nCtx: 8192, nGpuLayers: 'auto', devices: [cpu(32), gpu(24)] });
    expect(fit.nGpuLayers).toBe(33);
  });

  it('offloads as many layers as fit, the rest stays on the CPU', async () => {
    const fit = await fitMemory({ ...hermes8b, nCtx: 8192, nGpuLayers: 'auto', devices: [cpu(32), gpu(4)] });
    expect(fit.nGpuLayers).toBeGreaterThan(0);
    expect(fit.nGpuLayers).toBeLessThan(33);
    const share = fit.plan.devices.find((d) => d.device === 'GPU')!.totalBytes;
    expect(share).toBeLessThanOrEqual(4 * GiB - headroom(4 * GiB));
    const more = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: fit.nGpuLayers + 1 });
    expect(more.devices.find((d) => d.device === 'GPU')!.totalBytes).toBeGreaterThan(4 * GiB - headroom(4 * GiB));
  });

  it('counts repacked weights once on the CPU (their mapped pages are released), twice with mmap and mlock', async () => {
    const plan = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 4096 });
    expect(plan.repackBytes).toBeGreaterThan(GiB);
    // free memory (after 0.5 GiB of headroom) between the two needs
    const between = (plan.totalBytes - plan.repackBytes / 2) / GiB + 0.5;
    const devices = [{ ...cpu(between), totalBytes: between * GiB }];
    expect((await fitMemory({ ...hermes8b, nCtx: 4096, nGpuLayers: 0, devices })).nCtx).toBe(4096);
    const err = await fitMemory({ ...hermes8b, nCtx: 4096, nGpuLayers: 0, devices, keepsMappedCopies: true }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
  });

  it('keeps everything on the CPU without a GPU', async () => {
    const fit = await fitMemory({ ...hermes8b, nCtx: 4096, nGpuLayers: 'auto', devices: [cpu(32)] });
    expect(fit.nGpuLayers).toBe(0);
  });

  it('takes the longest context of a range that fits', async () => {
    const fit = await fitMemory({ ...hermes8b, nCtx: { max: 131072 }, nGpuLayers: 'max', devices: [cpu(32), gpu(12)] });
    expect(fit.nCtx).toBe(32768);
    const longer = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 65536, nGpuLayers: 33 });
    expect(longer.devices[1].totalBytes).toBeGreaterThan(12 * GiB - headroom(12 * GiB));
    // without max, a range reaches the training context
    expect((await fitMemory({ ...hermes8b, nCtx: {}, nGpuLayers: 'max', devices: [cpu(32), gpu(12)] })).nCtx).toBe(32768);
    expect((await fitMemory({ ...hermes8b, nCtx: {}, nGpuLayers: 0, devices: [cpu(64)] })).nCtx).toBe(131072);
  });

  it(`stops nCtx 'auto' at ${AUTO_CTX_MAX} tokens, and goes shorter only when that does not fit`, async () => {
    expect((await fitMemory({ ...hermes8b, nCtx: 'auto', nGpuLayers: 0, devices: [cpu(64)] })).nCtx).toBe(AUTO_CTX_MAX);
    // a 1 GiB CPU (0.5 GiB after headroom) holds the compute buffers and a few thousand tokens
    const nCtx = await fitContext({ ...hermes8b, nCtx: 'auto', nGpuLayers: 0, devices: [cpu(1)] });
    expect(nCtx).toBeLessThan(AUTO_CTX_MAX);
    expect(nCtx % 512).toBe(0);
    const contextBytes = (p: Awaited<ReturnType<typeof planMemory>>) => p.kvCacheBytes + p.computeBytes + p.outputBytes;
    expect(contextBytes(await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx }))).toBeLessThanOrEqual(0.5 * GiB);
    expect(contextBytes(await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: nCtx + 512 }))).toBeGreaterThan(0.5 * GiB);
    // a training context shorter than the cap is the limit
    expect((await fitMemory({ ...hermes8b, nCtxTrain: 2048, nCtx: 'auto', nGpuLayers: 0, devices: [cpu(64)] })).nCtx).toBe(2048);
  });

  it('refuses a range whose min does not fit, naming the longest that would', async () => {
    const err = await fitContext({ ...hermes8b, nCtx: { min: 65536 }, nGpuLayers: 0, devices: [cpu(4)] }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.message).toMatch(/^a 131072-token context for Hermes 3 8B Q4_K_M needs [\d.]+ GiB on the CPU .* It would fit with nCtx: 16384/);
  });

  it('tries the lengths of a range longest first, halving above 8192, then in steps of 512, ending at min', () => {
    expect(contextCandidates({ min: 512, max: 131072 }).slice(0, 6)).toEqual([131072, 65536, 32768, 16384, 8192, 7680]);
    expect(contextCandidates({ min: 512, max: 131072 }).at(-1)).toBe(512);
    expect(contextCandidates({ min: 3000, max: 10000 })).toEqual([10000, 8192, 7680, 7168, 6656, 6144, 5632, 5120, 4608, 4096, 3584, 3072, 3000]);
    expect(contextCandidates({ min: 4096, max: 4096 })).toEqual([4096]);
  });

  it('splits the layers between several GPUs by their free memory, as llama.cpp does', async () => {
    const gpu2 = (name: string, free: number): DeviceInfo => ({ ...gpu(free), name });
    // one 4 GiB GPU holds part of the model; two hold all of it
    const one = await fitMemory({ ...hermes8b, nCtx: 8192, nGpuLayers: 'auto', devices: [cpu(32), gpu2('CUDA0', 4)] });
    expect(one.nGpuLayers).toBeLessThan(33);
    const two = await fitMemory({ ...hermes8b, nCtx: 8192, nGpuLayers: 'auto', devices: [cpu(32), gpu2('CUDA0', 4), gpu2('CUDA1', 4)] });
    expect(two.nGpuLayers).toBe(33);
    expect(two.tensorSplit).toEqual([4 * GiB, 4 * GiB]);
    const [, g0, g1] = two.plan.devices;
    expect([g0.gpu, g1.gpu]).toEqual([0, 1]);
    for (const g of [g0, g1]) expect(g.totalBytes).toBeLessThanOrEqual(4 * GiB - headroom(4 * GiB));
    // a full GPU and an empty one: the error names each
    const err = await fitMemory({ ...hermes8b, nCtx: 131072, nGpuLayers: 'max', devices: [cpu(32), gpu2('CUDA0', 2), gpu2('CUDA1', 2)] }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.message).toMatch(/GiB on the CUDA0 \([\d.]+ (GiB|MiB) free after headroom\) and [\d.]+ GiB on the CUDA1/);
  });

  it('refuses what cannot fit, naming what would', async () => {
    const err = await fitMemory({ ...hermes8b, nCtx: 131072, nGpuLayers: 'max', devices: [cpu(32), gpu(8)] }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.code).toBe('ERR_INSUFFICIENT_MEMORY');
    expect(err.message).toMatch(/^Hermes 3 8B Q4_K_M with a 131072-token context needs \d+ MiB on the CPU .* and [\d.]+ GiB on the CUDA0 \([\d.]+ GiB free after headroom\)\. It would fit with nGpuLayers: \d+, or nCtx: 16384, or (an IQ4_XS|a Q3_K_M|a Q2_K) file/);
  });

  it('suggests a smaller quantization when the weights alone are too big', async () => {
    const err = await fitMemory({ model: { shape: '70b', quant: 'Q8_0' }, nCtxTrain: 131072, label: 'Hermes 3 70B Q8_0', nCtx: 4096, nGpuLayers: 0, devices: [cpu(48)] }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.message).toMatch(/It would fit with a (Q5_K_M|Q4_K_M) file/);
  });

  it('checks a new context against what is free', async () => {
    expect(await fitContext({ ...hermes8b, nCtx: {}, nGpuLayers: 0, devices: [cpu(4)] })).toBe(16384);
    expect(await fitContext({ ...hermes8b, nCtx: 'auto', nGpuLayers: 0, devices: [cpu(4)] })).toBe(AUTO_CTX_MAX);
    const err = await fitContext({ ...hermes8b, nCtx: 131072, nGpuLayers: 0, devices: [cpu(4)] }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.message).toMatch(/^a 131072-token context for Hermes 3 8B Q4_K_M needs [\d.]+ GiB on the CPU .* It would fit with nCtx: 16384/);
  });
});

describe('CPU variants', () => {
  it('names the ggml x64 variant a feature set makes up', async () => {
    const { cpuVariant } = await import('../../src/engine/backends.js');
    if (process.arch !== 'x64') return;
    expect(cpuVariant(['SSE3', 'SSSE3', 'AVX', 'AVX2', 'F16C', 'FMA', 'BMI2'])).toBe('haswell');
    expect(cpuVariant(['SSE3', 'SSSE3', 'AVX', 'AVX_VNNI', 'AVX2', 'F16C', 'FMA', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16'])).toBe('zen4');
    expect(cpuVariant(['AVX', 'AVX2', 'F16C', 'FMA', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16', 'AMX_INT8'])).toBe('sapphirerapids');
    expect(cpuVariant([])).toBe('x64');
  });
});
