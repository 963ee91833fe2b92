// planCluster on a GGUF file: its real tensor table, the quantization it names, and the smaller
// quantizations of its shape when it does not fit.
import { describe, expect, it } from 'vitest';
import { planCluster } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';

const MiB = 2 ** 20;

describe('planCluster on a file', () => {
  it('plans the file as llama.cpp would load it: the same figures as its shape and file type', async () => {
    const devices = [{ name: 'A', totalBytes: 1024 * MiB }, { name: 'B', totalBytes: 1024 * MiB }];
    const fromFile = await planCluster({ modelPath: FIXTURES.q4km, nCtx: 4096, devices });
    const fromShape = await planCluster({ shape: 'tiny', quant: 'Q4_K_M', nCtx: 4096, devices });
    expect(fromFile.model).toBe(FIXTURES.q4km);
    expect(fromFile.quant).toBe('Q4_K_M');
    expect(fromFile.devices).toEqual(fromShape.devices);
    expect(fromFile.fits).toBe(true);
  });

  it('names a smaller quantization of a file that does not fit', async () => {
    // tiny: tied embeddings (128256 x 256): the CPU keeps the input embedding, about 64 MiB at
    // F16 and 34 MiB at Q8_0 with a 256-token context (the output layer's copy and the logits go
    // to the GPU); 50 MiB usable after 512 MiB of headroom
    const devices = [{ name: 'CPU', totalBytes: (512 + 50) * MiB, type: 'cpu' as const }, { name: 'A', totalBytes: 1024 * MiB }];
    const plan = await planCluster({ modelPath: FIXTURES.f16, nCtx: 256, devices });
    expect(plan.quant).toBe('F16');
    expect(plan.fits).toBe(false);
    // no shorter context, and more GPUs do not take the CPU's part
    expect(plan.suggestions).toEqual([{ kind: 'quant', quant: 'Q8_0', weightsBytes: expect.any(Number) }]);
    expect(plan.verdict).toMatch(/^does not fit: CPU needs 64 MiB of 50 MiB usable; it would fit with a Q8_0 file/);
    expect((await planCluster({ modelPath: FIXTURES.q8, nCtx: 256, devices })).fits).toBe(true);
  });
});
