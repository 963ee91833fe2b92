/**
 * Bad inputs that fail before any model is loaded: model files that cannot be read, foreign and
 * corrupt GGUF headers, arguments of the wrong type, and the message when no addon loads. Each
 * case is a row of docs/bad-inputs.md; the last test checks that every row cites a real test.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { GgufFormatError, ModelFileError, ModelLoadError, OptionsError, loadModel, parseToolCalls, ToolCallStream } from '../../src/index.js';
import { parseGguf, readGgufHeader } from '../../src/gguf/reader.js';
import { addonLoadHint } from '../../src/native/index.js';
import { root } from '../fixtures.js';
import { ModelNotFoundError } from '../../src/errors.js';
import { resolveModelPath } from '../../src/models/pull.js';
import { exitCodeFor } from '../../src/cli/exit.js';

// EACCES cannot be made with chmod when the tests run as root: such paths fail to open as a
// non-root user's unreadable file does
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    open: (path: Parameters<typeof actual.open>[0], ...rest: unknown[]) => {
      if (String(path).endsWith('root-only.gguf')) {
        return Promise.reject(Object.assign(new Error(`EACCES: permission denied, open '${String(path)}'`), { code: 'EACCES', errno: -13 }));
      }
      return (actual.open as (...a: unknown[]) => ReturnType<typeof actual.open>)(path, ...rest);
    },
  };
});

const scratch = mkdtempSync(join(tmpdir(), 'hermes3-bad-inputs-'));

/** A GGUF header: magic, version, tensor count, metadata count, then `rest`. */
function header(version: number, nTensors: bigint, nKv: bigint, rest: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(24);
  b.write('GGUF', 0);
  b.writeUInt32LE(version, 4);
  b.writeBigUInt64LE(nTensors, 8);
  b.writeBigUInt64LE(nKv, 16);
  return Buffer.concat([b, rest]);
}
const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const str = (s: string) => Buffer.concat([u64(BigInt(Buffer.byteLength(s))), Buffer.from(s)]);

describe('model files that cannot be read', () => {
  it('names a directory given as modelPath and the GGUF files inside it', async () => {
    const dir = join(scratch, 'models');
    mkdirSync(dir);
    writeFileSync(join(dir, 'hermes-3-8b.Q4_K_M.gguf'), '');
    const err = await loadModel({ modelPath: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect(err).toMatchObject({ code: 'ERR_NOT_A_FILE', path: dir });
    expect((err as Error).message).toBe(`${dir} is a directory, not a model file: expected a GGUF file; it holds hermes-3-8b.Q4_K_M.gguf: pass one of them`);
    const empty = join(scratch, 'empty-dir');
    mkdirSync(empty);
    await expect(readGgufHeader(empty)).rejects.toThrow(/is a directory, not a model file: expected a GGUF file; pass the path of the \.gguf file itself/);
  });

  it('says an unreadable model file needs read permission', async () => {
    const path = join(scratch, 'root-only.gguf');
    writeFileSync(path, 'GGUF');
    const err = await loadModel({ modelPath: path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect(err).toMatchObject({ code: 'ERR_FILE_UNREADABLE', path });
    expect((err as Error).message).toMatch(/cannot read the model file .*root-only\.gguf: permission denied \(EACCES\); expected a GGUF file this user can read/);
  });

  it.skipIf(process.getuid?.() === 0)('says an unreadable model file needs read permission (chmod 000, not as root)', async () => {
    const path = join(scratch, 'mode-000.gguf');
    writeFileSync(path, 'GGUF');
    chmodSync(path, 0o000);
    await expect(loadModel({ modelPath: path })).rejects.toMatchObject({ code: 'ERR_FILE_UNREADABLE' });
  });

  it('says an empty file is empty, not a truncated header', async () => {
    const path = join(scratch, 'empty.gguf');
    writeFileSync(path, '');
    const err = await loadModel({ modelPath: path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GgufFormatError);
    expect((err as Error).message).toBe(`${path} is empty (0 bytes): expected a GGUF model file; a download or copy of it may have failed, fetch it again`);
  });

  it('the CLI model argument: refuses a directory with exit code 3, naming it', async () => {
    const dir = join(scratch, 'cli-dir');
    mkdirSync(dir);
    const err = await resolveModelPath(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect((err as Error).message).toBe(`${dir} is a directory, not a GGUF file; pass the path of the .gguf file`);
    expect(exitCodeFor(err)).toBe(3);
  });

  it('refuses a GGUF file without general.architecture before loading it', async () => {
    const path = join(scratch, 'no-arch.gguf');
    writeFileSync(path, header(3, 0n, 1n, Buffer.concat([str('general.name'), u32(8), str('x')])));
    await expect(loadModel({ modelPath: path })).rejects.toThrow(new ModelLoadError(`${path} has no general.architecture key: it is not a model file llama.cpp can load`));
  });
});

describe('corrupt GGUF headers', () => {
  it('refuses an unknown GGUF version', () => {
    expect(() => parseGguf(header(4, 0n, 0n), 'v4.gguf')).toThrow('v4.gguf: unsupported GGUF version 4 (supported: 2, 3) at byte 4');
    expect(() => parseGguf(header(4, 0n, 0n))).toThrow(GgufFormatError);
    expect(() => parseGguf(header(1, 0n, 0n))).toThrow(/unsupported GGUF version 1/);
  });

  it('refuses an absurd tensor count and string length instead of allocating them', () => {
    expect(() => parseGguf(header(3, 2n ** 62n, 0n))).toThrow(/tensor count is 4611686018427387904, more than the limit of 16777216 \(corrupt file\?\) at byte 8/);
    expect(() => parseGguf(header(3, 0n, 1n, u64(2n ** 40n)))).toThrow(/length of metadata key 0 is 1099511627776, more than the limit/);
  });

  it('refuses an unknown value type, a nested array and a tensor with too many dimensions', () => {
    const kv = (type: number, value: Buffer) => header(3, 0n, 1n, Buffer.concat([str('k'), u32(type), value]));
    expect(() => parseGguf(kv(99, Buffer.alloc(8)))).toThrow(GgufFormatError);
    expect(() => parseGguf(kv(99, Buffer.alloc(8)))).toThrow(/value of k has unknown value type 99/);
    expect(() => parseGguf(kv(9, Buffer.concat([u32(9), u64(1n)])))).toThrow(/k is a nested array/);
    const tensor = header(3, 1n, 0n, Buffer.concat([str('t'), u32(9)]));
    expect(() => parseGguf(tensor)).toThrow(/tensor t has 9 dimensions/);
  });
});

describe('arguments of the wrong type', () => {
  it('parseToolCalls refuses a value that is not a string', () => {
    expect(() => parseToolCalls(undefined as never)).toThrow(OptionsError);
    expect(() => parseToolCalls(undefined as never)).toThrow("Invalid argument text for parseToolCalls: expected a string (the reply's text), received undefined");
    expect(() => parseToolCalls(42 as never)).toThrow('received 42 (number)');
    expect(() => parseToolCalls({ content: 'x' } as never)).toThrow('received an object');
    expect(() => new ToolCallStream().push(null as never)).toThrow('Invalid argument text for ToolCallStream.push: expected a string, received null');
    // strings of any content still never throw
    expect(parseToolCalls('')).toEqual({ content: '', toolCalls: [] });
  });
});

describe('no addon loads', () => {
  it('gives the commands that build or fetch it from an app with npm 11, and in a checkout', () => {
    const app = addonLoadHint(false);
    expect(app).toContain('`npm install-scripts approve hermes3-native`');
    expect(app).toContain('then `npm rebuild hermes3-native`');
    expect(app.indexOf('install-scripts approve')).toBeLessThan(app.indexOf('npm rebuild'));
    const checkout = addonLoadHint(true);
    expect(checkout).toMatch(/^run `npm run build:native` in the package folder to rebuild it; or, in your app's folder run `npm install-scripts approve hermes3-native`/);
    expect(checkout).toContain('then `npm rebuild hermes3-native`');
  });
});

/** Rows of docs/bad-inputs.md: the cited test is `file > test name` in the last column. */
function catalogueRows(markdown: string): Array<{ line: number; input: string; file: string; name: string }> {
  const rows: Array<{ line: number; input: string; file: string; name: string }> = [];
  markdown.split('\n').forEach((text, i) => {
    if (!text.startsWith('|') || /^\|\s*-/.test(text) || /^\|\s*Input\s*\|/i.test(text)) return;
    const cells = text.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    const cite = /^`([^`]+?) > ([^`]+)`$/.exec(cells[cells.length - 1] ?? '');
    rows.push({ line: i + 1, input: cells[0], file: cite?.[1] ?? '', name: cite?.[2] ?? '' });
  });
  return rows;
}

describe('the bad-input catalogue (docs/bad-inputs.md)', () => {
  it('has at least 40 rows, each citing a test file that exists and holds the named test', () => {
    const rows = catalogueRows(readFileSync(join(root, 'docs', 'bad-inputs.md'), 'utf8'));
    expect(rows.length).toBeGreaterThanOrEqual(40);
    const wrong: string[] = [];
    for (const row of rows) {
      const path = join(root, row.file);
      if (!row.file || !row.name) wrong.push(`line ${row.line}: no \`file > test name\` citation`);
      else if (!existsSync(path)) wrong.push(`line ${row.line}: ${row.file} does not exist`);
      else {
        const source = readFileSync(path, 'utf8');
        // the name as it is written in an it()/test() call, in any quotes
        const quoted = [`'${row.name.replace(/'/g, "\\'")}'`, `"${row.name}"`, `\`${row.name}\``];
        if (!quoted.some((q) => source.includes(`it(${q}`) || source.includes(`test(${q}`) || new RegExp(`it\\.\\w+\\([^)]*\\)\\(${q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`).test(source))) {
          wrong.push(`line ${row.line}: ${row.file} has no test named ${JSON.stringify(row.name)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
