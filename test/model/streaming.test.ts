import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatChat, loadModel, type Context, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { collect, generate, greedy } from './helpers.js';

const prompt = formatChat([{ role: 'user', content: 'Tell me a long story.' }]);

describe('streaming generation', () => {
  let model: Model;
  let ctx: Context;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
    ctx = await model.createContext({ nCtx: 1024, nSeqMax: 2 });
  });
  afterAll(() => model.dispose());

  it('aborting mid-generation stops within one token, and the context stays usable', async () => {
    const first = ctx.sequence();
    const expected = await generate(first, prompt, { maxTokens: 24 });
    await first.dispose();
    const seq = ctx.sequence();
    const controller = new AbortController();
    let consumedAtAbort = -1;
    const chunks = [];
    for await (const chunk of seq.generate(prompt, { ...greedy, maxTokens: 500, signal: controller.signal, bufferTokens: 1 })) {
      chunks.push(chunk);
      const consumed = chunks.flatMap((c) => c.tokens).length;
      if (consumed >= 8 && consumedAtAbort < 0) {
        consumedAtAbort = consumed;
        controller.abort();
      }
    }
    const last = chunks[chunks.length - 1];
    expect(last.finishReason).toBe('abort');
    const total = last.timings!.generatedTokens;
    // with bufferTokens: 1 the loop is at most one token ahead of the consumer when abort lands
    expect(total - consumedAtAbort).toBeLessThanOrEqual(1);
    expect(total).toBeLessThan(500);
    // the same sequence still works, and greedy output from its start matches a fresh run
    await seq.clear();
    const again = await generate(seq, prompt, { maxTokens: 24 });
    expect(again.tokens).toEqual(expected.tokens);
    await seq.dispose();
  });

  it('aborts during prompt processing', async () => {
    const seq = ctx.sequence();
    const controller = new AbortController();
    controller.abort();
    const r = await generate(seq, prompt.repeat(20), { maxTokens: 10, signal: controller.signal });
    expect(r.last.finishReason).toBe('abort');
    expect(r.tokens).toEqual([]);
    await seq.dispose();
  });

  it('keeps the event loop ticking while generating', async () => {
    const seq = ctx.sequence();
    let ticks = 0;
    let running = true;
    const spin = () => {
      ticks++;
      if (running) setTimeout(spin, 1);
    };
    setTimeout(spin, 1);
    const ticksAtChunk: number[] = [];
    for await (const chunk of seq.generate(prompt, { ...greedy, maxTokens: 32 })) {
      if (chunk.tokens.length) ticksAtChunk.push(ticks);
    }
    running = false;
    // the loop turned between consecutive chunks: generation never held the main thread
    const advancing = ticksAtChunk.slice(1).filter((t, i) => t > ticksAtChunk[i]).length;
    expect(ticksAtChunk.length).toBeGreaterThan(4);
    expect(advancing).toBeGreaterThanOrEqual(ticksAtChunk.length - 2);
    await seq.dispose();
  });

  it('finishes with stop on an end-of-generation token', async () => {
    const seq = ctx.sequence();
    const imEnd = model.info.specialTokens.eos;
    const r = await generate(seq, prompt, { maxTokens: 10, logitBias: { [imEnd]: 100 } });
    expect(r.tokens).toEqual([imEnd]);
    expect(r.text).toBe('');
    expect(r.last.finishReason).toBe('stop');
    await seq.dispose();
  });

  it('finishes with length at maxTokens, and maxTokens 0 only evaluates the prompt', async () => {
    const seq = ctx.sequence();
    const r = await generate(seq, prompt, { maxTokens: 5 });
    expect(r.tokens).toHaveLength(5);
    expect(r.last.finishReason).toBe('length');
    await seq.clear();
    const none = await generate(seq, prompt, { maxTokens: 0 });
    expect(none.tokens).toEqual([]);
    expect(none.last.finishReason).toBe('length');
    expect(seq.cachedTokens).toBe(model.tokenize(prompt, { special: true, addBos: true }).length);
    await seq.dispose();
  });

  it('cuts the output at a stop string, even across chunks, without leaking it', async () => {
    const seq = ctx.sequence();
    const full = await generate(seq, prompt, { maxTokens: 32 });
    const stop = full.text.slice(20, 26);
    const before = full.text.slice(0, full.text.indexOf(stop));
    await seq.clear();
    const cut = await generate(seq, prompt, { maxTokens: 32, stop: [stop] });
    expect(cut.text).toBe(before);
    expect(cut.last.finishReason).toBe('stop');
    await seq.dispose();
  });

  it('continues a sequence, evaluating only the new tokens, with output equal to a one-shot run', async () => {
    const seq = ctx.sequence();
    const first = await generate(seq, prompt, { maxTokens: 8 });
    const historyLength = seq.tokens.length;
    const followUp = formatChat([{ role: 'user', content: 'And then?' }]);
    const second = await generate(seq, followUp, { maxTokens: 16 });
    // the last sampled token of turn 1 was never decoded; everything before it was reused
    expect(second.last.timings!.cachedTokens).toBe(historyLength - 1);
    const followTokens = model.tokenize(followUp, { special: true });
    expect(second.last.timings!.evaluatedTokens).toBe(followTokens.length + 1);
    expect(second.last.timings!.promptTokens).toBe(historyLength + followTokens.length);

    const fresh = ctx.sequence();
    const oneShot = await generate(fresh, [...model.tokenize(prompt, { special: true, addBos: true }), ...first.tokens, ...followTokens], {
      maxTokens: 16,
    });
    expect(second.tokens).toEqual(oneShot.tokens);
    await seq.dispose();
    await fresh.dispose();
  });

  it('never splits a UTF-8 character across chunks', async () => {
    const seq = ctx.sequence();
    try {
      // The Llama 3 vocabulary spells these emoji and CJK characters with tokens that each hold
      // part of a character's bytes; a grammar makes the random model write exactly this text.
      const target = '🦙 日本語 😁 🦙🦙';
      const bias: Record<string, number> = {};
      for (const id of model.tokenize(target)) bias[id] = 10;
      const r = await generate(seq, prompt, { maxTokens: 64, bufferTokens: 1, logitBias: bias, grammar: `root ::= ${JSON.stringify(target)}` });
      expect(r.text).toBe(target);
      const partial = r.tokens.filter((t) => model.detokenize([t]).includes('\uFFFD'));
      expect(partial.length).toBeGreaterThan(0);
      // bufferTokens: 1 hands every token over in a chunk of its own
      expect(r.chunks.filter((c) => c.tokens.length > 1)).toEqual([]);
      for (const c of r.chunks) expect(c.text).not.toContain('\uFFFD');
    } finally {
      await seq.dispose();
    }
  });

  it('gives the same sampled output for the same seed', async () => {
    const seq = ctx.sequence();
    const a = await collect(seq.generate(prompt, { temperature: 0.9, seed: 1234, maxTokens: 24 }));
    await seq.clear();
    const b = await collect(seq.generate(prompt, { temperature: 0.9, seed: 1234, maxTokens: 24 }));
    await seq.clear();
    const c = await collect(seq.generate(prompt, { temperature: 0.9, seed: 99, maxTokens: 24 }));
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    await seq.dispose();
  });

  it('constrains output with a GBNF grammar', async () => {
    const seq = ctx.sequence();
    const r = await collect(seq.generate(prompt, { temperature: 0.8, seed: 3, maxTokens: 16, grammar: 'root ::= ("yes" | "no") " " [0-9] [0-9]' }));
    expect(r.text).toMatch(/^(yes|no) [0-9][0-9]$/);
    await seq.dispose();
  });

  it('runs two sequences of one context one after the other with unchanged results', async () => {
    const a = ctx.sequence();
    const b = ctx.sequence();
    const other = formatChat([{ role: 'user', content: 'Something else entirely.' }]);
    const [ra, rb] = await Promise.all([generate(a, prompt, { maxTokens: 12 }), generate(b, other, { maxTokens: 12 })]);
    await a.clear();
    await b.clear();
    expect((await generate(a, prompt, { maxTokens: 12 })).tokens).toEqual(ra.tokens);
    expect((await generate(b, other, { maxTokens: 12 })).tokens).toEqual(rb.tokens);
    await a.dispose();
    await b.dispose();
  });
});
