/**
 * Streaming GGUF v3 writer: metadata and tensor table first, then each tensor's data produced
 * by a callback in chunks, so multi-gigabyte files never sit in memory.
 */
import { open } from 'node:fs/promises';
import { GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, type GgufScalar, type GgufTypedValue } from './types.js';

export interface TensorSpec {
  name: string;
  /** ggml order: dims[0] is the row length */
  dims: number[];
  type: keyof typeof GGML_TYPES;
  /** fills the tensor's bytes: called with consecutive chunks until the tensor is complete */
  fill: (chunk: Buffer, byteOffset: number) => void;
}

class ByteBuilder {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer) { this.parts.push(b); this.length += b.length; }
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v: number | bigint) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  scalar(type: GgufValueType, v: GgufScalar) {
    const b = Buffer.alloc(8);
    switch (type) {
      case GgufValueType.UINT8: b.writeUInt8(Number(v)); this.push(b.subarray(0, 1)); return;
      case GgufValueType.INT8: b.writeInt8(Number(v)); this.push(b.subarray(0, 1)); return;
      case GgufValueType.UINT16: b.writeUInt16LE(Number(v)); this.push(b.subarray(0, 2)); return;
      case GgufValueType.INT16: b.writeInt16LE(Number(v)); this.push(b.subarray(0, 2)); return;
      case GgufValueType.UINT32: b.writeUInt32LE(Number(v)); this.push(b.subarray(0, 4)); return;
      case GgufValueType.INT32: b.writeInt32LE(Number(v)); this.push(b.subarray(0, 4)); return;
      case GgufValueType.FLOAT32: b.writeFloatLE(Number(v)); this.push(b.subarray(0, 4)); return;
      case GgufValueType.BOOL: b.writeUInt8(v ? 1 : 0); this.push(b.subarray(0, 1)); return;
      case GgufValueType.STRING: this.str(String(v)); return;
      case GgufValueType.UINT64: b.writeBigUInt64LE(BigInt(v)); this.push(b); return;
      case GgufValueType.INT64: b.writeBigInt64LE(BigInt(v)); this.push(b); return;
      case GgufValueType.FLOAT64: b.writeDoubleLE(Number(v)); this.push(b); return;
      default: throw new Error(`cannot write GGUF value type ${type}`);
    }
  }
  value(tv: GgufTypedValue) {
    this.u32(tv.type);
    if (tv.type === GgufValueType.ARRAY) {
      const arr = tv.value as { type: GgufValueType; values: GgufScalar[] };
      this.u32(arr.type);
      this.u64(arr.values.length);
      for (const v of arr.values) this.scalar(arr.type, v);
    } else {
      this.scalar(tv.type, tv.value as GgufScalar);
    }
  }
  concat() { return Buffer.concat(this.parts, this.length); }
}

export function tensorBytes(dims: number[], type: keyof typeof GGML_TYPES): number {
  const t = GGML_TYPES[type];
  const n = dims.reduce((a, b) => a * b, 1);
  if (dims[0] % t.blockSize !== 0) throw new Error(`row length ${dims[0]} is not a multiple of ${type}'s block size ${t.blockSize}`);
  return (n / t.blockSize) * t.typeSize;
}

const pad = (n: number, a: number) => (a - (n % a)) % a;

/** Writes a GGUF file. Metadata entries are written in insertion order. */
export async function writeGguf(path: string, metadata: Map<string, GgufTypedValue>, tensors: TensorSpec[]): Promise<number> {
  const alignment = GGUF_DEFAULT_ALIGNMENT;
  const head = new ByteBuilder();
  head.u32(GGUF_MAGIC);
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.size);
  for (const [key, tv] of metadata) {
    head.str(key);
    head.value(tv);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    const size = tensorBytes(t.dims, t.type);
    sizes.push(size);
    head.str(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(GGML_TYPES[t.type].id);
    head.u64(offset);
    offset += size + pad(size, alignment);
  }
  const header = head.concat();
  const fh = await open(path, 'w');
  try {
    let pos = 0;
    const write = async (b: Buffer) => {
      await fh.write(b, 0, b.length, pos);
      pos += b.length;
    };
    await write(header);
    await write(Buffer.alloc(pad(header.length, alignment)));
    const CHUNK = 4 * 1024 * 1024;
    const chunk = Buffer.alloc(CHUNK);
    for (let i = 0; i < tensors.length; i++) {
      const size = sizes[i];
      for (let done = 0; done < size; done += CHUNK) {
        const n = Math.min(CHUNK, size - done);
        const view = chunk.subarray(0, n);
        tensors[i].fill(view, done);
        await write(view);
      }
      await write(Buffer.alloc(pad(size, alignment)));
    }
    return pos;
  } finally {
    await fh.close();
  }
}
