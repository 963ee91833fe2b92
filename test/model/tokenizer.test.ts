// Tokenization against the upstream test vectors shipped with the Llama 3 vocabulary.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/index.js';
import { FIXTURES, vocabPath } from '../fixtures.js';

function vectors(): Array<[string, number[]]> {
  const inputs = readFileSync(`${vocabPath}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  const outputs = readFileSync(`${vocabPath}.out`, 'utf8').split('\n');
  // the input file ends with a separator line, which leaves one empty piece
  if (inputs.length === outputs.length) inputs.pop();
  while (outputs.length > inputs.length && outputs[outputs.length - 1] === '') outputs.pop();
  expect(inputs.length).toBe(outputs.length);
  return inputs.map((text, i) => [text, outputs[i].trim() === '' ? [] : outputs[i].trim().split(/\s+/).map(Number)]);
}

describe('tokenizer', () => {
  let vocab: Model;
  let model: Model;
  beforeAll(async () => {
    vocab = await loadModel({ modelPath: vocabPath, vocabOnly: true });
    model = await loadModel({ modelPath: FIXTURES.f16 });
  });
  afterAll(async () => {
    await vocab.dispose();
    await model.dispose();
  });

  const cases = vectors();
  it('has the upstream test vectors', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases.map(([text, ids], i) => [i, JSON.stringify(text).slice(0, 40), text, ids] as const))(
    'vector %i %s',
    (_i, _label, text, ids) => {
      expect(vocab.tokenize(text)).toEqual(ids);
      // the synthetic model carries the same vocabulary
      expect(model.tokenize(text)).toEqual(ids);
    },
  );

  it('round-trips text through detokenize', () => {
    for (const [text] of cases) expect(vocab.detokenize(vocab.tokenize(text))).toBe(text);
  });

  it('parses special tokens only when asked', () => {
    const im = model.tokenize('<|im_start|>user', { special: true });
    expect(im[0]).toBe(128039);
    expect(model.tokenize('<|im_start|>user', { special: false })).not.toContain(128039);
  });

  it('adds BOS when asked and the model wants it', () => {
    expect(model.info.specialTokens.addBos).toBe(true);
    expect(model.tokenize('hi', { addBos: true })[0]).toBe(model.info.specialTokens.bos);
    expect(model.tokenize('hi')[0]).not.toBe(model.info.specialTokens.bos);
  });

  it('marks <|im_end|> as end of generation', () => {
    expect(model.info.specialTokens.eos).toBe(128040);
    expect(model.info.specialTokens.eog).toContain(128040);
    expect(model.detokenize([128040])).toBe('');
    expect(model.detokenize([128040], { special: true })).toBe('<|im_end|>');
  });

  it('rejects token ids outside the vocabulary', () => {
    expect(() => model.detokenize([128256])).toThrowError(/outside the vocabulary/);
  });
});
