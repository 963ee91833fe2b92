/**
 * The tensor table of a Llama 3 model of a given shape and file type, without the file: names,
 * shapes and the types llama.cpp's quantizer gives each tensor (checked against files it wrote).
 */
import type { ModelShape } from './shapes.js';
import type { FileTypeName } from './types.js';
import { GGML_TYPES } from './types.js';

export interface PlannedTensor {
  name: string;
  dims: number[];
  type: string;
  sizeBytes: number;
  /** the block the tensor belongs to (undefined: embeddings, output) */
  layer?: number;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between
function moreBits(i: number, n: number): boolean {
  return i < n / 8 || i >= (7 * n) / 8 || (i - Math.floor(n / 8)) % 3 === 2;
}

const BASE: Record<FileTypeName, string> = {
  F32: 'F32', F16: 'F16', BF16: 'BF16', Q8_0: 'Q8_0', Q6_K: 'Q6_K', Q5_K_M: 'Q5_K', Q5_K_S: 'Q5_K', Q4_K_M: 'Q4_K', Q4_K_S: 'Q4_K',
  Q4_0: 'Q4_0', Q3_K_M: 'Q3_K', Q2_K: 'Q2_K', IQ4_XS: 'IQ4_XS',
};

function typeFor(ftype: FileTypeName, role: 'embd' | 'output' | 'attn_v' | 'ffn_down' | 'other', layer: number, nLayer: number): string {
  const base = BASE[ftype];
  if (['F32', 'F16', 'BF16'].includes(ftype)) return base;
  if (role === 'output') return ftype === 'Q8_0' ? 'Q8_0' : 'Q6_K';
  if (role === 'embd') return base;
  if ((ftype === 'Q4_K_M' || ftype === 'Q5_K_M') && (role === 'attn_v' || role === 'ffn_down') && moreBits(layer, nLayer)) return 'Q6_K';
  if (ftype === 'Q3_K_M' && (role === 'attn_v' || role === 'ffn_down')) return 'Q4_K';
  return base;
}

function bytes(dims: number[], type: string): number {
  const t = GGML_TYPES[type];
  return (dims.reduce((a, b) => a * b, 1) / t.blockSize) * t.typeSize;
}

export function plannedTensors(s: ModelShape, ftype: FileTypeName): PlannedTensor[] {
  const out: PlannedTensor[] = [];
  const add = (name: string, dims: number[], type: string, layer?: number) => out.push({ name, dims, type, sizeBytes: bytes(dims, type), layer });
  const q = s.nHead * s.headDim;
  const kv = s.nHeadKv * s.headDim;
  // with tied embeddings the token embedding doubles as the output matrix and is typed like it
  add('token_embd.weight', [s.nEmbd, s.nVocab], typeFor(ftype, s.tiedEmbeddings ? 'output' : 'embd', 0, s.nLayer));
  add('rope_freqs.weight', [s.headDim / 2], 'F32');
  for (let i = 0; i < s.nLayer; i++) {
    const t = (role: Parameters<typeof typeFor>[1]) => typeFor(ftype, role, i, s.nLayer);
    add(`blk.${i}.attn_norm.weight`, [s.nEmbd], 'F32', i);
    add(`blk.${i}.attn_q.weight`, [s.nEmbd, q], t('other'), i);
    add(`blk.${i}.attn_k.weight`, [s.nEmbd, kv], t('other'), i);
    add(`blk.${i}.attn_v.weight`, [s.nEmbd, kv], t('attn_v'), i);
    add(`blk.${i}.attn_output.weight`, [q, s.nEmbd], t('other'), i);
    add(`blk.${i}.ffn_norm.weight`, [s.nEmbd], 'F32', i);
    add(`blk.${i}.ffn_gate.weight`, [s.nEmbd, s.nFf], t('other'), i);
    add(`blk.${i}.ffn_down.weight`, [s.nFf, s.nEmbd], t('ffn_down'), i);
    add(`blk.${i}.ffn_up.weight`, [s.nEmbd, s.nFf], t('other'), i);
  }
  add('output_norm.weight', [s.nEmbd], 'F32');
  if (!s.tiedEmbeddings) add('output.weight', [s.nEmbd, s.nVocab], typeFor(ftype, 'output', 0, s.nLayer));
  return out;
}
