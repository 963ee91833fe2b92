// Continuous batching: concurrent generations on sequences of one context share decode steps,
// give each sequence the tokens it would get alone, and leave each other alone on abort,
// dispose and slow consumers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatChat, loadModel, type Chunk, type Context, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { collect, generate, greedy } from './helpers.js';

const prompts = [
  'Tell me a long story about a lighthouse.',
  'What is the capital of France?',
  'Write a haiku about llamas.',
  'List three prime numbers.',
].map((content) => formatChat([{ role: 'user', content }]));

describe('continuous batching', () => {
  let model: Model;
  let solo: number[][];
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
    // each prompt alone, one after the other, on a context of its own
    const ctx = await model.createContext({ nCtx: 1024 });
    solo = [];
    for (const p of prompts) {
      const seq = ctx.sequence();
      solo.push((await generate(seq, p, { maxTokens: 32 })).tokens);
      await seq.dispose();
    }
    await ctx.dispose();
  });
  afterAll(() => model.dispose());

  async function withContext<T>(nSeqMax: number, fn: (ctx: Context) => Promise<T>, nBatch = 512): Promise<T> {
    const ctx = await model.createContext({ nCtx: 4096, nSeqMax, nBatch });
    try {
      return await fn(ctx);
    } finally {
      await ctx.dispose();
    }
  }

  it('concurrent sequences share decode steps and each gets its own greedy tokens', async () => {
    await withContext(4, async (ctx) => {
      const seqs = prompts.map(() => ctx.sequence());
      const results = await Promise.all(seqs.map((s, i) => generate(s, prompts[i], { maxTokens: 32 })));
      results.forEach((r, i) => {
        expect(r.tokens).toEqual(solo[i]);
        expect(r.last.finishReason).toBe('length');
        expect(r.last.timings!.generatedTokens).toBe(32);
        expect(r.last.timings!.promptTokens).toBe(model.tokenize(prompts[i], { special: true, addBos: true }).length);
      });
      const stats = ctx.batchStats;
      // alone, 4 x 32 tokens would take 4 x 32 decode calls
      expect(stats.widestStep).toBe(4);
      expect(stats.decodeSteps).toBeLessThan(2 * 32);
      expect(stats.decodedTokens).toBe(results.reduce((n, r) => n + r.last.timings!.evaluatedTokens + 31, 0));
    });
  });

  it('sequences that join while others generate are served in the same steps', async () => {
    await withContext(4, async (ctx) => {
      const a = ctx.sequence();
      const b = ctx.sequence();
      let bResult: Promise<Awaited<ReturnType<typeof generate>>> | undefined;
      const chunks: Chunk[] = [];
      for await (const c of a.generate(prompts[0], { ...greedy, maxTokens: 32, bufferTokens: 1 })) {
        chunks.push(c);
        if (chunks.length === 4) bResult = generate(b, prompts[1], { maxTokens: 32 });
      }
      expect(chunks.flatMap((c) => c.tokens)).toEqual(solo[0]);
      expect((await bResult!).tokens).toEqual(solo[1]);
      expect(ctx.batchStats.widestStep).toBe(2);
    });
  });

  it('a long prompt is split into chunks so generating sequences keep getting tokens', async () => {
    // nBatch 512: the 2,000-token prompt alone would take 4 steps, each with no token for others
    await withContext(2, async (ctx) => {
      const gen = ctx.sequence();
      const long = ctx.sequence();
      const longPrompt = formatChat([{ role: 'user', content: 'lighthouse keeper '.repeat(650) }]);
      const nLong = model.tokenize(longPrompt, { special: true, addBos: true }).length;
      expect(nLong).toBeGreaterThan(1900);
      const ban = Object.fromEntries(model.info.specialTokens.eog.map((t) => [t, -Infinity]));
      let tokensWhilePrompt = 0;
      let longStarted = false;
      let longFirstToken = false;
      let stepsAtStart = 0;
      let stepsAtFirst = 0;
      let longRun: Promise<unknown> | undefined;
      // the generating sequence outlasts the prompt (it stops once the long prompt has its first token)
      for await (const c of gen.generate(prompts[0], { ...greedy, maxTokens: 1500, logitBias: ban, bufferTokens: 1 })) {
        if (longFirstToken) break;
        if (!longStarted && c.tokens.length > 0) {
          longStarted = true;
          stepsAtStart = ctx.batchStats.decodeSteps;
          longRun = (async () => {
            for await (const lc of long.generate(longPrompt, { ...greedy, maxTokens: 4 })) {
              if (!longFirstToken && lc.tokens.length > 0) {
                longFirstToken = true;
                stepsAtFirst = ctx.batchStats.decodeSteps;
              }
            }
          })();
        } else if (longStarted && !longFirstToken) {
          tokensWhilePrompt += c.tokens.length;
        }
      }
      await longRun;
      expect(longFirstToken).toBe(true);
      const stepsForPrompt = stepsAtFirst - stepsAtStart;
      // the prompt took more steps than nBatch-sized chunks would, and the generating sequence
      // kept getting tokens through them: with bufferTokens 1 it waits for its consumer after every
      // token, and on the tiny model a step takes a millisecond or two, so a busy event loop makes
      // it miss steps (CI has seen 43% of the steps; 4 whole-batch steps would give it none)
      expect(stepsForPrompt).toBeGreaterThan(Math.ceil(nLong / 512));
      expect(tokensWhilePrompt).toBeGreaterThanOrEqual(Math.floor(stepsForPrompt / 4));
    });
  });

  it('aborting or disposing one sequence leaves the others untouched', async () => {
    await withContext(4, async (ctx) => {
      const seqs = prompts.map(() => ctx.sequence());
      const controller = new AbortController();
      let seen = 0;
      const runs = seqs.map(async (s, i) => {
        const chunks: Chunk[] = [];
        const opts = { ...greedy, maxTokens: 32, bufferTokens: 1, signal: i === 1 ? controller.signal : undefined };
        for await (const c of s.generate(prompts[i], opts)) {
          chunks.push(c);
          if (i === 1 && (seen += c.tokens.length) >= 5) controller.abort();
          if (i === 2 && chunks.length === 6) void s.dispose();
        }
        return chunks;
      });
      const results = await Promise.all(runs.map((r) => r.then((chunks) => ({ chunks, last: chunks[chunks.length - 1] }))));
      expect(results[1].last.finishReason).toBe('abort');
      expect(results[2].last.finishReason).toBe('abort');
      for (const i of [0, 3]) {
        expect(results[i].chunks.flatMap((c) => c.tokens)).toEqual(solo[i]);
        expect(results[i].last.finishReason).toBe('length');
      }
      // the aborted sequence goes on from what it kept
      const again = await generate(seqs[1], '', { maxTokens: 2 }).catch((e: Error) => e);
      expect(again).not.toBeInstanceOf(Error);
    });
  });

  it('a consumer that stops pulling does not hold back the other sequences', async () => {
    await withContext(2, async (ctx) => {
      const slow = ctx.sequence();
      const fast = ctx.sequence();
      const it = slow.generate(prompts[0], { ...greedy, maxTokens: 64, bufferTokens: 2 })[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      const r = await generate(fast, prompts[1], { maxTokens: 32 });
      expect(r.tokens).toEqual(solo[1]);
      // the slow one is paused, not lost: it finishes with its own tokens once pulled again
      const rest = await collect({ [Symbol.asyncIterator]: () => it });
      expect([...(first.value as Chunk).tokens, ...rest.tokens].slice(0, 32)).toEqual(solo[0]);
      expect(rest.last.finishReason).toBe('length');
    });
  });

  it('clear, save and restore of one sequence run while another generates', async () => {
    await withContext(2, async (ctx) => {
      const a = ctx.sequence();
      const b = ctx.sequence();
      await generate(b, prompts[2], { maxTokens: 8 });
      const running = generate(a, prompts[0], { maxTokens: 32 });
      const saved = await b.saveState();
      await b.clear();
      expect(b.cachedTokens).toBe(0);
      await b.restoreState(saved);
      expect(b.cachedTokens).toBe(saved.tokens.length);
      expect((await running).tokens).toEqual(solo[0]);
    });
  });

  it('grammars and samplers stay per sequence', async () => {
    await withContext(2, async (ctx) => {
      const grammar = 'root ::= "{" "\\"n\\"" ":" [0-9] [0-9]? "}"';
      const [json, free] = await Promise.all([
        generate(ctx.sequence(), prompts[0], { grammar, maxTokens: 20 }),
        generate(ctx.sequence(), prompts[1], { maxTokens: 32 }),
      ]);
      expect(JSON.parse(json.text)).toHaveProperty('n');
      expect(free.tokens).toEqual(solo[1]);
    });
  });
});
