import { describe, expect, it } from 'vitest';
import type { DeviceInfo } from '../../src/engine/backends.js';
import { recommendQuant } from '../../src/models/recommend.js';

const GiB = 2 ** 30;
const cpu = (free: number): DeviceInfo => ({ name: 'CPU', description: 'test CPU', type: 'cpu', backend: 'CPU', freeBytes: free * GiB, totalBytes: 64 * GiB });
const gpu = (free: number, name = 'CUDA0'): DeviceInfo => ({ name, description: 'test GPU', type: 'gpu', backend: 'CUDA', freeBytes: free * GiB, totalBytes: free * GiB });

describe('recommendQuant', () => {
  it('takes the largest quantization that fits in RAM without a GPU, and says why', async () => {
    const r = await recommendQuant({ shape: '8b', nCtx: 8192, devices: [cpu(12)] });
    expect(r.quant).toBe('Q6_K');
    expect(r.ref).toBe('hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q6_K');
    expect(r.device).toBe('cpu');
    expect(r.reason).toMatch(/^no GPU: Q6_K is the largest quantization that fits in RAM at 8192 tokens \(\d+\.\d+ GB of \d+\.\d+ GB\)$/);
    expect(r.candidates.map((c) => [c.quant, c.fits])).toEqual([
      ['Q8_0', false],
      ['Q6_K', true],
      ['Q5_K_M', true],
      ['Q4_K_M', true],
      ['Q3_K_M', true],
      ['Q2_K', true],
    ]);
    expect(r.candidates[0].reason).toMatch(/^Q8_0 needs \d+\.\d+ GB of RAM on the CPU \(\d+\.\d+ GB weights, 1\.07 GB KV cache at 8192 tokens\) and \d+\.\d+ GB are available after headroom: does not fit$/);
  });

  it('fits on the GPUs when there are any, and falls back to RAM when nothing fits there', async () => {
    const big = await recommendQuant({ shape: '70b', nCtx: 8192, devices: [cpu(32), gpu(80, 'CUDA0'), gpu(80, 'CUDA1')] });
    expect(big).toMatchObject({ quant: 'Q8_0', device: 'gpu' });
    expect(big.reason).toMatch(/^Q8_0 is the largest quantization that fits on CUDA0 \+ CUDA1 at 8192 tokens/);
    const small = await recommendQuant({ shape: '70b', nCtx: 8192, devices: [cpu(60), gpu(8)] });
    expect(small).toMatchObject({ quant: 'Q6_K', device: 'cpu' });
    expect(small.reason).toMatch(/^none fits on CUDA0; Q6_K is the largest quantization that fits in RAM/);
  });

  it('considers what the repository lists, and says when nothing fits', async () => {
    const r = await recommendQuant({ shape: '405b', nCtx: 131072, devices: [cpu(16)], files: [{ path: 'Q4_K_M/x-Q4_K_M-00001-of-00002.gguf' }, { path: 'Q4_K_M/x-Q4_K_M-00002-of-00002.gguf' }, { path: 'x-Q2_K.gguf' }] });
    expect(r.quant).toBeUndefined();
    expect(r.candidates.map((c) => c.quant)).toEqual(['Q4_K_M', 'Q2_K']);
    expect(r.reason).toMatch(/^no quantization of Hermes 3 405B fits at 131072 tokens: the smallest, Q2_K, needs \d+ GB and [\d.]+ GB are free; try a shorter context \(--ctx\) or a smaller model \(--shape 8b\)$/);
  });

  it('validates its options', async () => {
    await expect(recommendQuant({ shape: '7b' as never })).rejects.toThrow("Invalid option shape for recommendQuant: expected one of 8b, 70b, 405b, received '7b' (string)");
  });
});
