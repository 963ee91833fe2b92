// LoRA adapters on the tiny synthetic model: scales, parity with llama.cpp's C API applying the
// same adapters, several contexts with their own adapters over one model, changing adapters, and
// the memory planner's count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusyError, OptionsError, loadModel, planMemory, setLogger, type Context, type Model } from '../../src/index.js';
import { writeSyntheticLora } from '../../src/testing/index.js';
import { join } from 'node:path';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { FIXTURES } from '../fixtures.js';
import { generate } from './helpers.js';
import { ADAPTER_A, ADAPTER_B, N, PROMPT, THREADS, greedy, loadBase, reference, scratch } from './lora-helpers.js';

let model: Model;
let base: number[];
beforeAll(async () => {
  ({ model, base } = await loadBase());
});
afterAll(() => model?.dispose());

describe('LoRA adapters', () => {
  it('scale 0 gives exactly the base model greedy tokens; scale 1 gives others', async () => {
    const adapter = await model.loadLora(ADAPTER_A);
    const ctx = await model.createContext({ nCtx: 512, threads: THREADS, lora: [{ adapter, scale: 0 }] });
    expect(await greedy(ctx)).toEqual(base);
    await ctx.setLoras([{ adapter, scale: 1 }]);
    const adapted = await greedy(ctx);
    expect(adapted).not.toEqual(base);
    expect(adapted.length).toBe(N);
    await ctx.setLoras([]);
    expect(await greedy(ctx)).toEqual(base);
    await ctx.dispose();
    await adapter.dispose();
  });

  it('matches llama.cpp C API applying the same adapters, token for token', async () => {
    const a = await model.loadLora(ADAPTER_A);
    const b = await model.loadLora(ADAPTER_B);
    const ctx = await model.createContext({ nCtx: 512, threads: THREADS });
    expect(reference(model, undefined)).toEqual(base);
    for (const [uses, spec] of [
      [[{ adapter: a, scale: 1 }], `${ADAPTER_A}:1`],
      [[{ adapter: a, scale: 0.5 }, { adapter: b, scale: -1.5 }], `${ADAPTER_A}:0.5,${ADAPTER_B}:-1.5`],
    ] as const) {
      await ctx.setLoras(uses);
      const ours = await greedy(ctx);
      const theirs = reference(model, spec);
      expect(ours).toEqual(theirs);
      expect(ours).not.toEqual(base);
      expect(ours.length).toBe(N);
      // a parity test over output that repeats one token would prove little
      expect(new Set(ours).size).toBeGreaterThan(N / 4);
    }
    await ctx.dispose();
    await a.dispose();
    await b.dispose();
  });

  it('matches llama.cpp on a Q4_K_M model too, whose repacked weights keep their adapters in a CPU buffer', async () => {
    const q4 = await loadModel({ modelPath: FIXTURES.q4km, nGpuLayers: 0, lora: [{ path: ADAPTER_A, scale: 1 }] });
    try {
      const ctx = await q4.createContext({ nCtx: 512, threads: THREADS });
      const ours = await greedy(ctx);
      expect(ours).toEqual(reference(q4, `${ADAPTER_A}:1`));
      const plain = await q4.createContext({ nCtx: 512, threads: THREADS, lora: [] });
      expect(ours).not.toEqual(await greedy(plain));
    } finally {
      await q4.dispose();
    }
  });

  it('gives two contexts over one model their own adapters, generating interleaved', async () => {
    const a = await model.loadLora(ADAPTER_A);
    const b = await model.loadLora(ADAPTER_B);
    const alone = async (uses: Parameters<Context['setLoras']>[0]) => {
      const ctx = await model.createContext({ nCtx: 512, threads: THREADS, lora: [...uses] });
      const tokens = await greedy(ctx);
      await ctx.dispose();
      return tokens;
    };
    const withA = await alone([{ adapter: a, scale: 1 }]);
    const withB = await alone([{ adapter: b, scale: 1 }]);
    expect(withA).not.toEqual(withB);
    const ctxA = await model.createContext({ nCtx: 512, threads: THREADS, lora: [{ adapter: a, scale: 1 }] });
    const ctxB = await model.createContext({ nCtx: 512, threads: THREADS, lora: [{ adapter: b, scale: 1 }] });
    const ctxBase = await model.createContext({ nCtx: 512, threads: THREADS, lora: [] });
    // all three stream at once: each consumer takes one chunk at a time
    const [ra, rb, rBase] = await Promise.all([greedy(ctxA), greedy(ctxB), greedy(ctxBase)]);
    expect(ra).toEqual(withA);
    expect(rb).toEqual(withB);
    expect(rBase).toEqual(base);
    await Promise.all([ctxA.dispose(), ctxB.dispose(), ctxBase.dispose()]);
    await a.dispose();
    await b.dispose();
  });

  it('loadModel({ lora }) gives what loadLora and setLoras give, in every context it creates', async () => {
    const a = await model.loadLora(ADAPTER_A);
    const ctx = await model.createContext({ nCtx: 512, threads: THREADS });
    await ctx.setLoras([{ adapter: a, scale: 0.75 }]);
    const expected = await greedy(ctx);
    await ctx.dispose();
    await a.dispose();
    const withLora = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0, lora: [{ path: ADAPTER_A, scale: 0.75 }] });
    try {
      expect(withLora.lora.map((l) => [l.adapter.path, l.scale])).toEqual([[ADAPTER_A, 0.75]]);
      const c1 = await withLora.createContext({ nCtx: 512, threads: THREADS });
      expect(c1.lora).toHaveLength(1);
      expect(await greedy(c1)).toEqual(expected);
      // a context may choose otherwise
      const c2 = await withLora.createContext({ nCtx: 512, threads: THREADS, lora: [] });
      expect(await greedy(c2)).toEqual(base);
      // a disposed adapter is no longer a default; the context that applies it keeps it
      await withLora.lora[0].adapter.dispose();
      expect(withLora.lora).toEqual([]);
      const c3 = await withLora.createContext({ nCtx: 512, threads: THREADS });
      expect(await greedy(c3)).toEqual(base);
      expect(await greedy(c1)).toEqual(expected);
    } finally {
      await withLora.dispose();
    }
  });

  it('describes the adapter: base model, alpha, rank, targets, size', async () => {
    const b = await model.loadLora(ADAPTER_B);
    expect(b.baseModel).toEqual({ architecture: 'llama', name: 'Hermes 3 synthetic tiny' });
    expect(b.alpha).toBe(8);
    expect(b.rank).toBe(4);
    expect(b.targets).toEqual(['blk.0.attn_v.weight', 'blk.0.ffn_down.weight', 'blk.1.attn_v.weight', 'blk.1.ffn_down.weight']);
    const header = await readGgufHeader(ADAPTER_B);
    expect(b.sizeBytes).toBe(header.tensors.reduce((n, t) => n + t.sizeBytes, 0));
    expect(b.metadata['adapter.type']).toBe('lora');
    await b.dispose();
  });

  it('refuses to change adapters while a sequence generates, and re-evaluates the cache after a change', async () => {
    const a = await model.loadLora(ADAPTER_A);
    const ctx = await model.createContext({ nCtx: 512, threads: THREADS });
    const seq = ctx.sequence();
    const stream = seq.generate(PROMPT, { temperature: 0, maxTokens: 8, bufferTokens: 1 });
    await stream.next();
    await expect(ctx.setLoras([{ adapter: a, scale: 1 }])).rejects.toBeInstanceOf(BusyError);
    for await (const _ of stream) void _;
    expect(seq.cachedTokens).toBeGreaterThan(0);
    await ctx.setLoras([{ adapter: a, scale: 1 }]);
    // the cache was computed without the adapter: none of it is reused
    expect(seq.cachedTokens).toBe(0);
    const next = await generate(seq, ' more', { maxTokens: 4 });
    expect(next.last.timings?.cachedTokens).toBe(0);
    // setting the same adapters again keeps the cache
    await ctx.setLoras([{ adapter: a, scale: 1 }]);
    expect(seq.cachedTokens).toBeGreaterThan(0);
    await ctx.dispose();
    await a.dispose();
  });

  it('validates setLoras arguments', async () => {
    const a = await model.loadLora(ADAPTER_A);
    const ctx = await model.createContext({ nCtx: 256, threads: THREADS });
    await expect(ctx.setLoras([{ adapter: a, scale: Number.NaN }])).rejects.toThrow(/Invalid option 0\.scale for setLoras: expected a (finite )?number between -100 and 100/);
    await expect(ctx.setLoras([{ adapter: {} as never, scale: 1 }])).rejects.toThrow(/expected a LoraAdapter from model\.loadLora\(\)/);
    await expect(ctx.setLoras([{ adapter: a }, { adapter: a, scale: 2 }])).rejects.toThrow(/given twice to setLoras/);
    const other = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0 });
    const foreign = await other.loadLora(ADAPTER_A);
    await expect(ctx.setLoras([{ adapter: foreign }])).rejects.toThrow(OptionsError);
    await expect(ctx.setLoras([{ adapter: foreign }])).rejects.toThrow(/was loaded for another model/);
    await other.dispose();
    await expect(model.loadLora(42 as never)).rejects.toThrow("Invalid argument path for loadLora: expected the path of a LoRA adapter GGUF file, received 42 (number)");
    await ctx.dispose();
    await a.dispose();
  });
});

describe('chat files and adapters', () => {
  it('a chat saved under an adapter loads only into a context applying the same adapters', async () => {
    const adapter = await model.loadLora(ADAPTER_A);
    const file = join(scratch, 'adapted.chat');
    const adapted = await model.createContext({ nCtx: 512, nSeqMax: 2, threads: THREADS, lora: [{ adapter, scale: 0.5 }] });
    const chat = model.chat({ context: adapted, temperature: 0, maxTokens: 4 });
    await chat.ask('Hello');
    await chat.save(file);
    await chat.dispose();
    const plain = await model.createContext({ nCtx: 512, nSeqMax: 2, threads: THREADS, lora: [] });
    const err = await model.chat({ context: plain }).load(file).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CHAT_FILE_MODEL' });
    expect((err as Error).message).toMatch(/was saved with other LoRA adapters, .*lora "a\.gguf@0\.5".*this chat runs .*lora none/);
    const same = model.chat({ context: adapted });
    expect((await same.load(file)).messages).toBe(2);
    await same.dispose();
    await plain.dispose();
    await adapted.dispose();
    await adapter.dispose();
  });
});

describe('memory planning with adapters', () => {
  it('counts the adapter files tensor bytes, and adapterBytes', async () => {
    const tensorBytes = (await readGgufHeader(ADAPTER_A)).tensors.reduce((n, t) => n + t.sizeBytes, 0);
    expect(tensorBytes).toBeGreaterThan(0);
    const without = await planMemory({ modelPath: FIXTURES.f16, nCtx: 512 });
    const withA = await planMemory({ modelPath: FIXTURES.f16, nCtx: 512, lora: [{ path: ADAPTER_A }] });
    expect(without.adapterBytes).toBe(0);
    expect(withA.adapterBytes).toBe(tensorBytes);
    expect(withA.totalBytes - without.totalBytes).toBe(tensorBytes);
    expect(withA.devices[0].adapterBytes).toBe(tensorBytes);
    const both = await planMemory({ modelPath: FIXTURES.f16, nCtx: 512, lora: [{ path: ADAPTER_A }, { path: ADAPTER_B }], adapterBytes: 1000 });
    const bBytes = (await readGgufHeader(ADAPTER_B)).tensors.reduce((n, t) => n + t.sizeBytes, 0);
    expect(both.adapterBytes).toBe(tensorBytes + bBytes + 1000);
    // rank-8 F32 matrices for the 7 weights of each block, from the shape
    expect(withA.adapterBytes).toBe(a32Bytes());
    // an adapter's matrices go where the weight they adapt is: here block 1 on the GPU, block 0 on the CPU
    const split = await planMemory({ modelPath: FIXTURES.f16, nCtx: 512, nGpuLayers: 2, lora: [{ path: ADAPTER_A }] });
    expect(split.devices.map((d) => [d.device, d.adapterBytes])).toEqual([
      ['CPU', tensorBytes / 2],
      ['GPU', tensorBytes / 2],
    ]);
  });
});

describe('what llama.cpp allocates for an adapter', () => {
  it('is what the planner counts (llama.cpp says it in its log)', async () => {
    const big = join(scratch, 'rank64.gguf');
    await writeSyntheticLora({ path: big, modelPath: FIXTURES.f16, rank: 64, seed: 3 });
    const lines: string[] = [];
    const m = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0, lora: [{ path: big }], logger: (_l, line) => lines.push(line), logLevel: 'info' });
    setLogger(null);
    await m.dispose();
    // "llama_adapter_lora_init_impl:        CPU LoRA buffer size =     2.06 MiB"
    const logged = lines.map((l) => /LoRA buffer size =\s*([\d.]+) MiB/.exec(l)).filter((x) => x !== null);
    expect(logged.length).toBeGreaterThan(0);
    const mib = logged.reduce((n, x) => n + Number(x[1]), 0);
    const plan = await planMemory({ modelPath: FIXTURES.f16, nCtx: 512, lora: [{ path: big }] });
    expect(plan.adapterBytes).toBe(8 * a32Bytes());
    // the log has two decimals
    expect(Math.abs(plan.adapterBytes / 2 ** 20 - mib)).toBeLessThanOrEqual(0.005);
  });
});

/** bytes of rank-8 F32 matrices for the 7 weights of the tiny model's 2 blocks */
function a32Bytes(): number {
  const [embd, ff, kv, r] = [256, 512, 128, 8];
  const pairs = [[embd, embd], [embd, kv], [embd, kv], [embd, embd], [embd, ff], [embd, ff], [ff, embd]];
  return 2 * pairs.reduce((n, [nIn, nOut]) => n + 4 * r * (nIn + nOut), 0);
}
