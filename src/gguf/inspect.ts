/**
 * What a GGUF file holds, read in TypeScript without loading it: architecture, shape,
 * parameter count, file type, per-tensor types and sizes, training context, chat template and
 * special tokens. Truncated or corrupt files raise GgufFormatError saying where.
 */
import { stat } from 'node:fs/promises';
import { readGgufHeader, type GgufHeader } from './reader.js';
import { FILE_TYPES, type GgufArray } from './types.js';

export interface GgufInspection {
  path: string;
  fileBytes: number;
  version: number;
  architecture: string | undefined;
  name: string | undefined;
  /** llama_ftype name of general.file_type (e.g. Q4_K_M) */
  fileType: string | undefined;
  nParams: number;
  /** bytes of tensor data */
  weightsBytes: number;
  /** bits per weight over all tensors */
  bitsPerWeight: number;
  shape: {
    nLayer?: number;
    nEmbd?: number;
    nFf?: number;
    nHead?: number;
    nHeadKv?: number;
    headDim?: number;
    nVocab?: number;
    nCtxTrain?: number;
    ropeTheta?: number;
  };
  tensors: Array<{ name: string; type: string; dims: number[]; nElements: number; sizeBytes: number }>;
  /** tensor count and bytes per type */
  tensorTypes: Record<string, { count: number; bytes: number }>;
  chatTemplate: string | undefined;
  specialTokens: { bos?: number; eos?: number; eot?: number; pad?: number; addBos?: boolean; addEos?: boolean };
  /** every metadata value; arrays longer than 16 entries are summarised */
  metadata: Record<string, unknown>;
}

const FILE_TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(FILE_TYPES).map(([k, v]) => [v, k]));

function num(h: GgufHeader, key: string): number | undefined {
  const v = h.metadata.get(key)?.value;
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

function str(h: GgufHeader, key: string): string | undefined {
  const v = h.metadata.get(key)?.value;
  return typeof v === 'string' ? v : undefined;
}

function bool(h: GgufHeader, key: string): boolean | undefined {
  const v = h.metadata.get(key)?.value;
  return typeof v === 'boolean' ? v : undefined;
}

export async function inspectGguf(path: string): Promise<GgufInspection> {
  const h = await readGgufHeader(path);
  const { size } = await stat(path);
  const arch = str(h, 'general.architecture');
  const a = (k: string) => (arch ? num(h, `${arch}.${k}`) : undefined);
  const tokens = h.metadata.get('tokenizer.ggml.tokens')?.value as GgufArray | undefined;
  const nHead = a('attention.head_count');
  const nEmbd = a('embedding_length');
  const tensorTypes: Record<string, { count: number; bytes: number }> = {};
  let nParams = 0;
  let weightsBytes = 0;
  for (const t of h.tensors) {
    nParams += t.nElements;
    weightsBytes += t.sizeBytes;
    const entry = (tensorTypes[t.typeName] ??= { count: 0, bytes: 0 });
    entry.count++;
    entry.bytes += t.sizeBytes;
  }
  const metadata: Record<string, unknown> = {};
  for (const [key, { value }] of h.metadata) {
    if (typeof value === 'object' && value !== null && 'values' in value) {
      const length = value.length ?? value.values.length;
      metadata[key] = length > 16 ? `[${length} values]` : value.values;
    } else metadata[key] = typeof value === 'bigint' ? value.toString() : value;
  }
  const ftype = num(h, 'general.file_type');
  return {
    path,
    fileBytes: size,
    version: h.version,
    architecture: arch,
    name: str(h, 'general.name'),
    fileType: ftype === undefined ? undefined : (FILE_TYPE_NAMES[ftype] ?? `type ${ftype}`),
    nParams,
    weightsBytes,
    bitsPerWeight: nParams > 0 ? (weightsBytes * 8) / nParams : 0,
    shape: {
      nLayer: a('block_count'),
      nEmbd,
      nFf: a('feed_forward_length'),
      nHead,
      nHeadKv: a('attention.head_count_kv') ?? nHead,
      headDim: a('attention.key_length') ?? (nEmbd && nHead ? nEmbd / nHead : undefined),
      nVocab: a('vocab_size') ?? (tokens ? (tokens.length ?? tokens.values.length) : undefined),
      nCtxTrain: a('context_length'),
      ropeTheta: a('rope.freq_base'),
    },
    tensors: h.tensors.map((t) => ({ name: t.name, type: t.typeName, dims: t.dims, nElements: t.nElements, sizeBytes: t.sizeBytes })),
    tensorTypes,
    chatTemplate: str(h, 'tokenizer.chat_template'),
    specialTokens: {
      bos: num(h, 'tokenizer.ggml.bos_token_id'),
      eos: num(h, 'tokenizer.ggml.eos_token_id'),
      eot: num(h, 'tokenizer.ggml.eot_token_id'),
      pad: num(h, 'tokenizer.ggml.padding_token_id'),
      addBos: bool(h, 'tokenizer.ggml.add_bos_token'),
      addEos: bool(h, 'tokenizer.ggml.add_eos_token'),
    },
    metadata,
  };
}
