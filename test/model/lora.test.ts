// LoRA adapters on the tiny synthetic model: scales, parity with llama.cpp's C API applying the
// same adapter, several contexts with their own adapters over one model, the checks that refuse
// an adapter made for another model, dispose orders, and the memory planner's count.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusyError, DisposedError, GgufFormatError, ModelFileError, ModelLoadError, OptionsError, formatChat, loadModel, planMemory, type Context, type Model } from '../../src/index.js';
import { parseGguf, readGgufHeader } from '../../src/gguf/reader.js';
import { GgufValueType, type GgufTypedValue } from '../../src/gguf/types.js';
import { writeGguf } from '../../src/gguf/writer.js';
import { writeSyntheticLora } from '../../src/testing/index.js';
import { FIXTURES, referenceProgram, requireFile } from '../fixtures.js';
import { generate } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'hermes3-lora-'));
const THREADS = 2;
const N = 32;
const PROMPT = formatChat([{ role: 'user', content: 'Hello, who are you?' }]);
const ADAPTER_A = join(scratch, 'a.gguf');
const ADAPTER_B = join(scratch, 'b.gguf');

async function greedy(ctx: Context, maxTokens = N): Promise<number[]> {
  const seq = ctx.sequence();
  try {
    return (await generate(seq, PROMPT, { maxTokens })).tokens;
  } finally {
    await seq.dispose();
  }
}

/** The greedy tokens of llama.cpp's C API (test/reference/reference.cpp) with adapters PATH:SCALE,... */
function reference(model: Model, lora: string | undefined): number[] {
  const prompt = model.tokenize(PROMPT, { special: true, addBos: true });
  const out = execFileSync(requireFile(referenceProgram, 'build the addon first (npm install)'), [model.path, String(N), String(THREADS), ...prompt.map(String)], {
    encoding: 'utf8',
    env: { ...process.env, HERMES3_REFERENCE_GPU_LAYERS: '0', ...(lora ? { HERMES3_REFERENCE_LORA: lora } : {}) },
  });
  return out.trim().split('\n').map(Number);
}

/** Copies a GGUF file with its metadata and tensors edited (the tensors' data kept, or zeros for a new size). */
async function rewrite(src: string, dst: string, edit: (meta: Map<string, GgufTypedValue>, tensors: Array<{ name: string; dims: number[]; type: string }>) => void): Promise<string> {
  const buf = readFileSync(src);
  const h = parseGguf(buf, src);
  const tensors = h.tensors.map((t) => ({ name: t.name, dims: [...t.dims], type: t.typeName, data: buf.subarray(h.dataOffset + t.offset, h.dataOffset + t.offset + t.sizeBytes) }));
  const meta = new Map(h.metadata);
  edit(meta, tensors);
  await writeGguf(
    dst,
    meta,
    tensors.map((t) => ({
      name: t.name,
      dims: t.dims,
      type: t.type as 'F32',
      fill: (chunk: Buffer, offset: number) => {
        chunk.fill(0);
        t.data.copy(chunk, 0, offset, Math.min(t.data.length, offset + chunk.length));
      },
    })),
  );
  return dst;
}

let model: Model;
let base: number[];
beforeAll(async () => {
  await writeSyntheticLora({ path: ADAPTER_A, modelPath: FIXTURES.f16, rank: 8, seed: 11 });
  await writeSyntheticLora({ path: ADAPTER_B, modelPath: FIXTURES.f16, rank: 4, seed: 12, alpha: 8, targets: ['attn_v', 'ffn_down'] });
  model = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0 });
  const ctx = await model.createContext({ nCtx: 512, threads: THREADS });
  base = await greedy(ctx);
  await ctx.dispose();
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

describe('adapters that do not fit the model', () => {
  const bad = (name: string) => join(scratch, name);
  // the adapters more than one test uses
  const make = {
    arch: () => rewrite(ADAPTER_A, bad('arch.gguf'), (m) => m.set('general.architecture', { type: GgufValueType.STRING, value: 'qwen2' })),
    alpha: () => rewrite(ADAPTER_A, bad('alpha.gguf'), (m) => m.set('adapter.lora.alpha', { type: GgufValueType.UINT32, value: 16 })),
    type: () => rewrite(ADAPTER_A, bad('type.gguf'), (m) => m.set('general.type', { type: GgufValueType.UINT32, value: 1 })),
    // the tiny model reuses its token embedding as the output matrix
    embd: async () => (await writeSyntheticLora({ path: bad('embd.gguf'), modelPath: FIXTURES.f16, rank: 4, seed: 3, targets: ['token_embd.weight'] })).path,
  };
  const refuse = async (path: string, code: string, message: RegExp) => {
    const err = await model.loadLora(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
  };

  it('refuses an adapter for another architecture, a tensor of another shape, a tensor the model lacks', async () => {
    await refuse(
      await make.arch(),
      'ERR_LORA_MISMATCH',
      /was not made for the model .*: the adapter is for the architecture "qwen2", the model is "llama"\. Use an adapter trained on this base model/,
    );
    // an adapter made for a wider model: lora_a rows of 512 where the model's are 256
    await refuse(
      await rewrite(ADAPTER_A, bad('shape.gguf'), (_m, ts) => (ts.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!.dims = [512, 8])),
      'ERR_LORA_MISMATCH',
      /blk\.0\.attn_q\.weight is \[256, 256\], but its lora_a is \[512, 8\] and lora_b \[8, 256\] \(expected \[256, rank\] and \[rank, 256\]\)/,
    );
    await refuse(
      await rewrite(ADAPTER_B, bad('missing-tensor.gguf'), (_m, ts) => ts.filter((t) => t.name.startsWith('blk.1.attn_v')).forEach((t) => (t.name = t.name.replace('blk.1.', 'blk.7.')))),
      'ERR_LORA_MISMATCH',
      /it adapts the tensor blk\.7\.attn_v\.weight, which the model does not have/,
    );
    // the model reuses its token embedding as the output matrix: llama.cpp would abort at decode time
    await refuse(await make.embd(), 'ERR_LORA_MISMATCH', /adapts token_embd\.weight, which this model also uses as its output matrix \(tied embeddings\)/);
  });

  it('refuses files that are not usable LoRA adapters, including those llama.cpp would abort on', async () => {
    await refuse(FIXTURES.f16, 'ERR_LORA_INVALID', /it has no general\.type key \(a LoRA adapter has general\.type "adapter"; is this a model file\?\)/);
    // llama.cpp reads these keys with accessors that abort the process on another value type
    await refuse(
      await make.alpha(),
      'ERR_LORA_INVALID',
      /adapter\.lora\.alpha has value type UINT32, expected FLOAT32/,
    );
    await refuse(
      await make.type(),
      'ERR_LORA_INVALID',
      /general\.type has value type UINT32, expected a string/,
    );
    await refuse(
      await rewrite(ADAPTER_A, bad('cvec.gguf'), (m) => m.set('adapter.type', { type: GgufValueType.STRING, value: 'control_vector' })),
      'ERR_LORA_INVALID',
      /adapter\.type is "control_vector", expected "lora"/,
    );
    await refuse(
      await rewrite(ADAPTER_A, bad('unpaired.gguf'), (_m, ts) => ts.splice(ts.findIndex((t) => t.name === 'blk.1.ffn_up.weight.lora_b'), 1)),
      'ERR_LORA_INVALID',
      /tensor blk\.1\.ffn_up\.weight\.lora_b is missing/,
    );
    // ranks that cannot be multiplied: llama.cpp would abort in the graph
    await refuse(
      await rewrite(ADAPTER_A, bad('rank.gguf'), (_m, ts) => (ts.find((t) => t.name === 'blk.0.attn_k.weight.lora_b')!.dims = [4, 128])),
      'ERR_LORA_INVALID',
      /their ranks differ \(8 and 4\)/,
    );
    await refuse(
      await rewrite(ADAPTER_A, bad('3d.gguf'), (_m, ts) => (ts.find((t) => t.name === 'blk.0.attn_k.weight.lora_a')!.dims = [256, 4, 2])),
      'ERR_LORA_INVALID',
      /has shape \[256, 4, 2\]; LoRA matrices are two-dimensional/,
    );
  });

  it('refuses first what makes llama.cpp abort: its C API reference program dies on those files', async () => {
    for (const file of [await make.alpha(), await make.type(), await make.embd()]) {
      await expect(model.loadLora(file)).rejects.toBeInstanceOf(ModelLoadError);
      const r = spawnSync(requireFile(referenceProgram, 'build the addon first (npm install)'), [FIXTURES.f16, '2', String(THREADS), '128000', '9906'], {
        encoding: 'utf8',
        env: { ...process.env, HERMES3_REFERENCE_GPU_LAYERS: '0', HERMES3_REFERENCE_LORA: `${file}:1` },
      });
      expect(r.signal, `${file}: ${r.stderr.slice(-300)}`).toBe('SIGABRT');
      expect(r.stderr).toContain('GGML_ASSERT');
    }
  });

  it('refuses a missing, foreign or truncated file with the GGUF reader errors', async () => {
    const missing = await model.loadLora(bad('nope.gguf')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ModelFileError);
    expect(missing).toMatchObject({ code: 'ERR_FILE_NOT_FOUND' });
    expect((missing as Error).message).toMatch(/^LoRA adapter file not found: .*nope\.gguf/);
    writeFileSync(bad('text.gguf'), 'not an adapter\n');
    await expect(model.loadLora(bad('text.gguf'))).rejects.toThrow(GgufFormatError);
    const bytes = readFileSync(ADAPTER_A);
    writeFileSync(bad('cut.gguf'), bytes.subarray(0, bytes.length - 1000));
    await expect(model.loadLora(bad('cut.gguf'))).rejects.toThrow(/truncated/);
    // loadModel checks its adapters before loading the model
    await expect(loadModel({ modelPath: FIXTURES.f16, lora: [{ path: await make.arch() }] })).rejects.toMatchObject({ code: 'ERR_LORA_MISMATCH' });
    await expect(loadModel({ modelPath: FIXTURES.f16, lora: [{ path: ADAPTER_A, scale: 'x' as never }] })).rejects.toThrow(/Invalid option lora\.0\.scale for loadModel/);
  });

  it('leaves the process and the model working after every refusal', async () => {
    const ctx = await model.createContext({ nCtx: 512, threads: THREADS });
    expect(await greedy(ctx)).toEqual(base);
    await ctx.dispose();
  });
});

describe('disposing adapters and models', () => {
  it('keeps an adapter a context applies until the context lets go of it; then use is DisposedError', async () => {
    const m = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0 });
    const a = await m.loadLora(ADAPTER_A);
    const ctx = await m.createContext({ nCtx: 512, threads: THREADS, lora: [{ adapter: a, scale: 1 }] });
    const before = await greedy(ctx, 8);
    await a.dispose();
    await a.dispose();
    expect(a.isDisposed).toBe(true);
    // the context still applies it
    expect(await greedy(ctx, 8)).toEqual(before);
    await expect(ctx.setLoras([{ adapter: a, scale: 1 }])).rejects.toBeInstanceOf(DisposedError);
    await ctx.setLoras([]);
    await ctx.dispose();
    await m.dispose();
  });

  it('disposes the adapters with their model, in any order', async () => {
    for (const order of ['model first', 'context then adapter then model', 'adapter then model, context live'] as const) {
      const m = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0 });
      const a = await m.loadLora(ADAPTER_A);
      const ctx = await m.createContext({ nCtx: 256, threads: THREADS, lora: [{ adapter: a, scale: 1 }] });
      if (order === 'model first') {
        await m.dispose();
        expect(a.isDisposed).toBe(true);
        await a.dispose();
      } else if (order === 'context then adapter then model') {
        await ctx.dispose();
        await a.dispose();
        await m.dispose();
      } else {
        await a.dispose();
        await m.dispose();
      }
      expect(ctx.isDisposed).toBe(true);
      await expect(ctx.setLoras([])).rejects.toBeInstanceOf(DisposedError);
      await expect(m.loadLora(ADAPTER_A)).rejects.toBeInstanceOf(DisposedError);
      expect(() => a.native).toThrow(DisposedError);
    }
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

/** bytes of rank-8 F32 matrices for the 7 weights of the tiny model's 2 blocks */
function a32Bytes(): number {
  const [embd, ff, kv, r] = [256, 512, 128, 8];
  const pairs = [[embd, embd], [embd, kv], [embd, kv], [embd, embd], [embd, ff], [embd, ff], [ff, embd]];
  return 2 * pairs.reduce((n, [nIn, nOut]) => n + 4 * r * (nIn + nOut), 0);
}
