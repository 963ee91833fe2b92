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
    // tiny: tied embeddings (128256 x 256), so nearly all of it stays with the CPU: about 189 MiB
    // at F16, 160 MiB at Q8_0 with a 256-token context; 170 MiB usable after 512 MiB of headroom
    const devices = [{ name: 'CPU', totalBytes: (512 + 170) * MiB, type: 'cpu' as const }, { name: 'A', totalBytes: 600 * MiB }];
    const plan = await planCluster({ modelPath: FIXTURES.f16, nCtx: 256, devices });
    expect(plan.quant).toBe('F16');
    expect(plan.fits).toBe(false);
    // no shorter context, and more GPUs do not take the CPU's part
    expect(plan.suggestions).toEqual([{ kind: 'quant', quant: 'Q8_0', weightsBytes: expect.any(Number) }]);
    expect(plan.verdict).toMatch(/^does not fit: CPU needs 189 MiB of 170 MiB usable; it would fit with a Q8_0 file/);
    expect((await planCluster({ modelPath: FIXTURES.q8, nCtx: 256, devices })).fits).toBe(true);
  });
});
