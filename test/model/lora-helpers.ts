// What the LoRA tests share: adapters written for the tiny model, greedy generation, the C API
// reference program with adapters, and a GGUF rewriter for adapters that do not fit.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatChat, loadModel, type Context, type Model } from '../../src/index.js';
import { parseGguf } from '../../src/gguf/reader.js';
import type { GgufTypedValue } from '../../src/gguf/types.js';
import { writeGguf } from '../../src/gguf/writer.js';
import { writeSyntheticLora } from '../../src/testing/index.js';
import { FIXTURES, referenceProgram, requireFile } from '../fixtures.js';
import { generate } from './helpers.js';

export const scratch = mkdtempSync(join(tmpdir(), 'hermes3-lora-'));
export const THREADS = 2;
export const N = 32;
export const PROMPT = formatChat([{ role: 'user', content: 'Hello, who are you?' }]);
export const ADAPTER_A = join(scratch, 'a.gguf');
export const ADAPTER_B = join(scratch, 'b.gguf');

export async function greedy(ctx: Context, maxTokens = N): Promise<number[]> {
  const seq = ctx.sequence();
  try {
    return (await generate(seq, PROMPT, { maxTokens })).tokens;
  } finally {
    await seq.dispose();
  }
}

/** Writes the adapters, loads the f16 fixture on the CPU, and takes its greedy tokens without adapters. */
export async function loadBase(): Promise<{ model: Model; base: number[] }> {
  await writeAdapters();
  const model = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0 });
  const ctx = await model.createContext({ nCtx: 512, threads: THREADS });
  const base = await greedy(ctx);
  await ctx.dispose();
  return { model, base };
}

/** The greedy tokens of llama.cpp's C API (test/reference/reference.cpp) with adapters PATH:SCALE,... */
export function reference(model: Model, lora: string | undefined): number[] {
  const prompt = model.tokenize(PROMPT, { special: true, addBos: true });
  const out = execFileSync(requireFile(referenceProgram, 'build the addon first (npm install)'), [model.path, String(N), String(THREADS), ...prompt.map(String)], {
    encoding: 'utf8',
    env: { ...process.env, HERMES3_REFERENCE_GPU_LAYERS: '0', ...(lora ? { HERMES3_REFERENCE_LORA: lora } : {}) },
  });
  return out.trim().split('\n').map(Number);
}

/** Copies a GGUF file with its metadata and tensors edited (the tensors' data kept, or zeros for a new size). */
export async function rewrite(src: string, dst: string, edit: (meta: Map<string, GgufTypedValue>, tensors: Array<{ name: string; dims: number[]; type: string }>) => void): Promise<string> {
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

/** Writes adapters A (rank 8, every block weight) and B (rank 4, alpha 8, attn_v and ffn_down). */
export async function writeAdapters(): Promise<void> {
  await writeSyntheticLora({ path: ADAPTER_A, modelPath: FIXTURES.f16, rank: 8, seed: 11 });
  await writeSyntheticLora({ path: ADAPTER_B, modelPath: FIXTURES.f16, rank: 4, seed: 12, alpha: 8, targets: ['attn_v', 'ffn_down'] });
}
