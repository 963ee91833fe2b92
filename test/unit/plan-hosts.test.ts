// `hermes3 plan --hosts`: the table and the JSON of planCluster, printed.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { planCommand } from '../../src/cli/plan.js';

async function plan(values: Record<string, string | boolean>): Promise<string> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => (text += c));
  await planCommand({ kv: 'f16', gpuLayers: 'max', ...values }, out);
  return text;
}

describe('hermes3 plan --hosts', () => {
  it('prints each device with its layers, memory and verdict', async () => {
    const text = await plan({ shape: '405b', hosts: '4x80GiB,2x24GiB,cpu:64GiB' });
    const lines = text.split('\n');
    expect(lines[0]).toBe('405B Q4_K_M at 8192 tokens (f16 KV cache): 127 of 127 layers on 6 GPUs (368.0 GiB); memory in GiB');
    expect(lines[2]).toMatch(/^device +memory +layers +weights +KV cache +compute +total +usable$/);
    expect(lines[3]).toMatch(/^CPU +64\.0 +token embeddings +1\.1 +0\.0 +0\.1 +1\.2 +60\.8 +fits$/);
    expect(lines[4]).toMatch(/^GPU0 +80\.0 +blocks 0-27 +51\.0 +0\.9 +0\.1 +52\.0 +76\.0 +fits$/);
    expect(lines[9]).toMatch(/^GPU5 +24\.0 +blocks 119-125, output +14\.8 +0\.2 +0\.3 +15\.3 +22\.8 +fits$/);
    expect(lines[10]).toMatch(/^all +432\.0 +226\.6 +3\.9 +0\.7 +231\.2$/);
    expect(text).toContain('fits: the fullest device, GPU0, uses 68% of its usable memory');
  });

  it('plans each quantization and context asked, and says what would fit', async () => {
    const text = await plan({ shape: '70b', quant: 'Q4_K_M,Q8_0', ctx: '8k,64k', hosts: '2x24GiB' });
    expect(text.match(/^70B (Q4_K_M|Q8_0) at (8192|65536) tokens/gm)).toHaveLength(4);
    expect(text).toContain("the main host's RAM was not given (cpu:SIZE in --hosts): the CPU's part is not checked");
    expect(text).toMatch(/^does not fit: .*; it would fit with a 20480-token context, or a Q2_K file \([\d.]+ GiB of weights\), or 1 more 24 GiB device$/m);
  });

  it('marks a GPU that shares the host RAM and checks the pool', async () => {
    const text = await plan({ shape: '70b', hosts: 'igpu:36GiB', gpuLayers: '41' });
    expect(text).toMatch(/^iGPU\* +36\.0 +blocks 40-79, output /m);
    expect(text).toContain("* shares the main host's RAM: CPU and iGPU together 42.4 of 34.2 usable (DOES NOT FIT)");
  });

  it('prints JSON', async () => {
    const json = JSON.parse(await plan({ shape: '70b', quant: 'Q8_0', hosts: '2x80GiB', json: true }));
    expect(json).toHaveLength(1);
    expect(json[0]).toMatchObject({ model: '70b', quant: 'Q8_0', nCtx: 8192, fits: true, suggestions: [] });
    expect(json[0].devices.map((d: { name: string; blocks?: { count: number } }) => [d.name, d.blocks?.count])).toEqual([['CPU', undefined], ['GPU0', 41], ['GPU1', 39]]);
  });

  it('refuses a list it cannot read', async () => {
    await expect(plan({ hosts: '4x80' })).rejects.toThrow("Invalid --hosts: expected [NAME:][Nx]SIZE with SIZE in GiB, GB, MiB, MB, TiB or TB (e.g. 4x80GiB, cpu:64GiB, igpu:128GiB), received '4x80'");
  });
});
