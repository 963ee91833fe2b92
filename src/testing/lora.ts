/**
 * Synthetic LoRA adapters for synthetic models, in llama.cpp's adapter format: general.type
 * "adapter", adapter.type "lora", adapter.lora.alpha, and for each adapted weight W [n_in, n_out]
 * a pair W.lora_a [n_in, rank] and W.lora_b [rank, n_out] (the token embedding's pair is
 * [rank, n_vocab] and [rank, n_embd]). Random values sized like the model's own weights, so an
 * adapter at scale 1 changes a synthetic model's greedy output as a real fine-tune would.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { OptionsError } from '../errors.js';
import { readGgufHeader } from '../gguf/reader.js';
import { GgufValueType, type GgufTypedValue } from '../gguf/types.js';
import { writeGguf, type TensorSpec } from '../gguf/writer.js';
import { parseOptions } from '../engine/validate.js';
import { Rng } from './rng.js';

/** The weights of every block an adapter adapts when no targets are given. */
export const DEFAULT_LORA_TARGETS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'] as const;

const loraSchema = z.strictObject({
  path: z.string({ error: 'expected an output file path' }).min(1),
  /** the synthetic (or any Llama-style) model file the adapter is for */
  modelPath: z.string({ error: 'expected the path of the base model GGUF file' }).min(1),
  rank: z.number().int().min(1).max(4096),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  /** adapter.lora.alpha (default: rank, so the update is scaled by the scale alone) */
  alpha: z.number().finite().optional(),
  /**
   * the weights to adapt: kinds of block weights ('attn_q', 'ffn_down', ...: every block's), or
   * full tensor names ('blk.0.attn_v.weight', 'output.weight', 'token_embd.weight')
   */
  targets: z.array(z.string().min(1)).min(1).optional(),
});
export type SyntheticLoraOptions = z.input<typeof loraSchema>;

function floatFill(values: Float32Array): TensorSpec['fill'] {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return (chunk, offset) => bytes.copy(chunk, 0, offset, offset + chunk.length);
}

function normal(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

/**
 * Writes a LoRA adapter GGUF for the model at modelPath, deterministic by seed. Returns the
 * file's size and the tensors adapted.
 */
export async function writeSyntheticLora(options: SyntheticLoraOptions): Promise<{ path: string; sizeBytes: number; targets: string[] }> {
  const opts = parseOptions(loraSchema, options, 'writeSyntheticLora');
  const model = await readGgufHeader(opts.modelPath);
  const arch = model.metadata.get('general.architecture')?.value;
  if (typeof arch !== 'string') throw new OptionsError(`${opts.modelPath} has no general.architecture key: expected a model file`);
  const kinds = opts.targets ?? DEFAULT_LORA_TARGETS;
  const wanted = (name: string) => kinds.some((k) => name === k || new RegExp(`^blk\\.\\d+\\.${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.weight$`).test(name));
  const weights = model.tensors.filter((t) => t.dims.length >= 2 && wanted(t.name));
  if (weights.length === 0) throw new OptionsError(`none of the targets ${kinds.join(', ')} names a weight matrix of ${opts.modelPath}`);
  const r = opts.rank;
  const rng = new Rng(opts.seed);
  const tensors: TensorSpec[] = [];
  for (const w of weights) {
    const [nIn, nOut] = w.dims;
    if (w.name === 'token_embd.weight') {
      // looked up by token: A [rank, n_vocab] like the embedding's scale, B [rank, n_embd]
      tensors.push({ name: `${w.name}.lora_a`, dims: [r, nOut], type: 'F32', fill: floatFill(normal(rng, r * nOut, 0.02)) });
      tensors.push({ name: `${w.name}.lora_b`, dims: [r, nIn], type: 'F32', fill: floatFill(normal(rng, r * nIn, 1 / Math.sqrt(r))) });
    } else {
      // B A x is about as large as W x: A and B scaled by 1/sqrt(fan-in) like the model's weights
      tensors.push({ name: `${w.name}.lora_a`, dims: [nIn, r], type: 'F32', fill: floatFill(normal(rng, nIn * r, 1 / Math.sqrt(nIn))) });
      tensors.push({ name: `${w.name}.lora_b`, dims: [r, nOut], type: 'F32', fill: floatFill(normal(rng, r * nOut, 1 / Math.sqrt(r))) });
    }
  }
  const baseName = model.metadata.get('general.name')?.value;
  const str = (value: string): GgufTypedValue => ({ type: GgufValueType.STRING, value });
  const metadata = new Map<string, GgufTypedValue>([
    ['general.architecture', str(arch)],
    ['general.type', str('adapter')],
    ['general.name', str(`synthetic LoRA rank ${r} seed ${opts.seed}`)],
    ['adapter.type', str('lora')],
    ['adapter.lora.alpha', { type: GgufValueType.FLOAT32, value: opts.alpha ?? r }],
    ...(typeof baseName === 'string'
      ? ([
          ['general.base_model.count', { type: GgufValueType.UINT32, value: 1 }],
          ['general.base_model.0.name', str(baseName)],
        ] as const)
      : []),
  ]);
  await mkdir(dirname(opts.path), { recursive: true });
  const partial = `${opts.path}.partial`;
  try {
    await writeGguf(partial, metadata, tensors);
    await rename(partial, opts.path);
  } finally {
    await rm(partial, { force: true });
  }
  return { path: opts.path, sizeBytes: (await stat(opts.path)).size, targets: weights.map((w) => w.name) };
}
