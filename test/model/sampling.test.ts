import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatChat, loadModel, type Context, type GenerateOptions, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { collect } from './helpers.js';

const prompt = formatChat([{ role: 'user', content: 'Write something.' }]);

const configs: Array<[string, GenerateOptions]> = [
  ['top-k, top-p, min-p', { temperature: 0.9, topK: 20, topP: 0.8, minP: 0.1 }],
  ['typical-p', { temperature: 0.9, typicalP: 0.7 }],
  ['penalties', { temperature: 0.9, repeatPenalty: 1.3, frequencyPenalty: 0.5, presencePenalty: 0.5, penaltyLastN: 32 }],
  ['mirostat v1', { temperature: 0.9, mirostat: 1, mirostatTau: 4, mirostatEta: 0.2 }],
  ['mirostat v2', { temperature: 0.9, mirostat: 2 }],
  ['DRY', { temperature: 0.9, dryMultiplier: 0.8, dryBase: 1.75, dryAllowedLength: 2 }],
  ['XTC', { temperature: 0.9, xtcProbability: 0.5, xtcThreshold: 0.05 }],
];

describe('sampling', () => {
  let model: Model;
  let ctx: Context;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
    ctx = await model.createContext({ nCtx: 512 });
  });
  afterAll(() => model.dispose());

  it.each(configs)('%s: same seed, same output; another seed, another output', async (_name, options) => {
    const seq = ctx.sequence();
    const run = async (seed: number) => {
      await seq.clear();
      return (await collect(seq.generate(prompt, { ...options, seed, maxTokens: 24 }))).tokens;
    };
    const a = await run(11);
    expect(a).toHaveLength(24);
    expect(await run(11)).toEqual(a);
    expect(await run(12)).not.toEqual(a);
    await seq.dispose();
  });

  it('repeat penalty changes greedy output on a repetitive prompt', async () => {
    const seq = ctx.sequence();
    const plain = (await collect(seq.generate(prompt, { temperature: 0, maxTokens: 48 }))).tokens;
    await seq.clear();
    const penalized = (await collect(seq.generate(prompt, { temperature: 0, maxTokens: 48, repeatPenalty: 2, penaltyLastN: 48 }))).tokens;
    expect(penalized).not.toEqual(plain);
    // a strong penalty keeps any token from coming back within the window
    expect(new Set(penalized).size).toBeGreaterThanOrEqual(new Set(plain).size);
    await seq.dispose();
  });

  it('bans tokens with a logit bias of -Infinity', async () => {
    const seq = ctx.sequence();
    const greedy = (await collect(seq.generate(prompt, { temperature: 0, maxTokens: 16 }))).tokens;
    await seq.clear();
    const banned = Object.fromEntries(greedy.map((t) => [t, -Infinity]));
    const other = (await collect(seq.generate(prompt, { temperature: 0, maxTokens: 16, logitBias: banned }))).tokens;
    for (const t of other) expect(greedy).not.toContain(t);
    await seq.dispose();
  });
});
