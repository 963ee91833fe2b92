import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufFormatError } from '../../src/errors.js';
import { parseGguf, readGgufHeader } from '../../src/gguf/reader.js';
import { SHAPES, llama3RopeFactors, shapeParams } from '../../src/gguf/shapes.js';
import { GgufValueType, type GgufTypedValue } from '../../src/gguf/types.js';
import { writeGguf } from '../../src/gguf/writer.js';
import { toHalf } from '../../src/testing/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'hermes3-gguf-'));

async function small(): Promise<Buffer> {
  const meta = new Map<string, GgufTypedValue>([
    ['general.architecture', { type: GgufValueType.STRING, value: 'llama' }],
    ['test.u32', { type: GgufValueType.UINT32, value: 7 }],
    ['test.f32', { type: GgufValueType.FLOAT32, value: 0.5 }],
    ['test.bool', { type: GgufValueType.BOOL, value: true }],
    ['test.i64', { type: GgufValueType.INT64, value: -3n }],
    ['test.arr', { type: GgufValueType.ARRAY, value: { type: GgufValueType.STRING, values: ['a', 'bé', '🦙'] } }],
  ]);
  const path = join(dir, 'small.gguf');
  await writeGguf(path, meta, [
    { name: 'a', dims: [4, 2], type: 'F32', fill: (c) => c.fill(1) },
    { name: 'b', dims: [32], type: 'Q8_0', fill: (c) => c.fill(0) },
  ]);
  return readFileSync(path);
}

describe('GGUF reader and writer', () => {
  it('round-trips metadata and the tensor table', async () => {
    const h = parseGguf(await small());
    expect(h.version).toBe(3);
    expect(h.metadata.get('general.architecture')?.value).toBe('llama');
    expect(h.metadata.get('test.u32')?.value).toBe(7);
    expect(h.metadata.get('test.f32')?.value).toBe(0.5);
    expect(h.metadata.get('test.bool')?.value).toBe(true);
    expect(h.metadata.get('test.i64')?.value).toBe(-3);
    expect(h.metadata.get('test.arr')?.value).toEqual({ type: GgufValueType.STRING, values: ['a', 'bé', '🦙'] });
    expect(h.tensors.map((t) => [t.name, t.dims, t.typeName, t.offset, t.sizeBytes])).toEqual([
      ['a', [4, 2], 'F32', 0, 32],
      ['b', [32], 'Q8_0', 32, 34],
    ]);
    expect(h.dataOffset % 32).toBe(0);
  });

  it('turns every truncation into GgufFormatError naming the offset', async () => {
    const buf = await small();
    const h = parseGguf(buf);
    const last = h.tensors[h.tensors.length - 1];
    // every cut before the end of the last tensor's data (only alignment padding follows it)
    const end = h.dataOffset + last.offset + last.sizeBytes;
    for (let n = 0; n < end; n++) {
      let err: unknown;
      try {
        parseGguf(buf.subarray(0, n), 'cut.gguf');
      } catch (e) {
        err = e;
      }
      expect(err, `cut at ${n}`).toBeInstanceOf(GgufFormatError);
      expect((err as GgufFormatError).message).toMatch(/cut\.gguf: .* at byte \d+|truncated/);
    }
  });

  it('survives random corruption without crashing or hanging', async () => {
    const buf = await small();
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const copy = Buffer.from(buf);
      for (let k = 0; k < 4; k++) copy[Math.floor(rand() * copy.length)] = Math.floor(rand() * 256);
      try {
        parseGguf(copy);
      } catch (e) {
        expect(e).toBeInstanceOf(GgufFormatError);
      }
    }
  });

  it('rejects absurd counts instead of allocating them', () => {
    const b = Buffer.alloc(24);
    b.write('GGUF', 0);
    b.writeUInt32LE(3, 4);
    b.writeBigUInt64LE(0n, 8);
    b.writeBigUInt64LE(2n ** 40n, 16);
    expect(() => parseGguf(b)).toThrow(/metadata count is 1099511627776, more than the limit/);
  });

  it('reads only the header of a file', async () => {
    await small();
    const h = await readGgufHeader(join(dir, 'small.gguf'));
    expect(h.tensors).toHaveLength(2);
  });

  it('computes Llama 3.1 parameter counts from the shapes', () => {
    expect(shapeParams(SHAPES['8b'])).toBe(8_030_261_248);
    expect(shapeParams(SHAPES['70b'])).toBe(70_553_706_496);
    expect(shapeParams(SHAPES['405b'])).toBe(405_853_388_800);
  });

  it('computes llama3 rope factors', () => {
    const f = llama3RopeFactors(128, 500000);
    expect(f).toHaveLength(64);
    expect(f[0]).toBe(1);
    expect(f[63]).toBe(8);
    expect(Array.from(f).every((x, i) => i === 0 || x >= f[i - 1])).toBe(true);
  });

  it('converts floats to half precision', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(0.5)).toBe(0x3800);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(1e6)).toBe(0x7c00);
    expect(toHalf(0)).toBe(0);
    expect(toHalf(5.960464477539063e-8)).toBe(1);
  });
});
