import { describe, expect, it } from 'vitest';
import { getBackendInfo, InsufficientMemoryError, loadModel, OptionsError, setLogger } from '../../src/index.js';
import { AUTO_CTX_MAX } from '../../src/engine/options.js';
import { FIXTURES, hasGpu } from '../fixtures.js';

const withGpu = hasGpu();

describe('memory fitting on this machine', () => {
  it('lists backends and devices with their memory and the CPU features compiled in', () => {
    const info = getBackendInfo();
    const cpu = info.devices.find((d) => d.type === 'cpu');
    expect(cpu).toBeDefined();
    expect(cpu!.totalBytes).toBeGreaterThan(0);
    expect(cpu!.freeBytes).toBeGreaterThan(0);
    expect(cpu!.freeBytes).toBeLessThanOrEqual(cpu!.totalBytes);
    expect(info.backends.map((b) => b.name)).toContain('CPU');
    expect(info.cpu.features.length).toBeGreaterThan(0);
    if (process.arch === 'x64') expect(info.cpu.variant).toMatch(/^[a-z0-9]+$/);
  });

  it(`fits nCtx 'auto' up to ${AUTO_CTX_MAX} tokens, and a range up to the training context when memory allows`, async () => {
    const model = await loadModel({ modelPath: FIXTURES.q4km, nCtx: 'auto', nGpuLayers: 'auto' });
    expect(model.nGpuLayers).toBe(withGpu ? model.info.nLayer + 1 : 0);
    expect((await model.createContext()).nCtx).toBe(AUTO_CTX_MAX);
    expect((await model.createContext({ nCtx: { max: 16384 } })).nCtx).toBe(16384);
    expect((await model.createContext({ nCtx: {} })).nCtx).toBe(model.info.nCtxTrain);
    await model.dispose();
    const ranged = await loadModel({ modelPath: FIXTURES.q4km, nCtx: { min: 1024, max: 2048 } });
    expect((await ranged.createContext()).nCtx).toBe(2048);
    await ranged.dispose();
  });

  it('names a range that is not one', async () => {
    const model = await loadModel({ modelPath: FIXTURES.q4km });
    const err = await model.createContext({ nCtx: { min: 4096, max: 1024 } }).catch((e) => e);
    expect(err).toBeInstanceOf(OptionsError);
    expect(err.message).toBe(
      "Invalid option nCtx for createContext: expected a range { min, max } with min <= max, received an object",
    );
    await model.dispose();
  });

  it('refuses a context that cannot fit before allocating it, naming one that would', async () => {
    const model = await loadModel({ modelPath: FIXTURES.q4km });
    const err = await model.createContext({ nCtx: 1 << 24, kvCacheType: 'f32' }).catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err.message).toMatch(/^a 16777216-token context for tiny-q4_k_m\.gguf needs [\d.]+ (GiB|MiB) on the CPU .* It would fit with nCtx: \d+/);
    // the model is unharmed
    const ctx = await model.createContext({ nCtx: 512 });
    expect(ctx.nCtx).toBe(512);
    await model.dispose();
  });

  it.runIf(!withGpu)("runs nGpuLayers 'max' on the CPU when there is no GPU, and says so", async () => {
    const warnings: string[] = [];
    const model = await loadModel({ modelPath: FIXTURES.q4km, nGpuLayers: 'max', logLevel: 'warn', logger: (level, line) => level === 'warn' && warnings.push(line) });
    setLogger(null);
    expect(model.nGpuLayers).toBe(0);
    expect(warnings.join('\n')).toMatch(/nGpuLayers max was asked for, but no GPU device is available \(devices: CPU\): every layer runs on the CPU\. .*HERMES3_CUDA=1/);
    await model.dispose();
  });

  it.runIf(withGpu)("offloads every layer with nGpuLayers 'max', and a count past the layers is the same", async () => {
    for (const nGpuLayers of ['max', 1000] as const) {
      const model = await loadModel({ modelPath: FIXTURES.q4km, nGpuLayers });
      expect(model.nGpuLayers).toBe(model.info.nLayer + 1);
      await model.dispose();
    }
  });
});
