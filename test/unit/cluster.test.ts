// planCluster against figures computed by hand from the shapes, the quantizations' block sizes
// and llama.cpp's layer split.
import { describe, expect, it } from 'vitest';
import { parseDeviceList, planCluster, type ClusterDevice } from '../../src/gguf/cluster.js';

const GiB = 2 ** 30;
// bytes per weight: Q4_K 144 bytes per 256 weights, Q6_K 210 per 256, Q8_0 34 per 32; norms F32
const Q4_K = 144 / 256;
const Q6_K = 210 / 256;
const Q8_0 = 34 / 32;
const NVOCAB = 128256;
const UBATCH = 512;
/** 512 MiB or 5% of the device kept free */
const usable = (size: number) => Math.floor(size - Math.max(512 * 2 ** 20, 0.05 * size));
/** f16 KV cache: K and V, 8 KV heads of 128 dims, 2 bytes each, per layer and token */
const KV_PER_LAYER_TOKEN = 2 * 8 * 128 * 2;

describe('planCluster: Hermes 3 405B Q4_K_M on 4 x 80 GiB and 2 x 24 GiB', () => {
  // 405B: 126 blocks, width 16384, FFN 53248, 128 query heads and 8 KV heads of 128 dims
  const nEmbd = 16384, nFf = 53248, q = 128 * 128, kv = 8 * 128;
  // a block: attn_q and attn_output (nEmbd x q), attn_k and attn_v (nEmbd x kv), ffn_gate,
  // ffn_up and ffn_down (nEmbd x nFf), 2 F32 norms; Q4_K_M makes attn_v and ffn_down Q6_K in
  // the first eighth of the blocks (0-15), the last (111-125) and every third between (17, 20, .. 110)
  const plain = 2 * nEmbd * q * Q4_K + 2 * nEmbd * kv * Q4_K + 3 * nEmbd * nFf * Q4_K + 2 * nEmbd * 4;
  const moreBits = plain + nEmbd * kv * (Q6_K - Q4_K) + nEmbd * nFf * (Q6_K - Q4_K);
  const output = nEmbd * NVOCAB * Q6_K + nEmbd * 4;
  const tokenEmbd = nEmbd * NVOCAB * Q4_K + (128 / 2) * 4; // and the rope factors
  const activations = 8 * nEmbd * UBATCH;
  const logits = NVOCAB * UBATCH * 4;
  const devices = parseDeviceList('4x80GiB,2x24GiB,cpu:64GiB');

  it('splits the 127 layers in proportion to memory, each device with its weights, KV cache and buffers', async () => {
    const plan = await planCluster({ shape: '405b', quant: 'Q4_K_M', nCtx: 8192, devices });
    // layer l of 127 goes to the first device whose cumulative share (80, 160, 240, 320, 344,
    // 368 of 368) exceeds l / 127: 27/127 = 0.2126 < 0.2174 <= 28/127, and so on
    const expected = [
      // name, blocks, of them Q6_K-heavy, output layer
      ['GPU0', 0, 27, 16 + 4, false], // 0-15, and 17, 20, 23, 26
      ['GPU1', 28, 55, 9, false], // 29, 32, .. 53
      ['GPU2', 56, 82, 9, false], // 56, 59, .. 80
      ['GPU3', 83, 110, 10, false], // 83, 86, .. 110
      ['GPU4', 111, 118, 8, false],
      ['GPU5', 119, 125, 7, true], // and layer 126, the output layer
    ] as const;
    expect(plan.nLayer).toBe(126);
    expect(plan.nGpuLayers).toBe(127);
    expect(plan.nCtx).toBe(8192);
    const [cpu, ...gpus] = plan.devices;
    expect(cpu).toMatchObject({ name: 'CPU', tokenEmbeddings: true, outputLayer: false, weightsBytes: tokenEmbd, kvCacheBytes: 0, computeBytes: activations, outputBytes: NVOCAB * 4 });
    expect(cpu.blocks).toBeUndefined();
    expect(cpu).toMatchObject({ memoryBytes: 64 * GiB, usableBytes: usable(64 * GiB), fits: true });
    expected.forEach(([name, first, last, heavy, out], i) => {
      const count = last - first + 1;
      const g = gpus[i];
      const weights = (count - heavy) * plain + heavy * moreBits + (out ? output : 0);
      const kvBytes = count * 8192 * KV_PER_LAYER_TOKEN;
      const compute = (out ? logits : 0) + activations;
      const size = i < 4 ? 80 * GiB : 24 * GiB;
      expect(g, name).toMatchObject({ name, blocks: { first, last, count }, outputLayer: out, tokenEmbeddings: false });
      expect(g, name).toMatchObject({ weightsBytes: weights, kvCacheBytes: kvBytes, computeBytes: compute, totalBytes: weights + kvBytes + compute });
      expect(g, name).toMatchObject({ memoryBytes: size, usableBytes: usable(size), fits: true });
    });
    // GPU0: 8 x 1.67 GiB + 20 x 1.88 GiB of weights, 28 layers x 8192 tokens x 4 KiB of KV cache
    expect(gpus[0].totalBytes / GiB).toBeCloseTo(51.97, 2);
    expect(plan.weightsBytes).toBe(tokenEmbd + 63 * plain + 63 * moreBits + output);
    expect(plan.kvCacheBytes).toBe(126 * 8192 * KV_PER_LAYER_TOKEN);
    expect(plan.memoryBytes).toBe(432 * GiB);
    expect(plan.fits).toBe(true);
    expect(plan.suggestions).toEqual([]);
    expect(plan.verdict).toBe('fits: the fullest device, GPU0, uses 68% of its usable memory');
    expect(plan.hostPool).toBeUndefined();
  });

  it('does not fit a Q6_K file at 131072 tokens, and names the longest context, the KV cache, the quantization and the devices that would', async () => {
    const plan = await planCluster({ shape: '405b', quant: 'Q6_K', nCtx: 131072, devices });
    expect(plan.fits).toBe(false);
    // Q6_K: every matrix 210 bytes per 256 weights. GPU0 holds 28 blocks: what its usable memory
    // keeps for the KV cache after their weights and its activations, at 28 x 4 KiB per token
    const block = (2 * nEmbd * q + 2 * nEmbd * kv + 3 * nEmbd * nFf) * Q6_K + 2 * nEmbd * 4;
    const room = usable(80 * GiB) - 28 * block - activations;
    const longest = Math.floor(room / (28 * KV_PER_LAYER_TOKEN) / 256) * 256;
    expect(longest).toBe(72448);
    // q8_0 KV: 34 bytes per 32 values instead of 2 bytes each; 28 layers at 131072 tokens fit the room
    expect(28 * 131072 * 2 * kv * Q8_0).toBeLessThan(room);
    expect(plan.suggestions).toEqual([
      { kind: 'nCtx', nCtx: longest },
      { kind: 'kvCacheType', kvCacheType: 'q8_0' },
      { kind: 'quant', quant: 'Q5_K_M', weightsBytes: expect.any(Number) },
      { kind: 'devices', count: 1, memoryBytes: 80 * GiB },
    ]);
    // GPU0 at 131072 tokens: 28 blocks, 28 x 131072 x 4 KiB of KV cache, activations; GPU5 alone fits
    const gpu0 = 28 * block + 28 * 131072 * KV_PER_LAYER_TOKEN + activations;
    expect((gpu0 / GiB).toFixed(1)).toBe('82.3');
    expect(plan.devices.map((d) => d.fits)).toEqual([true, false, false, false, false, false, true]);
    expect(plan.verdict).toMatch(
      /^does not fit: 5 of 7 devices are over their memory \(the worst: GPU0 needs 82\.3 GiB of 76\.0 GiB usable\); it would fit with a 72448-token context, or a q8_0 KV cache, or a Q5_K_M file \(\d+\.\d GiB of weights\), or 1 more 80 GiB device$/,
    );
    // each suggestion, tried, fits
    expect((await planCluster({ shape: '405b', quant: 'Q6_K', nCtx: longest, devices })).fits).toBe(true);
    expect((await planCluster({ shape: '405b', quant: 'Q6_K', nCtx: longest + 256, devices })).fits).toBe(false);
    expect((await planCluster({ shape: '405b', quant: 'Q6_K', nCtx: 131072, kvCacheType: 'q8_0', devices })).fits).toBe(true);
    expect((await planCluster({ shape: '405b', quant: 'Q5_K_M', nCtx: 131072, devices })).fits).toBe(true);
    expect((await planCluster({ shape: '405b', quant: 'Q6_K', nCtx: 131072, devices: [{ name: 'new', totalBytes: 80 * GiB }, ...devices] })).fits).toBe(true);
  });
});

describe('planCluster: Hermes 3 70B Q8_0', () => {
  // 70B: 80 blocks, width 8192, FFN 28672, 64 query heads and 8 KV heads of 128 dims; Q8_0
  // quantizes every matrix, the token embedding and the output matrix alike
  const nEmbd = 8192, nFf = 28672, q = 64 * 128, kv = 8 * 128;
  const block = (2 * nEmbd * q + 2 * nEmbd * kv + 3 * nEmbd * nFf) * Q8_0 + 2 * nEmbd * 4;
  const output = nEmbd * NVOCAB * Q8_0 + nEmbd * 4;
  const activations = 8 * nEmbd * UBATCH;

  it('fits two 80 GiB GPUs: blocks 0-40 on the first, 41-79 and the output layer on the second', async () => {
    const plan = await planCluster({ shape: '70b', quant: 'Q8_0', nCtx: 32768, devices: parseDeviceList('2x80GiB') });
    // 81 layers, split points 0.5 and 1: layer l on GPU0 while l / 81 < 0.5, l <= 40
    const [cpu, g0, g1] = plan.devices;
    expect(cpu).toMatchObject({ weightsBytes: nEmbd * NVOCAB * Q8_0 + 64 * 4, tokenEmbeddings: true });
    expect('fits' in cpu).toBe(false); // the main host's RAM was not given
    expect(g0).toMatchObject({ blocks: { first: 0, last: 40, count: 41 }, weightsBytes: 41 * block, kvCacheBytes: 41 * 32768 * KV_PER_LAYER_TOKEN, computeBytes: activations });
    expect(g1).toMatchObject({ blocks: { first: 41, last: 79, count: 39 }, outputLayer: true, weightsBytes: 39 * block + output, kvCacheBytes: 39 * 32768 * KV_PER_LAYER_TOKEN });
    expect(g1.computeBytes).toBe(NVOCAB * UBATCH * 4 + activations);
    // 41 x 0.85 GiB + 5.1 GiB of KV cache: 39.9 GiB of 76
    expect(g0.totalBytes / GiB).toBeCloseTo(39.87, 2);
    expect(plan.fits).toBe(true);
  });

  it('does not fit two 24 GiB GPUs: a smaller quantization or two more such GPUs would, no context would', async () => {
    const devices = parseDeviceList('2x24GiB,cpu:64GiB');
    const plan = await planCluster({ shape: '70b', quant: 'Q8_0', nCtx: 8192, devices });
    // 41 blocks of 0.85 GiB are 34.7 GiB, over the 22.8 GiB a 24 GiB GPU has after headroom
    expect(41 * block).toBeGreaterThan(usable(24 * GiB));
    expect(plan.fits).toBe(false);
    expect(plan.devices.map((d) => d.fits)).toEqual([true, false, false]);
    const kinds = plan.suggestions.map((s) => s.kind);
    expect(kinds).toEqual(['quant', 'devices']);
    const quant = plan.suggestions[0] as { quant: string };
    expect(quant.quant).toBe('Q4_K_M');
    expect(plan.suggestions[1]).toEqual({ kind: 'devices', count: 2, memoryBytes: 24 * GiB });
    // 3 x 22.8 GiB is less than the 69.8 GiB of weights
    expect(3 * usable(24 * GiB)).toBeLessThan(80 * block + output);
    expect((await planCluster({ shape: '70b', quant: 'Q8_0', nCtx: 8192, devices: parseDeviceList('4x24GiB,cpu:64GiB') })).fits).toBe(true);
    expect((await planCluster({ shape: '70b', quant: 'Q5_K_M', nCtx: 8192, devices })).fits).toBe(false);
    // GPU0: 41 blocks and their KV cache at 8192 tokens; GPU1: 39 blocks, the output layer and the logits
    const gpu0 = 41 * block + 41 * 8192 * KV_PER_LAYER_TOKEN + activations;
    const gpu1 = 39 * block + output + 39 * 8192 * KV_PER_LAYER_TOKEN + NVOCAB * UBATCH * 4 + activations;
    expect([(gpu0 / GiB).toFixed(1), (gpu1 / GiB).toFixed(1)]).toEqual(['36.0', '35.6']);
    expect(plan.verdict).toBe(
      'does not fit: GPU0 needs 36.0 GiB of 22.8 GiB usable, GPU1 needs 35.6 GiB of 22.8 GiB usable; it would fit with a Q4_K_M file (39.6 GiB of weights), or 2 more 24 GiB devices',
    );
  });
});

describe('planCluster: unified memory', () => {
  it('counts the CPU and a GPU that shares the host RAM against one pool', async () => {
    // 70B Q4_K_M with 41 layers on a 36 GiB Apple Silicon GPU, the rest on its CPU: each part
    // fits 34.2 GiB, both together (42.4 GiB) do not
    const plan = await planCluster({ shape: '70b', quant: 'Q4_K_M', nCtx: 8192, nGpuLayers: 41, devices: parseDeviceList('igpu:36GiB') });
    const [cpu, gpu] = plan.devices;
    expect(gpu.sharesHostMemory).toBe(true);
    expect(cpu.blocks).toEqual({ first: 0, last: 39, count: 40 });
    expect(gpu.blocks).toEqual({ first: 40, last: 79, count: 40 });
    expect([cpu.fits, gpu.fits]).toEqual([true, true]);
    expect(plan.hostPool).toEqual({ devices: ['CPU', 'iGPU'], needBytes: cpu.totalBytes + gpu.totalBytes, memoryBytes: 36 * GiB, usableBytes: usable(36 * GiB), fits: false });
    expect(plan.memoryBytes).toBe(36 * GiB);
    expect(plan.fits).toBe(false);
    expect(plan.verdict).toMatch(/^does not fit: CPU and iGPU together need 42\.4 GiB of the host's 34\.2 GiB usable; it would fit with a Q3_K_M file/);
  });

  it('puts rpc-server GPUs first and the main host last, its RAM shared with its GPU', async () => {
    const plan = await planCluster({ shape: '70b', quant: 'Q8_0', nCtx: 8192, devices: parseDeviceList('rpc1:2x24GiB,cpu:64GiB,igpu:48GiB') });
    expect(plan.devices.map((d) => d.name)).toEqual(['CPU', 'rpc1/GPU0', 'rpc1/GPU1', 'iGPU']);
    // shares 24, 24, 48 of 96: layers 0-20, 21-40, 41-80 (the output layer)
    expect(plan.devices.slice(1).map((d) => [d.blocks?.first, d.blocks?.last, d.outputLayer])).toEqual([[0, 20, false], [21, 40, false], [41, 79, true]]);
    expect(plan.hostPool).toMatchObject({ devices: ['CPU', 'iGPU'], memoryBytes: 64 * GiB, fits: true });
    expect(plan.memoryBytes).toBe(112 * GiB);
    expect(plan.fits).toBe(true);
  });
});

describe('device lists', () => {
  it('reads NxSIZE, the main host RAM, a shared GPU and named hosts', () => {
    expect(parseDeviceList('4x80GiB, 2x24GiB,cpu:64GiB')).toEqual<ClusterDevice[]>([
      ...[0, 1, 2, 3].map((i) => ({ name: `GPU${i}`, totalBytes: 80 * GiB, type: 'gpu' as const })),
      { name: 'GPU4', totalBytes: 24 * GiB, type: 'gpu' },
      { name: 'GPU5', totalBytes: 24 * GiB, type: 'gpu' },
      { name: 'CPU', totalBytes: 64 * GiB, type: 'cpu' },
    ]);
    expect(parseDeviceList('a:2x80GB,b:1.5TiB,512MiB,igpu:192GiB').map((d) => [d.name, d.totalBytes, d.type])).toEqual([
      ['a/GPU0', 80e9, 'gpu'],
      ['a/GPU1', 80e9, 'gpu'],
      ['b/GPU0', 1.5 * 2 ** 40, 'gpu'],
      ['GPU0', 512 * 2 ** 20, 'gpu'],
      ['iGPU', 192 * GiB, 'igpu'],
    ]);
  });

  it('says what it expected', async () => {
    expect(() => parseDeviceList('4x80', '--hosts')).toThrow(
      "Invalid --hosts: expected [NAME:][Nx]SIZE with SIZE in GiB, GB, MiB, MB, TiB or TB (e.g. 4x80GiB, cpu:64GiB, igpu:128GiB), received '4x80'",
    );
    expect(() => parseDeviceList('cpu:2x64GiB')).toThrow("Invalid device list: expected one cpu device, received 'cpu:2x64GiB'");
    expect(() => parseDeviceList('0x80GiB')).toThrow("Invalid device list: expected at least one device of more than 0 bytes, received '0x80GiB'");
    await expect(planCluster({ shape: '70b', nCtx: 8192, devices: parseDeviceList('cpu:64GiB') })).rejects.toThrow('Invalid option devices for planCluster: expected at least one GPU');
    await expect(planCluster({ shape: '70b', nCtx: 8192, devices: [{ name: 'x', totalBytes: -1 }] })).rejects.toThrow('Invalid option devices.0.totalBytes for planCluster: expected a number of bytes above 0, received -1 (number)');
  });
});
