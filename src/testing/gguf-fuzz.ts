/**
 * Mutation fuzzing of the GGUF reader, shared by test/unit/fuzz-gguf.test.ts and scripts/fuzz.mjs:
 * a small but varied GGUF (every value type, arrays long enough to be read lazily, tensors of
 * several types), a map of where its fields lie, and fast-check arbitraries that flip and replace
 * bytes, cut, insert and delete, and write absurd values into the counts, lengths, types, dims,
 * version and magic. The property: parseGguf returns a header (whose lazy arrays then decode) or
 * throws GgufFormatError, and does either quickly.
 *
 * Imports fast-check (a devDependency): for tests and scripts only, not re-exported by the package.
 */
import fc from 'fast-check';
import { GgufFormatError } from '../errors.js';
import { parseGguf, type GgufHeader } from '../gguf/reader.js';
import { GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, type GgufArray, type GgufScalar, type GgufTypedValue } from '../gguf/types.js';

/** Where a field of the base file lies, and how wide it is. */
export interface GgufField {
  offset: number;
  bytes: 4 | 8;
  what: string;
}

export interface GgufFuzzBase {
  buf: Buffer;
  fields: GgufField[];
  /** end of the header and tensor table (the data section follows, aligned) */
  headerEnd: number;
}

/** Builds the base file in memory, recording the offset of every count, length, type and dim. */
export function ggufFuzzBase(): GgufFuzzBase {
  const parts: Buffer[] = [];
  const fields: GgufField[] = [];
  let length = 0;
  const push = (b: Buffer) => { parts.push(b); length += b.length; };
  const u32 = (v: number, what?: string) => { if (what) fields.push({ offset: length, bytes: 4, what }); const b = Buffer.alloc(4); b.writeUInt32LE(v); push(b); };
  const u64 = (v: number | bigint, what?: string) => { if (what) fields.push({ offset: length, bytes: 8, what }); const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); push(b); };
  const str = (s: string, what: string) => { const b = Buffer.from(s, 'utf8'); u64(b.length, `length of ${what}`); push(b); };
  const scalar = (type: GgufValueType, v: GgufScalar, what: string) => {
    const b = Buffer.alloc(8);
    switch (type) {
      case GgufValueType.UINT8: case GgufValueType.BOOL: b.writeUInt8(Number(v)); return push(b.subarray(0, 1));
      case GgufValueType.INT8: b.writeInt8(Number(v)); return push(b.subarray(0, 1));
      case GgufValueType.UINT16: b.writeUInt16LE(Number(v)); return push(b.subarray(0, 2));
      case GgufValueType.INT16: b.writeInt16LE(Number(v)); return push(b.subarray(0, 2));
      case GgufValueType.UINT32: b.writeUInt32LE(Number(v)); return push(b.subarray(0, 4));
      case GgufValueType.INT32: b.writeInt32LE(Number(v)); return push(b.subarray(0, 4));
      case GgufValueType.FLOAT32: b.writeFloatLE(Number(v)); return push(b.subarray(0, 4));
      case GgufValueType.UINT64: b.writeBigUInt64LE(BigInt(v)); return push(b);
      case GgufValueType.INT64: b.writeBigInt64LE(BigInt(v)); return push(b);
      case GgufValueType.FLOAT64: b.writeDoubleLE(Number(v)); return push(b);
      case GgufValueType.STRING: return str(String(v), what);
    }
  };
  const meta: Array<[string, GgufTypedValue]> = [
    ['general.architecture', { type: GgufValueType.STRING, value: 'llama' }],
    ['general.alignment', { type: GgufValueType.UINT32, value: GGUF_DEFAULT_ALIGNMENT }],
    ['t.u8', { type: GgufValueType.UINT8, value: 200 }],
    ['t.i8', { type: GgufValueType.INT8, value: -5 }],
    ['t.u16', { type: GgufValueType.UINT16, value: 60000 }],
    ['t.i16', { type: GgufValueType.INT16, value: -300 }],
    ['t.u32', { type: GgufValueType.UINT32, value: 7 }],
    ['t.i32', { type: GgufValueType.INT32, value: -7 }],
    ['t.f32', { type: GgufValueType.FLOAT32, value: 0.5 }],
    ['t.bool', { type: GgufValueType.BOOL, value: 1 }],
    ['t.u64', { type: GgufValueType.UINT64, value: 2n ** 60n }],
    ['t.i64', { type: GgufValueType.INT64, value: -3n }],
    ['t.f64', { type: GgufValueType.FLOAT64, value: 1e300 }],
    ['t.strs', { type: GgufValueType.ARRAY, value: { type: GgufValueType.STRING, values: ['a', 'bé', '🦙'] } }],
    ['t.i32s', { type: GgufValueType.ARRAY, value: { type: GgufValueType.INT32, values: [1, -2, 3] } }],
    // at least 1024 elements: checked while parsing, decoded on first use
    ['tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, value: { type: GgufValueType.STRING, values: Array.from({ length: 1100 }, (_, i) => `tok${i}`) } }],
    ['tokenizer.ggml.scores', { type: GgufValueType.ARRAY, value: { type: GgufValueType.FLOAT32, values: Array.from({ length: 1100 }, (_, i) => -i) } }],
    ['t.bools', { type: GgufValueType.ARRAY, value: { type: GgufValueType.BOOL, values: Array.from({ length: 1030 }, (_, i) => i & 1) } }],
  ];
  u32(GGUF_MAGIC, 'magic');
  u32(3, 'version');
  const tensors: Array<{ name: string; dims: number[]; type: keyof typeof GGML_TYPES }> = [
    { name: 'a', dims: [4, 2], type: 'F32' },
    { name: 'b', dims: [32], type: 'Q8_0' },
    { name: 'c', dims: [256, 1], type: 'Q4_K' },
    { name: 'd', dims: [2, 2, 2, 2], type: 'F16' },
  ];
  u64(tensors.length, 'tensor count');
  u64(meta.length, 'metadata count');
  for (const [key, tv] of meta) {
    str(key, `key ${key}`);
    u32(tv.type, `type of ${key}`);
    if (tv.type === GgufValueType.ARRAY) {
      const arr = tv.value as GgufArray;
      u32(arr.type, `array type of ${key}`);
      u64(arr.values.length, `array length of ${key}`);
      arr.values.forEach((v, i) => scalar(arr.type, v, `element ${i} of ${key}`));
    } else scalar(tv.type, tv.value as GgufScalar, `value of ${key}`);
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    const spec = GGML_TYPES[t.type];
    const size = (t.dims.reduce((a, b) => a * b, 1) / spec.blockSize) * spec.typeSize;
    sizes.push(size);
    str(t.name, `name of tensor ${t.name}`);
    u32(t.dims.length, `dims of ${t.name}`);
    t.dims.forEach((d, i) => u64(d, `dimension ${i} of ${t.name}`));
    u32(spec.id, `type of tensor ${t.name}`);
    u64(offset, `offset of ${t.name}`);
    offset += Math.ceil(size / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
  }
  const headerEnd = length;
  push(Buffer.alloc(Math.ceil(length / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT - length));
  push(Buffer.alloc(offset, 0x11));
  return { buf: Buffer.concat(parts, length), fields, headerEnd };
}

export type GgufMutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'field'; field: number; value: bigint };

// absurd and boundary values for counts, lengths, types and dims
const U64_VALUES = [0n, 1n, 2n, 3n, 8n, 13n, 255n, 1023n, 1024n, 2n ** 24n, 2n ** 24n + 1n, 2n ** 26n, 2n ** 26n + 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];
const U32_VALUES = [0n, 1n, 2n, 3n, 4n, 8n, 9n, 12n, 13n, 14n, 31n, 39n, 100n, 2n ** 16n, 2n ** 31n, 2n ** 32n - 1n, BigInt(GGUF_MAGIC), 0x47475546n];

/** One mutation of `base`; positions favour the header and tensor table. */
export function ggufMutation(base: GgufFuzzBase): fc.Arbitrary<GgufMutation> {
  const n = base.buf.length;
  const pos = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: base.headerEnd - 1 }) }, { weight: 1, arbitrary: fc.nat({ max: n - 1 }) });
  const fieldIndex = fc.nat({ max: base.fields.length - 1 });
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: pos, bit: fc.nat({ max: 7 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: pos, value: fc.nat({ max: 255 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat({ max: n }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: pos, bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 16 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: pos, n: fc.integer({ min: 1, max: 16 }) }) },
    {
      weight: 4,
      arbitrary: fieldIndex.chain((field) =>
        fc.record({
          kind: fc.constant('field' as const),
          field: fc.constant(field),
          value: base.fields[field].bytes === 8
            ? fc.oneof(fc.constantFrom(...U64_VALUES), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
            : fc.oneof(fc.constantFrom(...U32_VALUES), fc.bigInt({ min: 0n, max: 2n ** 32n - 1n })),
        }),
      ),
    },
  );
}

/** 1 to 4 mutations of `base`. */
export function ggufMutations(base: GgufFuzzBase): fc.Arbitrary<GgufMutation[]> {
  return fc.array(ggufMutation(base), { minLength: 1, maxLength: 4 });
}

/** Applies mutations in order to a copy of the base file. */
export function applyMutations(base: GgufFuzzBase, mutations: GgufMutation[]): Buffer {
  let buf = Buffer.from(base.buf);
  for (const m of mutations) {
    const at = 'at' in m ? Math.min(m.at, buf.length) : 0;
    switch (m.kind) {
      case 'flip': if (at < buf.length) buf[at] ^= 1 << m.bit; break;
      case 'byte': if (at < buf.length) buf[at] = m.value; break;
      case 'cut': buf = buf.subarray(0, at); break;
      case 'insert': buf = Buffer.concat([buf.subarray(0, at), Buffer.from(m.bytes), buf.subarray(at)]); break;
      case 'delete': buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.n)]); break;
      case 'field': {
        const f = base.fields[m.field];
        if (f.offset + f.bytes > buf.length) break;
        if (f.bytes === 8) buf.writeBigUInt64LE(m.value, f.offset);
        else buf.writeUInt32LE(Number(m.value & 0xffffffffn), f.offset);
        break;
      }
    }
  }
  return buf;
}

export interface GgufCaseResult {
  outcome: 'accepted' | 'refused';
  ms: number;
  /** the refusal's message */
  message?: string;
}

/** Reads everything an accepted header holds, lazy arrays included. */
function touch(h: GgufHeader): void {
  for (const { value } of h.metadata.values()) {
    if (typeof value === 'object' && value !== null && 'values' in value) void value.values.length;
  }
}

/**
 * Parses one mutant: returns whether it was accepted or refused with GgufFormatError and how
 * long that took; any other error, or a parse slower than `limitMs`, is thrown.
 */
export function checkGgufCase(buf: Buffer, limitMs = 200): GgufCaseResult {
  const t0 = performance.now();
  let result: GgufCaseResult;
  try {
    touch(parseGguf(buf, 'fuzz.gguf'));
    result = { outcome: 'accepted', ms: 0 };
  } catch (err) {
    if (!(err instanceof GgufFormatError)) {
      throw new Error(`parseGguf threw ${(err as Error)?.constructor?.name ?? typeof err}, not GgufFormatError: ${(err as Error)?.message ?? err}`, { cause: err });
    }
    result = { outcome: 'refused', ms: 0, message: err.message };
  }
  result.ms = performance.now() - t0;
  if (result.ms > limitMs) throw new Error(`parseGguf took ${result.ms.toFixed(1)} ms (limit ${limitMs} ms)`);
  return result;
}

/** A mutation list as short readable text, for reports. */
export function describeMutations(base: GgufFuzzBase, mutations: GgufMutation[]): string {
  return mutations
    .map((m) => (m.kind === 'field' ? `${base.fields[m.field].what}=${m.value}` : m.kind === 'insert' ? `insert@${m.at}[${m.bytes.length}]` : `${m.kind}@${JSON.stringify({ ...m, kind: undefined })}`))
    .join(', ');
}
