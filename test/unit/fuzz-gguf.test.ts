// Property-based mutation fuzzing of the GGUF reader (the shared generators are in
// src/testing/gguf-fuzz.ts; scripts/fuzz.mjs runs the same properties for longer).
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufFormatError } from '../../src/errors.js';
import { inspectGguf } from '../../src/gguf/inspect.js';
import { parseGguf } from '../../src/gguf/reader.js';
import { applyMutations, checkGgufCase, ggufFuzzBase, ggufMutations } from '../../src/testing/gguf-fuzz.js';

const base = ggufFuzzBase();
const dir = mkdtempSync(join(tmpdir(), 'hermes3-fuzz-gguf-'));

describe('GGUF reader under mutation', () => {
  it('reads the unmutated base file', () => {
    const h = parseGguf(base.buf);
    expect(h.tensors.map((t) => t.typeName)).toEqual(['F32', 'Q8_0', 'Q4_K', 'F16']);
    expect(checkGgufCase(base.buf).outcome).toBe('accepted');
  });

  it('returns a header or throws GgufFormatError, within 200 ms a case', () => {
    const tally = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(ggufMutations(base), (mutations) => {
        tally[checkGgufCase(applyMutations(base, mutations)).outcome]++;
      }),
      { numRuns: 600 },
    );
    expect(tally.refused).toBeGreaterThan(0);
    expect(tally.accepted).toBeGreaterThan(0);
  });

  it('refuses an empty array of an unknown element type (llama.cpp does too)', () => {
    const field = base.fields.findIndex((f) => f.what === 'array type of t.i32s');
    const length = base.fields.findIndex((f) => f.what === 'array length of t.i32s');
    // 3 elements of 4 bytes become 0 elements of type 99, and the 12 bytes go
    const buf = applyMutations(base, [{ kind: 'field', field, value: 99n }, { kind: 'field', field: length, value: 0n }, { kind: 'delete', at: base.fields[length].offset + 8, n: 12 }]);
    expect(() => parseGguf(buf)).toThrow(/t\.i32s is an array of unknown value type 99 at byte \d+/);
    expect(() => parseGguf(buf)).toThrow(GgufFormatError);
  });

  it('refuses a general.alignment that is not a power of two in a u32 (llama.cpp does too)', () => {
    const value = base.fields.findIndex((f) => f.what === 'type of general.alignment');
    const at = base.fields[value].offset + 4; // the u32 value follows its type
    const odd = Buffer.from(base.buf);
    odd.writeUInt32LE(48, at);
    expect(() => parseGguf(odd)).toThrow(/general\.alignment is 48, not a power of two/);
    odd.writeUInt32LE(0, at);
    expect(() => parseGguf(odd)).toThrow(GgufFormatError);
    const float = applyMutations(base, [{ kind: 'field', field: value, value: 6n }]); // FLOAT32, same width
    expect(() => parseGguf(float)).toThrow(/general\.alignment is of value type 6, not UINT32/);
    const big = Buffer.from(base.buf);
    big.writeUInt32LE(2 ** 31, at);
    expect(() => parseGguf(big)).toThrow(/tensor .* needs bytes/); // a power of two: accepted, then the data is missing
  });

  it('reads mutated files from disk (readGgufHeader, inspectGguf) with the same outcome', async () => {
    let i = 0;
    await fc.assert(
      fc.asyncProperty(ggufMutations(base), async (mutations) => {
        const buf = applyMutations(base, mutations);
        const expected = checkGgufCase(buf).outcome;
        const path = join(dir, `m${i++}.gguf`);
        writeFileSync(path, buf);
        let outcome: string;
        try {
          await inspectGguf(path);
          outcome = 'accepted';
        } catch (err) {
          expect(err).toBeInstanceOf(GgufFormatError);
          outcome = 'refused';
        }
        expect(outcome).toBe(expected);
      }),
      { numRuns: 100 },
    );
  });
});
