/**
 * Synthetic Hermes 3 models: random weights in exact Llama 3 shapes, the real Llama 3 vocabulary,
 * and Hermes's ChatML tokens. Compute per token equals a trained model of the same shape, so
 * they serve as test fixtures and benchmark models alike.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { parseGguf } from '../gguf/reader.js';
import { SHAPES, llama3RopeFactors, type ModelShape, type ShapeName } from '../gguf/shapes.js';
import { FILE_TYPES, GgufValueType, type GgufScalar, type GgufTypedValue } from '../gguf/types.js';
import { writeGguf, type TensorSpec } from '../gguf/writer.js';
import { packageRoot } from '../native/index.js';
import { quantize } from '../engine/quantize.js';
import { POOLING_IDS, poolingSchema, type Pooling } from '../engine/embedding-options.js';
import { parseOptions } from '../engine/validate.js';
import { Rng, toHalf } from './rng.js';

/** Hermes 3 8B's ChatML token ids (read them from the GGUF in real code; 70B and 405B differ). */
export const HERMES_TOKENS = { imStart: 128039, imEnd: 128040 } as const;

/** The plain ChatML loop that Hermes 3 GGUF files carry as tokenizer.chat_template. */
export const HERMES_CHAT_TEMPLATE =
  "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const VOCAB_PATH = join(packageRoot, 'vendor', 'llama.cpp', 'models', 'ggml-vocab-llama-bpe.gguf');

const QUANTS = ['F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'Q4_0', 'IQ4_XS'] as const;
const syntheticSchema = z.strictObject({
  path: z.string({ error: 'expected an output file path' }).min(1),
  shape: z.enum(Object.keys(SHAPES) as [ShapeName, ...ShapeName[]], { error: `expected one of ${Object.keys(SHAPES).join(', ')}` }),
  quant: z.enum(QUANTS, { error: `expected one of ${QUANTS.join(', ')}` }).default('F16'),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  /** layers to write instead of the shape's count (smaller benchmark models of the same width) */
  nLayer: z.number().int().min(1).optional(),
  /** tokenizer.chat_template (default: Hermes 3's plain ChatML loop) */
  chatTemplate: z.string().optional(),
  /** llama.pooling_type, the pooling embedding contexts use by default (default: none written) */
  pooling: poolingSchema().optional(),
});
export type SyntheticModelOptions = z.input<typeof syntheticSchema>;

function tokenizerMetadata(chatTemplate: string): Map<string, GgufTypedValue> {
  const header = parseGguf(readFileSync(VOCAB_PATH), VOCAB_PATH);
  const out = new Map<string, GgufTypedValue>();
  for (const [key, tv] of header.metadata) if (key.startsWith('tokenizer.')) out.set(key, tv);
  const tokens = out.get('tokenizer.ggml.tokens')!.value as { type: GgufValueType; values: GgufScalar[] };
  const types = out.get('tokenizer.ggml.token_type')!.value as { type: GgufValueType; values: GgufScalar[] };
  const CONTROL = 3;
  tokens.values = tokens.values.slice();
  types.values = types.values.slice();
  tokens.values[HERMES_TOKENS.imStart] = '<|im_start|>';
  tokens.values[HERMES_TOKENS.imEnd] = '<|im_end|>';
  types.values[HERMES_TOKENS.imStart] = CONTROL;
  types.values[HERMES_TOKENS.imEnd] = CONTROL;
  out.set('tokenizer.ggml.eos_token_id', { type: GgufValueType.UINT32, value: HERMES_TOKENS.imEnd });
  out.set('tokenizer.ggml.add_bos_token', { type: GgufValueType.BOOL, value: true });
  out.set('tokenizer.chat_template', { type: GgufValueType.STRING, value: chatTemplate });
  return out;
}

function modelMetadata(shape: ModelShape, nLayer: number, chatTemplate: string, pooling?: Pooling): Map<string, GgufTypedValue> {
  const u32 = (value: number): GgufTypedValue => ({ type: GgufValueType.UINT32, value });
  const f32 = (value: number): GgufTypedValue => ({ type: GgufValueType.FLOAT32, value });
  const str = (value: string): GgufTypedValue => ({ type: GgufValueType.STRING, value });
  const m = new Map<string, GgufTypedValue>([
    ['general.architecture', str('llama')],
    ['general.name', str(`Hermes 3 synthetic ${shape.name}`)],
    ['general.file_type', u32(FILE_TYPES.F16)],
    ['llama.context_length', u32(shape.nCtxTrain)],
    ['llama.embedding_length', u32(shape.nEmbd)],
    ['llama.block_count', u32(nLayer)],
    ['llama.feed_forward_length', u32(shape.nFf)],
    ['llama.attention.head_count', u32(shape.nHead)],
    ['llama.attention.head_count_kv', u32(shape.nHeadKv)],
    ['llama.attention.key_length', u32(shape.headDim)],
    ['llama.attention.value_length', u32(shape.headDim)],
    ['llama.rope.dimension_count', u32(shape.headDim)],
    ['llama.rope.freq_base', f32(shape.ropeTheta)],
    ['llama.attention.layer_norm_rms_epsilon', f32(1e-5)],
    ['llama.vocab_size', u32(shape.nVocab)],
  ]);
  if (pooling) m.set('llama.pooling_type', u32(POOLING_IDS[pooling]));
  for (const [k, v] of tokenizerMetadata(chatTemplate)) m.set(k, v);
  return m;
}

// Random half-precision values come from pools (one per standard deviation) copied at random
// offsets: memcpy speed, so the 8B shape's 16 GB take minutes, not hours.
const POOL = 1 << 20;
function halfFiller(rng: Rng, std: number): TensorSpec['fill'] {
  const pool = new Uint16Array(POOL);
  for (let i = 0; i < POOL; i++) pool[i] = toHalf(rng.normal() * std);
  const poolBytes = Buffer.from(pool.buffer);
  return (chunk) => {
    const SEG = 8192; // bytes, even
    for (let off = 0; off < chunk.length; off += SEG) {
      const n = Math.min(SEG, chunk.length - off);
      const from = (rng.u32() % (POOL - SEG / 2)) * 2;
      poolBytes.copy(chunk, off, from, from + n);
    }
  };
}

function floatFiller(values: Float32Array): TensorSpec['fill'] {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return (chunk, offset) => bytes.copy(chunk, 0, offset, offset + chunk.length);
}

function tensors(shape: ModelShape, nLayer: number, rng: Rng): TensorSpec[] {
  const { nEmbd, nFf, nHead, nHeadKv, headDim, nVocab } = shape;
  const ones = floatFiller(new Float32Array(Math.max(nEmbd, nFf)).fill(1));
  // Weights scaled by 1/sqrt(fan-in) keep activations near unit size through every layer; small
  // embeddings keep the residual stream from echoing the input token, so greedy output varies.
  const embd = halfFiller(rng, 0.02);
  const byEmbd = halfFiller(rng, 1 / Math.sqrt(nEmbd));
  const byFf = halfFiller(rng, 1 / Math.sqrt(nFf));
  const byHeads = halfFiller(rng, 1 / Math.sqrt(nHead * headDim));
  const list: TensorSpec[] = [
    { name: 'token_embd.weight', dims: [nEmbd, nVocab], type: 'F16', fill: embd },
    { name: 'rope_freqs.weight', dims: [headDim / 2], type: 'F32', fill: floatFiller(llama3RopeFactors(headDim, shape.ropeTheta)) },
  ];
  for (let i = 0; i < nLayer; i++) {
    const b = `blk.${i}.`;
    list.push(
      { name: b + 'attn_norm.weight', dims: [nEmbd], type: 'F32', fill: ones },
      { name: b + 'attn_q.weight', dims: [nEmbd, nHead * headDim], type: 'F16', fill: byEmbd },
      { name: b + 'attn_k.weight', dims: [nEmbd, nHeadKv * headDim], type: 'F16', fill: byEmbd },
      { name: b + 'attn_v.weight', dims: [nEmbd, nHeadKv * headDim], type: 'F16', fill: byEmbd },
      { name: b + 'attn_output.weight', dims: [nHead * headDim, nEmbd], type: 'F16', fill: byHeads },
      { name: b + 'ffn_norm.weight', dims: [nEmbd], type: 'F32', fill: ones },
      { name: b + 'ffn_gate.weight', dims: [nEmbd, nFf], type: 'F16', fill: byEmbd },
      { name: b + 'ffn_up.weight', dims: [nEmbd, nFf], type: 'F16', fill: byEmbd },
      { name: b + 'ffn_down.weight', dims: [nFf, nEmbd], type: 'F16', fill: byFf },
    );
  }
  list.push({ name: 'output_norm.weight', dims: [nEmbd], type: 'F32', fill: ones });
  if (!shape.tiedEmbeddings) list.push({ name: 'output.weight', dims: [nEmbd, nVocab], type: 'F16', fill: halfFiller(rng, 0.02) });
  return list;
}

/**
 * Writes a synthetic model. F16 files are written directly; other quantizations are produced
 * from an F16 file by llama.cpp's quantizer. Returns the file's size in bytes.
 */
export async function writeSyntheticModel(options: SyntheticModelOptions): Promise<{ path: string; sizeBytes: number }> {
  const opts = parseOptions(syntheticSchema, options, 'writeSyntheticModel');
  const shape: ModelShape = SHAPES[opts.shape];
  const nLayer = opts.nLayer ?? shape.nLayer;
  await mkdir(dirname(opts.path), { recursive: true });
  const f16Path = opts.quant === 'F16' ? opts.path : `${opts.path}.f16.tmp`;
  const partial = `${f16Path}.partial`;
  try {
    await writeGguf(partial, modelMetadata(shape, nLayer, opts.chatTemplate ?? HERMES_CHAT_TEMPLATE, opts.pooling), tensors(shape, nLayer, new Rng(opts.seed)));
    await rename(partial, f16Path);
    if (opts.quant !== 'F16') await quantize({ input: f16Path, output: opts.path, type: opts.quant });
  } finally {
    await rm(partial, { force: true });
    if (f16Path !== opts.path) await rm(f16Path, { force: true });
  }
  return { path: opts.path, sizeBytes: (await stat(opts.path)).size };
}
