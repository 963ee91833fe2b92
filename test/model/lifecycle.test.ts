import { copyFileSync, mkdtempSync, openSync, closeSync, ftruncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  BusyError,
  ContextOverflowError,
  DisposedError,
  GgufFormatError,
  Hermes3Error,
  OptionsError,
  formatChat,
  loadModel,
  quantize,
  setLogger,
  type Model,
} from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { generate, greedy } from './helpers.js';

const prompt = formatChat([{ role: 'user', content: 'Hi there' }]);
const scratch = mkdtempSync(join(tmpdir(), 'hermes3-lifecycle-'));

describe('loading', () => {
  it('names a missing file', async () => {
    const err = await loadModel({ modelPath: join(scratch, 'nope.gguf') }).catch((e) => e);
    expect(err).toBeInstanceOf(Hermes3Error);
    expect(err.code).toBe('ERR_FILE_NOT_FOUND');
    expect(err.message).toContain('nope.gguf');
  });

  it('rejects a file that is not GGUF', async () => {
    const path = join(scratch, 'text.gguf');
    writeFileSync(path, 'this is not a model');
    const err = await loadModel({ modelPath: path }).catch((e) => e);
    expect(err).toBeInstanceOf(GgufFormatError);
    expect(err.message).toMatch(/not a GGUF file .* at byte 0/);
  });

  it('rejects a truncated model file before loading it', async () => {
    const path = join(scratch, 'truncated.gguf');
    copyFileSync(FIXTURES.f16, path);
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, Math.floor(statSync(path).size / 2));
    closeSync(fd);
    const err = await loadModel({ modelPath: path }).catch((e) => e);
    expect(err).toBeInstanceOf(GgufFormatError);
    expect(err.message).toMatch(/truncated/);
  });

  it('honours an aborted signal', async () => {
    const err = await loadModel({ modelPath: FIXTURES.f16, signal: AbortSignal.abort() }).catch((e) => e);
    expect(err).toBeInstanceOf(AbortError);
  });

  it('reports progress up to 1, all of it before the promise settles', async () => {
    const seen: number[] = [];
    const model = await loadModel({ modelPath: FIXTURES.f16, onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(0);
    expect(Math.max(...seen)).toBe(1);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    await model.dispose();
  });

  it('validates options with messages that name the option', async () => {
    await expect(loadModel({ modelPath: FIXTURES.f16, nGpuLayers: -2 })).rejects.toThrow(
      "Invalid option nGpuLayers for loadModel: expected an integer >= 0, 'max' or 'auto', received -2 (number)",
    );
    await expect(loadModel({ modelPath: FIXTURES.f16, nGpuLayer: 1 } as never)).rejects.toThrow(
      'Unknown option nGpuLayer for loadModel; check the spelling (options are camelCase)',
    );
    await expect(loadModel({} as never)).rejects.toThrow(OptionsError);
  });

  it('routes llama.cpp log lines to a logger, silent by default', async () => {
    const lines: string[] = [];
    const model = await loadModel({ modelPath: FIXTURES.f16, logger: (_level, line) => lines.push(line), logLevel: 'info' });
    await new Promise((r) => setTimeout(r, 20));
    setLogger(null);
    expect(lines.some((l) => l.includes('llama_model_loader'))).toBe(true);
    await model.dispose();
  });
});

describe('lifetime', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
  });
  afterAll(() => model.dispose());

  it('validates context and generation options', async () => {
    await expect(model.createContext({ nCtx: 'big' as never })).rejects.toThrow(
      "Invalid option nCtx for createContext: expected an integer between 16 and 16777216, 'auto', or a range { min, max } of such integers, received 'big' (string)",
    );
    const ctx = await model.createContext({ nCtx: 256 });
    const seq = ctx.sequence();
    expect(() => seq.generate(prompt, { topP: 2 })).toThrow('Invalid option topP for generate: expected a number between 0 and 1, received 2 (number)');
    expect(() => seq.generate(prompt, { temprature: 1 } as never)).toThrow('Unknown option temprature for generate');
    expect(() => seq.generate([1, 2, 999999])).toThrow(/token id 999999 is outside the vocabulary/);
    const bad = await generate(seq, prompt, { grammar: 'root ::= (' }).catch((e) => e);
    expect(bad).toBeInstanceOf(OptionsError);
    expect(bad.code).toBe('ERR_OPTIONS');
    // llama.cpp's reason is in the message (its parser logs it; nothing is printed to stderr)
    expect(bad.message).toMatch(/the GBNF grammar could not be parsed: .*error parsing grammar: .+; check it against llama\.cpp's GBNF syntax/);
    // the sequence is still usable after the failed start
    expect((await generate(seq, prompt, { maxTokens: 3 })).tokens).toHaveLength(3);
    await ctx.dispose();
  });

  it('raises ContextOverflowError when the prompt does not fit, and clamps maxTokens to the room left', async () => {
    const ctx = await model.createContext({ nCtx: 64 });
    const seq = ctx.sequence();
    // llama.cpp rounds the context up (to 256 here); ctx.nCtx reports what it allocated
    expect(ctx.nCtx).toBeGreaterThanOrEqual(64);
    const long = 'word '.repeat(ctx.nCtx + 10);
    await expect(generate(seq, long)).rejects.toBeInstanceOf(ContextOverflowError);
    const r = await generate(seq, prompt, { maxTokens: 500 });
    expect(r.last.finishReason).toBe('length');
    expect(seq.tokens.length).toBe(ctx.nCtxPerSequence);
    await ctx.dispose();
  });

  it('refuses a second generation on a busy sequence', async () => {
    const ctx = await model.createContext({ nCtx: 256 });
    const seq = ctx.sequence();
    const first = seq.generate(prompt, { ...greedy, maxTokens: 50 });
    await first.next();
    await expect(seq.generate(prompt).next()).rejects.toBeInstanceOf(BusyError);
    await first.return(undefined);
    expect(seq.isGenerating).toBe(false);
    expect((await generate(seq, prompt, { maxTokens: 2 })).tokens).toHaveLength(2);
    await ctx.dispose();
  });

  it('limits sequences to nSeqMax', async () => {
    const ctx = await model.createContext({ nCtx: 256, nSeqMax: 1 });
    const seq = ctx.sequence();
    expect(() => ctx.sequence()).toThrow(BusyError);
    await seq.dispose();
    expect(() => ctx.sequence()).not.toThrow();
    await ctx.dispose();
  });

  it('stops a generation cleanly when the consumer breaks out of the loop', async () => {
    const ctx = await model.createContext({ nCtx: 256 });
    const seq = ctx.sequence();
    let n = 0;
    for await (const chunk of seq.generate(prompt, { ...greedy, maxTokens: 200 })) {
      n += chunk.tokens.length;
      if (n >= 3) break;
    }
    expect(seq.isGenerating).toBe(false);
    expect(seq.tokens.length).toBeLessThan(model.tokenize(prompt, { special: true, addBos: true }).length + 200);
    await ctx.dispose();
  });

  it('disposes a model in the middle of a generation without losing the stream or crashing', async () => {
    const own = await loadModel({ modelPath: FIXTURES.f16 });
    const ctx = await own.createContext({ nCtx: 512 });
    const seq = ctx.sequence();
    const chunks = [];
    let disposed: Promise<void> | undefined;
    for await (const chunk of seq.generate(prompt, { ...greedy, maxTokens: 400 })) {
      chunks.push(chunk);
      if (chunks.length === 3) disposed = own.dispose();
    }
    await disposed;
    expect(chunks[chunks.length - 1].finishReason).toBe('abort');
    expect(own.isDisposed).toBe(true);
    expect(() => own.tokenize('x')).toThrow(DisposedError);
    await expect(own.createContext()).rejects.toBeInstanceOf(DisposedError);
    expect(() => seq.generate(prompt)).toThrow(DisposedError);
    await own.dispose(); // a second dispose is harmless
  });

  it('disposes a context whose consumer stopped pulling', async () => {
    const ctx = await model.createContext({ nCtx: 256 });
    const seq = ctx.sequence();
    const it = seq.generate(prompt, { ...greedy, maxTokens: 200, bufferTokens: 2 });
    await it.next();
    // nobody pulls any more; dispose must not wait for the consumer
    await ctx.dispose();
    expect(ctx.isDisposed).toBe(true);
    const rest = [];
    for await (const c of { [Symbol.asyncIterator]: () => it }) rest.push(c);
    expect(rest[rest.length - 1].finishReason).toBe('abort');
  });

  it('quantizes, and validates the type', async () => {
    await expect(quantize({ input: FIXTURES.f16, output: join(scratch, 'x.gguf'), type: 'Q3_X' as never })).rejects.toThrow(
      /Invalid option type for quantize: expected one of F32, F16/,
    );
    const err = await quantize({ input: join(scratch, 'missing.gguf'), output: join(scratch, 'y.gguf'), type: 'Q8_0' }).catch((e) => e);
    expect(err.code).toBe('ERR_FILE_NOT_FOUND');
  });

  it('frees everything with Symbol.asyncDispose', async () => {
    const own = await loadModel({ modelPath: FIXTURES.f16 });
    {
      await using ctx = await own.createContext({ nCtx: 128 });
      expect(ctx.isDisposed).toBe(false);
    }
    await own[Symbol.asyncDispose]();
    expect(own.isDisposed).toBe(true);
  });
});
