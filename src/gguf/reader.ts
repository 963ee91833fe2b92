/**
 * GGUF header reader: metadata and tensor table, bounds-checked everywhere. A truncated or
 * corrupt file raises GgufFormatError naming the byte offset, never a crash or a hang.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { GgufFormatError, ModelFileError } from '../errors.js';
import {
  GGML_TYPE_NAMES,
  GGML_TYPES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgufValueType,
  type GgufScalar,
  type GgufTypedValue,
  type GgufArray,
  type GgufValue,
} from './types.js';

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  typeName: string;
  /** offset from the start of the data section */
  offset: number;
  nElements: number;
  sizeBytes: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufTypedValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** absolute file offset of the tensor data section */
  dataOffset: number;
}

// Sanity limits: far above any real model, low enough that a corrupt count cannot hang us.
const MAX_STRING = 64 * 1024 * 1024;
const MAX_ARRAY = 64 * 1024 * 1024;
const MAX_COUNT = 1 << 24;
const MAX_DIMS = 8;

class NeedMore extends Error {}

class Cursor {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly complete: boolean,
    private readonly path: string | undefined,
  ) {}

  fail(what: string): never {
    throw new GgufFormatError(`${this.path ?? 'GGUF data'}: ${what} at byte ${this.pos}`, { path: this.path, offset: this.pos });
  }

  need(n: number, what: string): void {
    if (this.pos + n <= this.buf.length) return;
    if (!this.complete) throw new NeedMore();
    this.fail(`file ends while reading ${what} (needs ${n} bytes, ${this.buf.length - this.pos} left; the file is truncated)`);
  }

  u8(what: string) { this.need(1, what); return this.buf.readUInt8(this.pos++); }
  i8(what: string) { this.need(1, what); return this.buf.readInt8(this.pos++); }
  u16(what: string) { this.need(2, what); const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  i16(what: string) { this.need(2, what); const v = this.buf.readInt16LE(this.pos); this.pos += 2; return v; }
  u32(what: string) { this.need(4, what); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(what: string) { this.need(4, what); const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  f32(what: string) { this.need(4, what); const v = this.buf.readFloatLE(this.pos); this.pos += 4; return v; }
  f64(what: string) { this.need(8, what); const v = this.buf.readDoubleLE(this.pos); this.pos += 8; return v; }
  i64(what: string) { this.need(8, what); const v = this.buf.readBigInt64LE(this.pos); this.pos += 8; return v; }
  u64(what: string): bigint { this.need(8, what); const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }

  /** a u64 that must be a safe count no larger than `max` */
  count(what: string, max: number): number {
    const start = this.pos;
    const v = this.u64(what);
    if (v > BigInt(max)) {
      this.pos = start;
      this.fail(`${what} is ${v}, more than the limit of ${max} (corrupt file?)`);
    }
    return Number(v);
  }

  /** a copy of bytes [start, pos), kept after the read buffer is gone */
  copyFrom(start: number): Buffer {
    return Buffer.from(this.buf.subarray(start, this.pos));
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }

  /**
   * Skips one string (u64 length, then its bytes) of an array element: the fast path reads the
   * length without a BigInt and builds no message, since a vocabulary has hundreds of thousands.
   */
  skipString(what: () => string): void {
    if (this.pos + 8 <= this.buf.length) {
      const n = this.buf.readUInt32LE(this.pos + 4) * 0x100000000 + this.buf.readUInt32LE(this.pos);
      if (n <= MAX_STRING && this.pos + 8 + n <= this.buf.length) {
        this.pos += 8 + n;
        return;
      }
    }
    // the slow path says what is wrong: a length past the limit, or the end of the data
    this.skip(this.count(`length of ${what()}`, MAX_STRING), what());
  }

  str(what: string): string {
    const n = this.count(`length of ${what}`, MAX_STRING);
    this.need(n, what);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function readScalar(c: Cursor, type: GgufValueType, what: string): GgufScalar {
  switch (type) {
    case GgufValueType.UINT8: return c.u8(what);
    case GgufValueType.INT8: return c.i8(what);
    case GgufValueType.UINT16: return c.u16(what);
    case GgufValueType.INT16: return c.i16(what);
    case GgufValueType.UINT32: return c.u32(what);
    case GgufValueType.INT32: return c.i32(what);
    case GgufValueType.FLOAT32: return c.f32(what);
    case GgufValueType.BOOL: {
      const v = c.u8(what);
      if (v > 1) { c.pos--; c.fail(`${what} is a bool with value ${v}`); }
      return v === 1;
    }
    case GgufValueType.STRING: return c.str(what);
    case GgufValueType.UINT64: {
      const v = c.u64(what);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case GgufValueType.INT64: {
      const v = c.i64(what);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
    }
    case GgufValueType.FLOAT64: return c.f64(what);
    default:
      c.pos -= 4;
      return c.fail(`${what} has unknown value type ${type}`);
  }
}

// The parser is a generator that pauses every few thousand array elements (a Llama 3 header has
// 400k strings): the async reader hands the event loop back at those points, parseGguf does not.
type Steps<T> = Generator<void, T, void>;

const SCALAR_SIZES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};
// Arrays this long (a vocabulary's tokens, merges, scores) are checked while parsing but decoded
// only when their values are read: loading a model needs their length alone, and 400k strings
// would cost the event loop their allocation and garbage collection.
const LAZY_ARRAY = 1024;

/** An array value decoded from its bytes on first use. */
class LazyArray implements GgufArray {
  private decoded: GgufScalar[] | undefined;
  constructor(
    readonly type: GgufValueType,
    readonly length: number,
    private raw: Buffer | undefined,
    private readonly key: string,
  ) {}

  get values(): GgufScalar[] {
    if (!this.decoded) {
      const c = new Cursor(this.raw!, true, undefined);
      const values: GgufScalar[] = new Array(this.length);
      for (let i = 0; i < this.length; i++) values[i] = readScalar(c, this.type, `element ${i} of ${this.key}`);
      this.decoded = values;
      this.raw = undefined;
    }
    return this.decoded;
  }

  set values(values: GgufScalar[]) {
    this.decoded = values;
    this.raw = undefined;
  }
}

function* skipArray(c: Cursor, type: GgufValueType, n: number, key: string): Steps<void> {
  const size = SCALAR_SIZES[type];
  if (type === GgufValueType.STRING) {
    for (let i = 0; i < n; i++) {
      c.skipString(() => `element ${i} of ${key}`);
      if ((i & 4095) === 4095) yield;
    }
  } else if (type === GgufValueType.BOOL) {
    for (let i = 0; i < n; i++) readScalar(c, type, `element ${i} of ${key}`);
  } else if (size !== undefined) {
    c.skip(size * n, `${n} elements of ${key}`);
  } else {
    readScalar(c, type, `element 0 of ${key}`); // reports the unknown type
  }
}

function* readValue(c: Cursor, type: GgufValueType, key: string): Steps<GgufValue> {
  if (type !== GgufValueType.ARRAY) return readScalar(c, type, `value of ${key}`);
  const elemType = c.u32(`array type of ${key}`) as GgufValueType;
  if (elemType === GgufValueType.ARRAY) { c.pos -= 4; c.fail(`${key} is a nested array, which GGUF readers here do not support`); }
  // checked here, not at the first element: an empty array of an unknown type is refused too (as llama.cpp does)
  if (elemType !== GgufValueType.STRING && SCALAR_SIZES[elemType] === undefined) { c.pos -= 4; c.fail(`${key} is an array of unknown value type ${elemType}`); }
  const n = c.count(`array length of ${key}`, MAX_ARRAY);
  if (n >= LAZY_ARRAY) {
    const start = c.pos;
    yield* skipArray(c, elemType, n, key);
    return new LazyArray(elemType, n, c.copyFrom(start), key);
  }
  const values: GgufScalar[] = new Array(n);
  for (let i = 0; i < n; i++) {
    values[i] = readScalar(c, elemType, `element ${i} of ${key}`);
    if ((i & 4095) === 4095) yield;
  }
  return { type: elemType, values };
}

function runSync<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs the parser, giving the event loop a turn whenever it has held it for a few ms. */
async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let since = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - since > 1) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }
}

function* parse(buf: Buffer, complete: boolean, path: string | undefined, fileSize: number, checkSize = true): Steps<GgufHeader> {
  const c = new Cursor(buf, complete, path);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    c.pos = 0;
    c.fail(`not a GGUF file (magic is 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`);
  }
  const version = c.u32('version');
  if (version < 2 || version > 3) { c.pos -= 4; c.fail(`unsupported GGUF version ${version} (supported: 2, 3)`); }
  const nTensors = c.count('tensor count', MAX_COUNT);
  const nKv = c.count('metadata count', MAX_COUNT);
  const metadata = new Map<string, GgufTypedValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str(`metadata key ${i}`);
    const type = c.u32(`type of ${key}`) as GgufValueType;
    metadata.set(key, { type, value: yield* readValue(c, type, key) });
  }
  // general.alignment must be a power of two in a u32, as llama.cpp requires (it refuses other files)
  const alignEntry = metadata.get('general.alignment');
  if (alignEntry && (alignEntry.type !== GgufValueType.UINT32 || alignEntry.value === 0 || ((alignEntry.value as number) & ((alignEntry.value as number) - 1)) !== 0)) {
    c.fail(`general.alignment is ${alignEntry.type === GgufValueType.UINT32 ? `${alignEntry.value}, not a power of two` : `of value type ${alignEntry.type}, not UINT32 (4)`}`);
  }
  const alignment = alignEntry ? (alignEntry.value as number) : GGUF_DEFAULT_ALIGNMENT;
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = c.str(`tensor ${i} name`);
    const nDims = c.u32(`dims of ${name}`);
    if (nDims < 1 || nDims > MAX_DIMS) { c.pos -= 4; c.fail(`tensor ${name} has ${nDims} dimensions`); }
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.count(`dimension ${d} of ${name}`, Number.MAX_SAFE_INTEGER));
    const type = c.u32(`type of ${name}`);
    const typeName = GGML_TYPE_NAMES[type] ?? `type${type}`;
    const offset = c.count(`offset of ${name}`, Number.MAX_SAFE_INTEGER);
    const nElements = dims.reduce((a, b) => a * b, 1);
    const t = Object.values(GGML_TYPES).find((x) => x.id === type);
    const sizeBytes = t ? (nElements / t.blockSize) * t.typeSize : NaN;
    tensors.push({ name, dims, type, typeName, offset, nElements, sizeBytes });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (checkSize && (complete || fileSize >= 0)) {
    for (const t of tensors) {
      if (Number.isFinite(t.sizeBytes) && dataOffset + t.offset + t.sizeBytes > fileSize) {
        throw new GgufFormatError(
          `${path ?? 'GGUF data'}: tensor ${t.name} needs bytes ${dataOffset + t.offset}..${dataOffset + t.offset + t.sizeBytes} but the file has ${fileSize} bytes (truncated)`,
          { path, offset: fileSize },
        );
      }
    }
  }
  return { version, metadata, tensors, alignment, dataOffset };
}

/** Parses a GGUF header held in memory (the whole file). */
export function parseGguf(buf: Buffer, path?: string): GgufHeader {
  return runSync(parse(buf, true, path, buf.length));
}

// Parsed headers by path, size and modification time: planning and fitting read the same header
// many times, and a Llama 3 header (128k token strings) takes a quarter of a second to parse.
const parsed = new Map<string, Promise<GgufHeader>>();
const MAX_CACHED = 8;

/**
 * Reads a GGUF file's header and tensor table, reading only as much of the file as needed.
 * The result is shared with later calls while the file is unchanged: treat it as read-only.
 */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  let key: string;
  try {
    const s = await stat(path);
    key = `${path}\0${s.size}\0${s.mtimeMs}`;
  } catch {
    return readHeader(path); // reports the missing or unreadable file
  }
  let header = parsed.get(key);
  if (!header) {
    header = readHeader(path);
    parsed.set(key, header);
    header.catch(() => parsed.delete(key));
    if (parsed.size > MAX_CACHED) parsed.delete(parsed.keys().next().value!);
  }
  return header;
}

/** Where a GGUF file's tensor data ends, by its header: the size the whole file must have at least. */
export function ggufDataEnd(header: Pick<GgufHeader, 'tensors' | 'dataOffset'>): number {
  return header.tensors.reduce((end, t) => Math.max(end, header.dataOffset + t.offset + (Number.isFinite(t.sizeBytes) ? t.sizeBytes : 0)), header.dataOffset);
}

/**
 * Reads a GGUF header and tensor table without checking the tensors against the file's size,
 * for saying how much of a truncated file is missing (readGgufHeader refuses such a file). A
 * file cut inside its header still raises GgufFormatError.
 */
export async function readGgufHeaderUnchecked(path: string): Promise<{ header: GgufHeader; fileBytes: number; dataEnd: number }> {
  const header = await readHeader(path, false);
  const { size } = await stat(path);
  return { header, fileBytes: size, dataEnd: ggufDataEnd(header) };
}

/** A directory was given where a GGUF file belongs: the error names the .gguf files inside it. */
async function directoryError(path: string): Promise<ModelFileError> {
  const ggufs = await readdir(path).then((names) => names.filter((n) => n.toLowerCase().endsWith('.gguf')).sort(), () => []);
  const inside = ggufs.length > 0 ? `; it holds ${ggufs.slice(0, 3).join(', ')}${ggufs.length > 3 ? ` and ${ggufs.length - 3} more` : ''}: pass one of them` : '; pass the path of the .gguf file itself';
  return new ModelFileError('ERR_NOT_A_FILE', `${path} is a directory, not a model file: expected a GGUF file${inside}`, { path });
}

async function readHeader(path: string, checkSize = true): Promise<GgufHeader> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new ModelFileError('ERR_FILE_NOT_FOUND', `model file not found: ${path} (check the path; it is resolved from ${process.cwd()})`, { path, cause: err });
    if (e.code === 'EISDIR') throw await directoryError(path);
    if (e.code === 'EACCES' || e.code === 'EPERM') {
      throw new ModelFileError('ERR_FILE_UNREADABLE', `cannot read the model file ${path}: permission denied (${e.code}); expected a GGUF file this user can read (check its mode and owner, e.g. chmod a+r)`, { path, cause: err });
    }
    throw new ModelFileError('ERR_FILE_READ', `cannot open the model file ${path}: ${e.message}`, { path, cause: err });
  }
  // on Linux a directory opens for reading; only reading it fails (EISDIR)
  const info = await fh.stat().catch(() => undefined);
  if (info?.isDirectory()) {
    await fh.close();
    throw await directoryError(path);
  }
  if (info && info.isFile() && info.size === 0) {
    await fh.close();
    throw new GgufFormatError(`${path} is empty (0 bytes): expected a GGUF model file; a download or copy of it may have failed, fetch it again`, { path, offset: 0 });
  }
  try {
    const { size } = await fh.stat();
    let want = Math.min(size, 16 * 1024 * 1024); // a Llama 3 header (tokens and merges) is about 9 MB
    for (;;) {
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, 0);
      const complete = bytesRead >= size;
      try {
        return await runAsync(parse(buf.subarray(0, bytesRead), complete, path, size, checkSize));
      } catch (err) {
        if (!(err instanceof NeedMore)) throw err;
        want = Math.min(size, want * 4);
      }
    }
  } finally {
    await fh.close();
  }
}
