// Unified memory (Apple Silicon, integrated GPUs): the GPU's memory is the host's RAM, so the
// CPU's part of a plan and the GPU's are checked together against one pool, not two.
import { describe, expect, it } from 'vitest';
import { InsufficientMemoryError } from '../../src/errors.js';
import { sharesHostMemory, type DeviceInfo } from '../../src/engine/backends.js';
import { fitContext, fitMemory, headroom } from '../../src/engine/fit.js';
import { planMemory } from '../../src/gguf/plan.js';

const GiB = 1024 ** 3;
const cpu = (total: number, free = total): DeviceInfo => ({ name: 'CPU', description: 'test', type: 'cpu', backend: 'CPU', freeBytes: free * GiB, totalBytes: total * GiB });
/** an integrated GPU: ggml reports the host's memory for it */
const igpu = (total: number, free = total): DeviceInfo => ({ name: 'Vulkan0', description: 'test iGPU', type: 'igpu', backend: 'Vulkan', freeBytes: free * GiB, totalBytes: total * GiB });
/** Apple Silicon: Metal reports a GPU (not an iGPU) */
const metal = (total: number, free = total): DeviceInfo => ({ name: 'MTL0', description: 'Apple M2 Max', type: 'gpu', backend: 'MTL', freeBytes: free * GiB, totalBytes: total * GiB });
const discrete = (total: number): DeviceInfo => ({ name: 'CUDA0', description: 'test', type: 'gpu', backend: 'CUDA', freeBytes: total * GiB, totalBytes: total * GiB });
const hermes70b = { model: { shape: '70b' as const, quant: 'Q4_K_M' as const }, nCtxTrain: 131072, label: 'Hermes 3 70B Q4_K_M' };
const hermes8b = { model: { shape: '8b' as const, quant: 'Q4_K_M' as const }, nCtxTrain: 131072, label: 'Hermes 3 8B Q4_K_M' };

describe('unified memory', () => {
  it('knows which GPUs share the host memory', () => {
    const host = cpu(36);
    expect(sharesHostMemory(igpu(8), host)).toBe(true);
    expect(sharesHostMemory(metal(27), host)).toBe(true);
    // a GPU reporting the host's RAM as its total memory
    expect(sharesHostMemory({ ...discrete(36), backend: 'Vulkan' }, host)).toBe(true);
    expect(sharesHostMemory(discrete(24), host)).toBe(false);
    expect(sharesHostMemory(host, host)).toBe(false);
  });

  it('counts one pool for the CPU and an integrated GPU: offloaded weights are not also free RAM', async () => {
    // 70B Q4_K_M at 4k is about 40 GiB; 36 GiB of RAM is 34.2 GiB after headroom. Counted as two
    // pools, the GPU took 30 GiB of layers and the CPU the rest, and it "fit".
    const devices = [cpu(36), igpu(36)];
    const err = await fitMemory({ ...hermes70b, nCtx: 4096, nGpuLayers: 'auto', devices }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.message).toMatch(
      /^Hermes 3 70B Q4_K_M with a 4096-token context needs [\d.]+ GiB on the CPU \(34\.2 GiB free after headroom\) and [\d.]+ GiB on the Vulkan0 \(34\.2 GiB free after headroom\), together 4\d\.\d GiB of the RAM the CPU and the Vulkan0 share \(34\.2 GiB free after headroom\)\. It would fit with a (Q3_K_M|Q2_K) file/,
    );
    // a discrete GPU of the same size is a second pool: the same model fits
    const fit = await fitMemory({ ...hermes70b, nCtx: 4096, nGpuLayers: 'auto', devices: [cpu(36), discrete(35)] });
    expect(fit.nGpuLayers).toBeGreaterThan(40);
    expect(fit.nGpuLayers).toBeLessThan(81);
  });

  it('fits a model whose CPU and GPU parts together fit the pool, and the plan says the GPU shares it', async () => {
    const fit = await fitMemory({ ...hermes70b, nCtx: 4096, nGpuLayers: 'auto', devices: [cpu(64, 60), metal(64, 60)] });
    expect(fit.nGpuLayers).toBe(81);
    const [c, g] = fit.plan.devices;
    expect(g.sharesHostMemory).toBe(true);
    expect(c.sharesHostMemory).toBeUndefined();
    expect(fit.plan.hostBytes).toBe(c.totalBytes + g.totalBytes);
    expect(fit.plan.hostBytes).toBeLessThanOrEqual(60 * GiB - headroom(64 * GiB));
  });

  it('checks a new context against the pool that the loaded weights left', async () => {
    // 8B with 17 of 33 layers on the iGPU: its KV cache split in half between CPU and GPU. At
    // 65536 tokens each half (4 GiB and buffers) fits 6.4 GiB, both together do not.
    const devices = [cpu(32, 8), igpu(32, 8)];
    const err = await fitContext({ ...hermes8b, nCtx: 65536, nGpuLayers: 17, devices }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.message).toMatch(/^a 65536-token context for Hermes 3 8B Q4_K_M needs 4\.\d GiB on the CPU .* and 4\.\d GiB on the Vulkan0 .*, together 8\.\d GiB of the RAM the CPU and the Vulkan0 share \(6\.4 GiB free after headroom\) for its KV cache and buffers\. It would fit with nCtx: 32768/);
    expect(await fitContext({ ...hermes8b, nCtx: { max: 65536 }, nGpuLayers: 17, devices })).toBe(32768);
  });

  it('planMemory marks the GPUs that share the host memory, and adds what they hold there', async () => {
    const plain = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 33, tensorSplit: [1, 1] });
    expect('hostBytes' in plain).toBe(false);
    expect(plain.devices.some((d) => 'sharesHostMemory' in d)).toBe(false);
    const shared = await planMemory({ shape: '8b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 33, tensorSplit: [1, 1], sharesHostMemory: [false, true] });
    const [c, g0, g1] = shared.devices;
    expect([g0.sharesHostMemory, g1.sharesHostMemory]).toEqual([undefined, true]);
    expect(shared.hostBytes).toBe(c.totalBytes + g1.totalBytes);
    // the figures themselves do not change
    expect(shared.devices.map((d) => d.totalBytes)).toEqual(plain.devices.map((d) => d.totalBytes));
  });
});
