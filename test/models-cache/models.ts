/** Model files for the pull tests: a tiny synthetic model, and the same model split in two GGUFs as gguf-split writes them. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseGguf } from '../../src/gguf/reader.js';
import { GgufValueType, type GgufTypedValue } from '../../src/gguf/types.js';
import { writeGguf, type TensorSpec } from '../../src/gguf/writer.js';
import { writeSyntheticModel } from '../../src/testing/index.js';

export async function tinyModel(path: string): Promise<Buffer> {
  await writeSyntheticModel({ path, shape: 'tiny', seed: 11 });
  return readFileSync(path);
}

/**
 * Splits a GGUF into `count` files that llama.cpp loads from the first: each holds split.no,
 * split.count and split.tensors.count, the first also the model's metadata, and the tensors are
 * shared out in order.
 */
export async function splitGguf(source: string, outPrefix: string, count: number): Promise<string[]> {
  const buf = readFileSync(source);
  const header = parseGguf(buf, source);
  const u16 = (value: number): GgufTypedValue => ({ type: GgufValueType.UINT16, value });
  const i32 = (value: number): GgufTypedValue => ({ type: GgufValueType.INT32, value });
  const per = Math.ceil(header.tensors.length / count);
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const meta = new Map<string, GgufTypedValue>(i === 0 ? header.metadata : []);
    meta.set('split.no', u16(i));
    meta.set('split.count', u16(count));
    meta.set('split.tensors.count', i32(header.tensors.length));
    const tensors: TensorSpec[] = header.tensors.slice(i * per, (i + 1) * per).map((t) => ({
      name: t.name,
      dims: t.dims,
      type: t.typeName as TensorSpec['type'],
      fill: (chunk, offset) => buf.copy(chunk, 0, header.dataOffset + t.offset + offset, header.dataOffset + t.offset + offset + chunk.length),
    }));
    const path = `${outPrefix}-${String(i + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`;
    await writeGguf(path, meta, tensors);
    paths.push(path);
  }
  return paths;
}

/** Bytes that are not a model: the download code does not look inside. */
export const someBytes = (size: number): Buffer => randomBytes(size);
