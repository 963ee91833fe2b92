// Speculative decoding: drafts from a draft model or from prompt lookup are verified by the model
// in one batch, and the output is the model's own, greedy or sampled with a seed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisposedError, OptionsError, formatChat, loadModel, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { generate } from './helpers.js';

// repeated text gives prompt lookup something to find
const repetitive = formatChat([{ role: 'user', content: 'one two three four five six seven eight nine ten. '.repeat(6) }]);
const plain = formatChat([{ role: 'user', content: 'Tell me a long story about a lighthouse.' }]);

describe('speculative decoding', () => {
  let target: Model;
  let draftQ8: Model;
  const plainRun = async (prompt: string, options: Parameters<typeof generate>[2]) => {
    const ctx = await target.createContext({ nCtx: 1024 });
    try {
      return await generate(ctx.sequence(), prompt, options);
    } finally {
      await ctx.dispose();
    }
  };
  beforeAll(async () => {
    target = await loadModel({ modelPath: FIXTURES.f16 });
    draftQ8 = await loadModel({ modelPath: FIXTURES.q8 });
  });
  afterAll(async () => {
    await target.dispose();
    await draftQ8.dispose();
  });

  it.each([
    ['a quantized draft model of the same weights', () => ({ model: draftQ8, nDraft: 6, pMin: 0, adaptive: false })],
    ['the model as its own draft', () => ({ model: target, nDraft: 4, pMin: 0, adaptive: false })],
    ['adaptive drafting (the default)', () => ({ model: draftQ8, nDraft: 4, pMin: 0 })],
    ['prompt lookup', () => ({ ngram: true as const, nDraft: 8, adaptive: false })],
  ])('greedy output with %s is the model\'s own', async (_name, draft) => {
    const expected = await plainRun(repetitive, { maxTokens: 48 });
    const ctx = await target.createContext({ nCtx: 1024, draft: draft() });
    const r = await generate(ctx.sequence(), repetitive, { maxTokens: 48 });
    expect(r.tokens).toEqual(expected.tokens);
    expect(r.last.finishReason).toBe('length');
    const t = r.last.timings!;
    expect(t.generatedTokens).toBe(48);
    expect(t.draftTokens).toBeGreaterThan(0);
    expect(t.acceptedTokens).toBeLessThanOrEqual(t.draftTokens);
    // fewer decode steps than tokens: accepted drafts came several per step
    if (t.acceptedTokens > 0) expect(ctx.batchStats.decodeSteps).toBeLessThan(1 + 48);
    await ctx.dispose();
  });

  it('a draft model made from the same weights agrees on most tokens', async () => {
    const ctx = await target.createContext({ nCtx: 1024, draft: { model: target, nDraft: 4, pMin: 0, adaptive: false } });
    const r = await generate(ctx.sequence(), plain, { maxTokens: 40 });
    const t = r.last.timings!;
    // the same weights: only batch-size rounding can make it disagree
    expect(t.acceptedTokens / t.draftTokens).toBeGreaterThan(0.8);
    await ctx.dispose();
  });

  it('pMin stops drafting where the draft model is unsure', async () => {
    const drafted = async (pMin: number) => {
      const ctx = await target.createContext({ nCtx: 1024, draft: { model: draftQ8, nDraft: 8, pMin, adaptive: false } });
      const r = await generate(ctx.sequence(), plain, { maxTokens: 32 });
      await ctx.dispose();
      return r;
    };
    const all = await drafted(0);
    const sure = await drafted(0.5);
    // a random-weight model is rarely sure of anything
    expect(sure.last.timings!.draftTokens).toBeLessThan(all.last.timings!.draftTokens);
    expect(sure.tokens).toEqual(all.tokens);
  });

  it('sampled output with a seed is the same as without speculation', async () => {
    const opts = { temperature: 0.9, topK: 0, topP: 1, minP: 0, seed: 1234, maxTokens: 40 };
    const expected = await plainRun(repetitive, opts);
    const ctx = await target.createContext({ nCtx: 1024, draft: { model: draftQ8, nDraft: 4, pMin: 0, adaptive: false } });
    const seq = ctx.sequence();
    const r = await generate(seq, repetitive, opts);
    await seq.clear();
    const again = await generate(seq, repetitive, opts);
    expect(again.tokens).toEqual(r.tokens);
    expect(r.last.timings!.draftTokens).toBeGreaterThan(0);
    // Each token is sampled from the model's own distribution with the same random draws, so the
    // output is the same; but verifying several tokens in one batch rounds the logits a little
    // differently from one token at a time, and sampling the whole vocabulary can turn on such a
    // difference after a few dozen tokens. A wrong acceptance rule diverges at once.
    expect(r.tokens.slice(0, 16)).toEqual(expected.tokens.slice(0, 16));
    await ctx.dispose();
  });

  it('batches the drafts of concurrent sequences, each with its own output', async () => {
    const a = await plainRun(repetitive, { maxTokens: 32 });
    const b = await plainRun(plain, { maxTokens: 32 });
    const ctx = await target.createContext({ nCtx: 2048, nSeqMax: 2, draft: { model: draftQ8, nDraft: 4, pMin: 0, adaptive: false } });
    const [ra, rb] = await Promise.all([
      generate(ctx.sequence(), repetitive, { maxTokens: 32 }),
      generate(ctx.sequence(), plain, { maxTokens: 32 }),
    ]);
    expect(ra.tokens).toEqual(a.tokens);
    expect(rb.tokens).toEqual(b.tokens);
    expect(ctx.batchStats.widestStep).toBe(2);
    await ctx.dispose();
  });

  it('a follow-up turn drafts from where the sequence is, after save and restore too', async () => {
    const again = formatChat([{ role: 'user', content: 'again' }]);
    const turns = async (draft?: { model: Model; nDraft: number; pMin: number; adaptive: boolean }) => {
      const ctx = await target.createContext({ nCtx: 2048, draft });
      const seq = ctx.sequence();
      const first = await generate(seq, repetitive, { maxTokens: 16 });
      const saved = await seq.saveState();
      const second = await generate(seq, again, { maxTokens: 16 });
      await seq.clear();
      await seq.restoreState(saved);
      const replay = await generate(seq, again, { maxTokens: 16 });
      await ctx.dispose();
      return [first.tokens, second.tokens, replay.tokens];
    };
    expect(await turns({ model: draftQ8, nDraft: 4, pMin: 0, adaptive: false })).toEqual(await turns());
  });

  it('rejects a wrong draft option with a typed error', async () => {
    await expect(target.createContext({ draft: { nDraft: 4 } })).rejects.toBeInstanceOf(OptionsError);
    await expect(target.createContext({ draft: { model: draftQ8, ngram: true } })).rejects.toBeInstanceOf(OptionsError);
    await expect(target.createContext({ draft: { ngram: { min: 5, max: 2 } } })).rejects.toBeInstanceOf(OptionsError);
    await expect(target.createContext({ draft: { model: {} as Model } })).rejects.toBeInstanceOf(OptionsError);
    const gone = await loadModel({ modelPath: FIXTURES.q4km });
    await gone.dispose();
    await expect(target.createContext({ draft: { model: gone } })).rejects.toBeInstanceOf(DisposedError);
  });
});
