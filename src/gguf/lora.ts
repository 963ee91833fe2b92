/**
 * LoRA adapter files (llama.cpp's format: general.type "adapter", adapter.type "lora",
 * adapter.lora.alpha, and for each adapted weight W of the base model a pair `W.lora_a`
 * [n_in, rank] and `W.lora_b` [rank, n_out]) checked against the base model's header before
 * llama.cpp reads them. llama.cpp refuses some bad adapters with an error, but aborts the process
 * on others (general.type or adapter.lora.alpha of another value type, an adapter on a tied token
 * embedding or with embedding matrices of different ranks, matrices that cannot be multiplied at
 * decode time): every such case is refused here, with a message that names the mismatch.
 */
import { GgufFormatError, ModelFileError, ModelLoadError } from '../errors.js';
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from './reader.js';
import { GGML_TYPES, GgufValueType } from './types.js';

/** What an adapter file says about itself and the model it was made for. */
export interface LoraFileInfo {
  path: string;
  /** adapter.lora.alpha; the update is scaled by scale * alpha / rank (0 or absent: by scale alone) */
  alpha: number;
  /** the rank of its matrices (undefined: it adapts no tensor) */
  rank?: number;
  /** the base model: its architecture and, when the file names it, its name */
  baseModel: { architecture: string; name?: string };
  /** the base model's tensors it adapts */
  targets: string[];
  /** bytes of its tensors: what loading it adds to memory */
  tensorBytes: number;
}

// ggml types a LoRA matrix can have on every backend (llama.cpp's converter writes F32, F16, BF16, Q8_0)
const MATRIX_TYPES = new Set(['F32', 'F16', 'BF16', 'Q8_0'].map((t) => GGML_TYPES[t].id));
// llama.cpp asserts on a LoRA over NVFP4 weights that carry a scale tensor (llm_graph_context::build_ffn)
const NVFP4 = 40;

/** Reads an adapter file's header: a missing file is a ModelFileError, a corrupt one a GgufFormatError. */
export async function readLoraHeader(path: string): Promise<GgufHeader> {
  try {
    return await readGgufHeader(path);
  } catch (err) {
    if (err instanceof ModelFileError) {
      throw new ModelFileError(err.code as ConstructorParameters<typeof ModelFileError>[0], err.message.replace(/\bmodel file\b/g, 'LoRA adapter file'), { path, cause: err });
    }
    if (err instanceof GgufFormatError && /is empty \(0 bytes\)/.test(err.message)) {
      throw new GgufFormatError(`${path} is empty (0 bytes): expected a LoRA adapter GGUF file; a download or copy of it may have failed, fetch it again`, { path, offset: 0 });
    }
    throw err;
  }
}

const dims2 = (t: GgufTensorInfo): [number, number] => [t.dims[0], t.dims[1] ?? 1];
const shape = (t: GgufTensorInfo) => `[${t.dims.join(', ')}]`;

/**
 * Checks an adapter against a model (both headers) and says what it holds. Throws ModelLoadError
 * with code ERR_LORA_INVALID (not a usable LoRA adapter) or ERR_LORA_MISMATCH (made for another
 * base model).
 */
export function checkLora(adapter: GgufHeader, model: GgufHeader, paths: { adapter: string; model: string }): LoraFileInfo {
  const at = paths.adapter;
  const invalid = (why: string) => new ModelLoadError(`${at} is not a LoRA adapter llama.cpp can use: ${why}`, { code: 'ERR_LORA_INVALID' });
  const mismatch = (why: string) =>
    new ModelLoadError(`the LoRA adapter ${at} was not made for the model ${paths.model}: ${why}. Use an adapter trained on this base model, or load the model it was made for`, {
      code: 'ERR_LORA_MISMATCH',
    });
  // llama.cpp reads these with accessors that abort on another value type
  const str = (key: string): string | undefined => {
    const e = adapter.metadata.get(key);
    if (!e) return undefined;
    if (e.type !== GgufValueType.STRING) throw invalid(`${key} has value type ${GgufValueType[e.type] ?? e.type}, expected a string`);
    return e.value as string;
  };
  const type = str('general.type');
  if (type !== 'adapter') {
    throw invalid(type === undefined ? 'it has no general.type key (a LoRA adapter has general.type "adapter"; is this a model file?)' : `general.type is "${type}", expected "adapter"`);
  }
  const adapterType = str('adapter.type');
  if (adapterType !== 'lora') throw invalid(`adapter.type is ${adapterType === undefined ? 'missing' : `"${adapterType}"`}, expected "lora" (control vectors and other adapters are not LoRA adapters)`);
  const alphaEntry = adapter.metadata.get('adapter.lora.alpha');
  if (alphaEntry && alphaEntry.type !== GgufValueType.FLOAT32) throw invalid(`adapter.lora.alpha has value type ${GgufValueType[alphaEntry.type] ?? alphaEntry.type}, expected FLOAT32`);
  const alpha = alphaEntry ? (alphaEntry.value as number) : 0;
  if (!Number.isFinite(alpha)) throw invalid(`adapter.lora.alpha is ${alpha}, expected a finite number`);

  const architecture = str('general.architecture');
  const modelArch = model.metadata.get('general.architecture')?.value;
  if (architecture !== modelArch) {
    throw mismatch(`the adapter is for the architecture ${architecture === undefined ? '(none: no general.architecture key)' : `"${architecture}"`}, the model is "${String(modelArch)}"`);
  }
  const nameEntry = adapter.metadata.get('general.base_model.0.name');
  const baseName = nameEntry?.type === GgufValueType.STRING ? (nameEntry.value as string) : undefined;

  // pair the matrices by the weight they adapt, as llama.cpp does
  const pairs = new Map<string, { a?: GgufTensorInfo; b?: GgufTensorInfo }>();
  let tensorBytes = 0;
  for (const t of adapter.tensors) {
    const m = /^(.*)\.lora_([ab])$/.exec(t.name);
    if (!m) {
      if (t.name.endsWith('_norm.weight')) continue; // llama.cpp skips norm vectors
      throw invalid(`tensor ${t.name} is neither a .lora_a nor a .lora_b matrix`);
    }
    if (!MATRIX_TYPES.has(t.type)) throw invalid(`tensor ${t.name} has type ${t.typeName}; LoRA matrices here are F32, F16, BF16 or Q8_0`);
    if (t.dims.slice(2).some((d) => d !== 1)) throw invalid(`tensor ${t.name} has shape ${shape(t)}; LoRA matrices are two-dimensional`);
    tensorBytes += t.sizeBytes;
    const pair = pairs.get(m[1]) ?? {};
    pair[m[2] as 'a' | 'b'] = t;
    pairs.set(m[1], pair);
  }
  const weights = new Map(model.tensors.map((t) => [t.name, t]));
  const tied = !weights.has('output.weight');
  let rank: number | undefined;
  for (const [name, { a, b }] of pairs) {
    if (!a || !b) throw invalid(`tensor ${name}.lora_${a ? 'b' : 'a'} is missing (each adapted weight needs both .lora_a and .lora_b)`);
    const w = weights.get(name);
    if (!w) throw mismatch(`it adapts the tensor ${name}, which the model does not have`);
    if (w.type === NVFP4) throw mismatch(`it adapts ${name}, an NVFP4 weight, which llama.cpp cannot combine with a LoRA adapter`);
    const [wIn, wOut] = dims2(w);
    const [aIn, aRank] = dims2(a);
    const [bRank, bOut] = dims2(b);
    if (name === 'token_embd.weight') {
      // the embedding's update is looked up row by row: A is [rank, n_vocab], B is [rank, n_embd]
      if (tied) throw mismatch(`it adapts token_embd.weight, which this model also uses as its output matrix (tied embeddings); llama.cpp cannot apply an embedding adapter there`);
      if (aRank !== wOut || bOut !== wIn || aIn !== bRank) {
        throw mismatch(`token_embd.weight is ${shape(w)}, but its lora_a is ${shape(a)} and lora_b ${shape(b)} (expected [rank, ${wOut}] and [rank, ${wIn}])`);
      }
    } else {
      if (aIn !== wIn || bOut !== wOut) {
        throw mismatch(`${name} is ${shape(w)}, but its lora_a is ${shape(a)} and lora_b ${shape(b)} (expected [${wIn}, rank] and [rank, ${wOut}])`);
      }
      if (aRank !== bRank) throw invalid(`${name}.lora_a is ${shape(a)} and ${name}.lora_b ${shape(b)}: their ranks differ (${aRank} and ${bRank})`);
    }
    // ranks may differ between weights: the largest is reported
    rank = Math.max(rank ?? 0, name === 'token_embd.weight' ? aIn : aRank);
  }
  return { path: at, alpha, rank, baseModel: { architecture: architecture!, ...(baseName ? { name: baseName } : {}) }, targets: [...pairs.keys()].sort(), tensorBytes };
}

/** Reads an adapter file and checks it against the model file. */
export async function inspectLora(adapterPath: string, modelPath: string): Promise<LoraFileInfo> {
  const [adapter, model] = await Promise.all([readLoraHeader(adapterPath), readGgufHeader(modelPath)]);
  return checkLora(adapter, model, { adapter: adapterPath, model: modelPath });
}
