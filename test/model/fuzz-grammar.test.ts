// Grammars that schemaToGrammar writes for random schemas compile in llama.cpp: each constrains
// one generated token on the tiny fixture model (a grammar llama.cpp cannot parse would raise
// OptionsError from the sampler).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionsError } from '../../src/errors.js';
import { loadModel, type Context, type Model } from '../../src/index.js';
import { schemaToGrammar } from '../../src/tools/grammar.js';
import { FIXTURES } from '../fixtures.js';
import { schema } from '../schema-arbitrary.js';
import { collect } from './helpers.js';

const SCHEMAS = 30;

describe('schemaToGrammar output compiles in llama.cpp', () => {
  let model: Model;
  let ctx: Context;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.q8 });
    ctx = await model.createContext({ nCtx: 256 });
  });
  afterAll(() => model.dispose());

  it(`generates a token under the grammars of ${SCHEMAS} random schemas`, async () => {
    const grammars: Array<{ schema: unknown; grammar: string }> = [];
    for (const s of fc.sample(schema, { numRuns: 2000, seed: 20261130 })) {
      try {
        grammars.push({ schema: s, grammar: schemaToGrammar(s as Parameters<typeof schemaToGrammar>[0]) });
      } catch (err) {
        expect(err).toBeInstanceOf(OptionsError);
      }
      if (grammars.length === SCHEMAS) break;
    }
    expect(grammars).toHaveLength(SCHEMAS);
    const seq = ctx.sequence();
    const failures: string[] = [];
    for (const { schema: s, grammar } of grammars) {
      await seq.clear();
      try {
        const r = await collect(seq.generate('JSON:', { grammar, maxTokens: 1, temperature: 0 }));
        expect(r.tokens.length).toBeLessThanOrEqual(1);
      } catch (err) {
        failures.push(`${(err as Error).name}: ${(err as Error).message}\nschema: ${JSON.stringify(s)}\ngrammar:\n${grammar}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
