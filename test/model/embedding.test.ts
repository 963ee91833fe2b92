// Embeddings: the addon's vectors against a program written directly against llama.cpp's C API
// (test/reference/embed.cpp, in the order of llama.cpp's embedding example), batching against
// one input at a time, pooling, normalization, truncation, and the errors around them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, ContextOverflowError, DisposedError, OptionsError, loadModel, type EmbeddingContext, type Model } from '../../src/index.js';
import { writeSyntheticModel } from '../../src/testing/index.js';
import { FIXTURES, embedReferenceProgram, requireFile } from '../fixtures.js';

const THREADS = 2;
const POOLING_IDS = { none: 0, mean: 1, cls: 2, last: 3 } as const;
const texts = [
  'The sea is blue.',
  'A llama walks across the Andes, carrying wool and salt to the market in the valley below.',
  'Embeddings turn text into vectors. 日本語も少し 🦙',
  'Short',
  'Retrieval ranks documents by the cosine of their vectors with the query vector.',
];

function reference(path: string, pooling: number, nCtx: number, nSeqMax: number, inputs: number[][]): Float32Array[] {
  const out = execFileSync(
    requireFile(embedReferenceProgram, 'build the addon first (npm install)'),
    [path, String(pooling), String(nCtx), String(nSeqMax), String(THREADS), ...inputs.map((t) => t.join(','))],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  return out
    .trim()
    .split('\n')
    .map((line) => Float32Array.from(line.split(' ').map(Number)));
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (norm(a) * norm(b));
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('embeddings', () => {
  let model: Model;
  let tokens: number[][];
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
    tokens = texts.map((t) => model.tokenize(t, { addBos: true }));
  });
  afterAll(() => model.dispose());

  describe.each(['mean', 'last', 'cls'] as const)('pooling %s', (pooling) => {
    let ectx: EmbeddingContext;
    beforeAll(async () => {
      ectx = await model.createEmbeddingContext({ nCtx: 256, nSeqMax: 8, pooling, threads: THREADS });
    });
    afterAll(() => ectx.dispose());

    it('equals the C API reference, batched the same way', async () => {
      const r = await ectx.embedWithUsage(texts, { normalize: false });
      expect(r.decodes).toBe(1);
      expect(r.tokenCounts).toEqual(tokens.map((t) => t.length));
      const theirs = reference(FIXTURES.f16, POOLING_IDS[pooling], 256, 8, tokens);
      expect(theirs).toHaveLength(texts.length);
      for (let i = 0; i < texts.length; i++) {
        expect(r.embeddings[i]).toHaveLength(ectx.nEmbd);
        expect(maxAbsDiff(r.embeddings[i]!, theirs[i]!)).toBe(0);
      }
      // different texts give different vectors, except with cls pooling: in a causal model the
      // first token (BOS for every input) sees nothing after it
      if (pooling === 'cls') expect(cosine(r.embeddings[0]!, r.embeddings[1]!)).toBeCloseTo(1, 6);
      else expect(cosine(r.embeddings[0]!, r.embeddings[1]!)).toBeLessThan(0.999);
    });

    it('batched and one at a time give the same vectors', async () => {
      const batched = await ectx.embed(texts);
      for (let i = 0; i < texts.length; i++) {
        const [alone] = await ectx.embed(texts[i]!);
        expect(cosine(alone!, batched[i]!)).toBeGreaterThan(0.99999);
        expect(maxAbsDiff(alone!, batched[i]!)).toBeLessThan(1e-3);
      }
    });
  });

  it('pooling none gives every token a vector, equal to the reference', async () => {
    await using ectx = await model.createEmbeddingContext({ nCtx: 128, pooling: 'none', threads: THREADS });
    const r = await ectx.embedWithUsage(texts.slice(0, 2), { normalize: false });
    expect(r.embeddings.map((e) => e.length)).toEqual(tokens.slice(0, 2).map((t) => t.length * ectx.nEmbd));
    const theirs = reference(FIXTURES.f16, 0, 128, 16, tokens.slice(0, 2));
    const ours = r.embeddings.flatMap((e) => Array.from({ length: e.length / ectx.nEmbd }, (_, k) => e.subarray(k * ectx.nEmbd, (k + 1) * ectx.nEmbd)));
    expect(ours).toHaveLength(theirs.length);
    for (let k = 0; k < ours.length; k++) expect(maxAbsDiff(ours[k]!, theirs[k]!)).toBeLessThanOrEqual(1e-6 * norm(theirs[k]!));
    // normalized per token
    const [normed] = await ectx.embed(texts[0]!);
    for (let k = 0; k < tokens[0]!.length; k++) expect(norm(normed!.subarray(k * ectx.nEmbd, (k + 1) * ectx.nEmbd))).toBeCloseTo(1, 5);
  });

  it('fills each decode with as many inputs as fit the context and the sequence slots', async () => {
    await using ectx = await model.createEmbeddingContext({ nCtx: 64, nSeqMax: 2, threads: THREADS });
    const r = await ectx.embedWithUsage(texts, { normalize: false });
    // 5 inputs, at most 2 per decode (and at most 64 tokens): the reference groups them the same way
    expect(r.decodes).toBeGreaterThanOrEqual(3);
    const theirs = reference(FIXTURES.f16, POOLING_IDS.mean, 64, 2, tokens);
    for (let i = 0; i < texts.length; i++) expect(maxAbsDiff(r.embeddings[i]!, theirs[i]!)).toBe(0);
  });

  it('normalizes to unit length by default, and token ids embed as their text does', async () => {
    await using ectx = await model.createEmbeddingContext({ nCtx: 256, threads: THREADS });
    const [raw] = await ectx.embed(texts[1]!, { normalize: false });
    const [unit] = await ectx.embed(texts[1]!);
    const [fromTokens] = await ectx.embed([tokens[1]!]);
    expect(norm(unit!)).toBeCloseTo(1, 5);
    expect(norm(raw!)).not.toBeCloseTo(1, 2);
    expect(maxAbsDiff(unit!, raw!.map((x) => x / norm(raw!)))).toBeLessThan(1e-6);
    expect(Array.from(fromTokens!)).toEqual(Array.from(unit!));
  });

  it('an input past nCtx fails, or is cut to its first nCtx tokens with truncate: true', async () => {
    await using ectx = await model.createEmbeddingContext({ nCtx: 16, threads: THREADS });
    const long = texts[1]!;
    expect(tokens[1]!.length).toBeGreaterThan(16);
    await expect(ectx.embed(['ok', long])).rejects.toThrow(ContextOverflowError);
    await expect(ectx.embed(['ok', long])).rejects.toThrow(/input 1 has \d+ tokens, more than the embedding context's nCtx \(16\).*truncate: true/);
    const r = await ectx.embedWithUsage(['ok', long], { truncate: true });
    expect(r.truncated).toEqual([1]);
    expect(r.tokenCounts[1]).toBe(16);
    const [cut] = await ectx.embed([tokens[1]!.slice(0, 16)]);
    expect(Array.from(r.embeddings[1]!)).toEqual(Array.from(cut!));
  });

  it('the pooling named in the file is the default; a generative model without one pools by mean', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hermes3-embed-')), 'tiny-last.gguf');
    await writeSyntheticModel({ path, shape: 'tiny', seed: 1, pooling: 'last' });
    const m = await loadModel({ modelPath: path });
    try {
      await using byFile = await m.createEmbeddingContext({ nCtx: 128, threads: THREADS });
      expect(byFile.pooling).toBe('last');
      await using plain = await model.createEmbeddingContext({ nCtx: 128, threads: THREADS });
      expect(plain.pooling).toBe('mean');
      const [v] = await byFile.embed(texts[0]!, { normalize: false });
      const ids = m.tokenize(texts[0]!, { addBos: true });
      expect(maxAbsDiff(v!, reference(path, -1, 128, 16, [ids])[0]!)).toBeLessThanOrEqual(1e-6 * norm(v!));
    } finally {
      await m.dispose();
    }
  });

  it('refuses bad inputs and options with typed errors', async () => {
    await expect(model.createEmbeddingContext({ pooling: 'max' as never })).rejects.toThrow(OptionsError);
    await expect(model.createEmbeddingContext({ nCtx: 8 })).rejects.toThrow(/nCtx/);
    await expect(model.createEmbeddingContext({ batch: 4 } as never)).rejects.toThrow(/Unknown option batch/);
    await using ectx = await model.createEmbeddingContext({ nCtx: 64, threads: THREADS });
    await expect(ectx.embed([])).rejects.toThrow(OptionsError);
    await expect(ectx.embed('')).rejects.toThrow(/input 0 is empty/);
    await expect(ectx.embed(['a', 42 as never])).rejects.toThrow(/input 1 is neither a string nor an array of token ids/);
    await expect(ectx.embed([[1, model.info.nVocab]])).rejects.toThrow(/outside the vocabulary/);
    await expect(ectx.embed('a', { normalise: true } as never)).rejects.toThrow(/Unknown option normalise/);
    const aborted = AbortSignal.abort();
    await expect(ectx.embed('a', { signal: aborted })).rejects.toThrow(AbortError);
    // after all of these the context still works
    expect(await ectx.embed('still fine')).toHaveLength(1);
  });

  it('calls at the same time run one after another and each gets its own vectors', async () => {
    await using ectx = await model.createEmbeddingContext({ nCtx: 256, threads: THREADS });
    const one = await Promise.all(texts.map((t) => ectx.embed(t)));
    const all = await ectx.embed(texts);
    for (let i = 0; i < texts.length; i++) expect(cosine(one[i]![0]!, all[i]!)).toBeGreaterThan(0.99999);
  });

  it('dispose during embed aborts it; use after dispose is a DisposedError; the model disposes its embedding contexts', async () => {
    const ectx = await model.createEmbeddingContext({ nCtx: 256, nSeqMax: 1, threads: THREADS });
    const many = Array.from({ length: 40 }, (_, i) => `${texts[i % texts.length]} ${i}`);
    const running = ectx.embed(many).then(
      () => 'done',
      (err: unknown) => err,
    );
    await ectx.dispose();
    const outcome = await running;
    // either it finished before the abort reached it, or it stopped with an AbortError
    if (outcome !== 'done') expect(outcome).toBeInstanceOf(AbortError);
    await expect(ectx.embed('a')).rejects.toThrow(DisposedError);
    await ectx.dispose();

    const m = await loadModel({ modelPath: FIXTURES.q8 });
    const e2 = await m.createEmbeddingContext({ nCtx: 64 });
    await m.dispose();
    expect(e2.isDisposed).toBe(true);
    await expect(e2.embed('a')).rejects.toThrow(DisposedError);
  });
});
