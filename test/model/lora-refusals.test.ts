// LoRA adapters that do not fit the model or are not adapters: typed errors before llama.cpp
// reads them (it aborts on some), the process alive; and disposing adapters and models in any order.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisposedError, GgufFormatError, ModelFileError, ModelLoadError, loadModel, type Model } from '../../src/index.js';
import { GgufValueType } from '../../src/gguf/types.js';
import { writeSyntheticLora } from '../../src/testing/index.js';
import { FIXTURES, referenceProgram, requireFile } from '../fixtures.js';
import { ADAPTER_A, ADAPTER_B, THREADS, greedy, loadBase, rewrite, scratch } from './lora-helpers.js';

let model: Model;
let base: number[];
beforeAll(async () => {
  ({ model, base } = await loadBase());
});
afterAll(() => model?.dispose());

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
