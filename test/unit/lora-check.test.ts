// The checks an adapter passes before llama.cpp reads it, on hand-made headers: the cases the
// tiny synthetic model (tied embeddings, F16) cannot show.
import { describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/errors.js';
import { checkLora } from '../../src/gguf/lora.js';
import type { GgufHeader, GgufTensorInfo } from '../../src/gguf/reader.js';
import { GGML_TYPES, GgufValueType, type GgufTypedValue } from '../../src/gguf/types.js';

function tensor(name: string, dims: number[], typeName = 'F32'): GgufTensorInfo {
  const t = GGML_TYPES[typeName] ?? { id: 40, blockSize: 64, typeSize: 36 };
  const nElements = dims.reduce((a, b) => a * b, 1);
  return { name, dims, type: t.id, typeName, offset: 0, nElements, sizeBytes: (nElements / t.blockSize) * t.typeSize };
}

function header(meta: Record<string, GgufTypedValue>, tensors: GgufTensorInfo[]): GgufHeader {
  return { version: 3, metadata: new Map(Object.entries(meta)), tensors, alignment: 32, dataOffset: 0 };
}

const str = (value: string): GgufTypedValue => ({ type: GgufValueType.STRING, value });
// an untied model: token_embd [64, 1000] and output [64, 1000]
const model = header({ 'general.architecture': str('llama') }, [
  tensor('token_embd.weight', [64, 1000], 'F16'),
  tensor('output.weight', [64, 1000], 'Q8_0'),
  tensor('blk.0.attn_q.weight', [64, 64], 'F16'),
  tensor('blk.0.ffn_up.weight', [64, 128], 'NVFP4'),
]);
const adapterMeta = { 'general.architecture': str('llama'), 'general.type': str('adapter'), 'adapter.type': str('lora'), 'adapter.lora.alpha': { type: GgufValueType.FLOAT32, value: 16 } };
const check = (tensors: GgufTensorInfo[], meta: Record<string, GgufTypedValue> = adapterMeta) => checkLora(header(meta, tensors), model, { adapter: 'a.gguf', model: 'm.gguf' });
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelLoadError);
    return { code: (err as ModelLoadError).code, message: (err as Error).message };
  }
  throw new Error('expected a refusal');
};

describe('checkLora', () => {
  it('accepts a token embedding adapter on an untied model, and norm vectors, and says what it holds', () => {
    const info = check([
      tensor('token_embd.weight.lora_a', [8, 1000]),
      tensor('token_embd.weight.lora_b', [8, 64]),
      tensor('blk.0.attn_q.weight.lora_a', [64, 4], 'F16'),
      tensor('blk.0.attn_q.weight.lora_b', [4, 64], 'BF16'),
      tensor('blk.0.attn_norm.weight', [64]),
    ]);
    expect(info).toEqual({
      path: 'a.gguf',
      alpha: 16,
      rank: 8,
      baseModel: { architecture: 'llama' },
      targets: ['blk.0.attn_q.weight', 'token_embd.weight'],
      tensorBytes: 4 * 8 * 1064 + 2 * 4 * 128,
    });
  });

  it('refuses embedding matrices of different ranks, which llama.cpp would multiply and abort on', () => {
    expect(refusal(() => check([tensor('token_embd.weight.lora_a', [8, 1000]), tensor('token_embd.weight.lora_b', [4, 64])]))).toEqual({
      code: 'ERR_LORA_MISMATCH',
      message: expect.stringContaining('token_embd.weight is [64, 1000], but its lora_a is [8, 1000] and lora_b [4, 64] (expected [rank, 1000] and [rank, 64])'),
    });
  });

  it('refuses an adapter on an NVFP4 weight, a matrix type it does not support, a tensor of another suffix', () => {
    expect(refusal(() => check([tensor('blk.0.ffn_up.weight.lora_a', [64, 4]), tensor('blk.0.ffn_up.weight.lora_b', [4, 128])]))).toMatchObject({
      code: 'ERR_LORA_MISMATCH',
      message: expect.stringContaining('it adapts blk.0.ffn_up.weight, an NVFP4 weight'),
    });
    expect(refusal(() => check([tensor('blk.0.attn_q.weight.lora_a', [64, 32], 'Q4_0'), tensor('blk.0.attn_q.weight.lora_b', [32, 64])]))).toMatchObject({
      code: 'ERR_LORA_INVALID',
      message: expect.stringContaining('tensor blk.0.attn_q.weight.lora_a has type Q4_0; LoRA matrices here are F32, F16, BF16 or Q8_0'),
    });
    expect(refusal(() => check([tensor('blk.0.attn_q.weight.delta', [64, 64])]))).toMatchObject({
      code: 'ERR_LORA_INVALID',
      message: 'a.gguf is not a LoRA adapter llama.cpp can use: tensor blk.0.attn_q.weight.delta is neither a .lora_a nor a .lora_b matrix',
    });
  });

  it('refuses metadata llama.cpp would abort on or refuse', () => {
    expect(refusal(() => check([], { ...adapterMeta, 'adapter.type': { type: GgufValueType.ARRAY, value: { type: GgufValueType.STRING, values: ['lora'] } } }))).toMatchObject({
      code: 'ERR_LORA_INVALID',
      message: expect.stringContaining('adapter.type has value type ARRAY, expected a string'),
    });
    expect(refusal(() => check([], { ...adapterMeta, 'general.type': str('model') }))).toMatchObject({ message: expect.stringContaining('general.type is "model", expected "adapter"') });
    const { 'general.architecture': _, ...noArch } = adapterMeta;
    expect(refusal(() => check([], noArch))).toMatchObject({
      code: 'ERR_LORA_MISMATCH',
      message: expect.stringContaining('the adapter is for the architecture (none: no general.architecture key), the model is "llama"'),
    });
    // an adapter without alpha scales by the scale alone; one that adapts nothing has no rank
    const { 'adapter.lora.alpha': __, ...noAlpha } = adapterMeta;
    expect(check([], noAlpha)).toMatchObject({ alpha: 0, rank: undefined, targets: [], tensorBytes: 0 });
  });
});
