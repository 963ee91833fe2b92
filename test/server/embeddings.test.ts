/**
 * Embeddings over HTTP with the official clients: `openai` (which asks for base64 unless told
 * otherwise) and `ollama` (embed and the older embeddings), compared with the library's own vectors.
 */
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddingContext } from '../../src/index.js';
import { startServer, type Running } from './helpers.js';

const texts = ['The sea is blue.', 'A llama carries wool down the mountain to the market.', 'Vectors for retrieval'];
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('embeddings over HTTP', () => {
  let s: Running;
  let openai: OpenAI;
  let ollama: Ollama;
  let local: EmbeddingContext;
  let expected: Float32Array[];
  beforeAll(async () => {
    s = await startServer({ modelName: 'hermes3', embeddings: { ctx: 32 } });
    openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    ollama = new Ollama({ host: s.url });
    local = await s.model.createEmbeddingContext({ nCtx: 32 });
    expected = await local.embed(texts);
  });
  afterAll(async () => {
    await local.dispose();
    await s.close();
  });

  it('openai: embeddings.create with the client default (base64) and with float', async () => {
    const r = await openai.embeddings.create({ model: 'hermes3', input: texts });
    expect(r.object).toBe('list');
    expect(r.model).toBe('hermes3');
    expect(r.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const counts = texts.map((t) => s.model.tokenize(t, { addBos: true }).length);
    expect(r.usage).toEqual({ prompt_tokens: counts.reduce((a, b) => a + b), total_tokens: counts.reduce((a, b) => a + b) });
    for (let i = 0; i < texts.length; i++) {
      expect(r.data[i]!.embedding).toHaveLength(local.nEmbd);
      // base64 carries the float32 bytes exactly
      expect(maxAbsDiff(r.data[i]!.embedding, expected[i]!)).toBe(0);
    }
    const f = await openai.embeddings.create({ model: 'hermes3', input: texts[0]!, encoding_format: 'float' });
    expect(maxAbsDiff(f.data[0]!.embedding, expected[0]!)).toBeLessThan(1e-6);
    const ids = s.model.tokenize(texts[1]!, { addBos: true });
    const t = await openai.embeddings.create({ model: 'hermes3', input: [ids], encoding_format: 'float' });
    expect(maxAbsDiff(t.data[0]!.embedding, expected[1]!)).toBeLessThan(1e-6);
  });

  it('openai: typed errors for a long input, wrong dimensions, an unknown model and a bad input', async () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const tooLong = await openai.embeddings.create({ model: 'hermes3', input: long }).catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooLong as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
    expect((tooLong as Error).message).toMatch(/more than the embedding context's nCtx \(32\)/);
    const dims = await openai.embeddings.create({ model: 'hermes3', input: 'a', dimensions: 7 }).catch((e: unknown) => e);
    expect(dims).toBeInstanceOf(OpenAI.BadRequestError);
    expect((dims as Error).message).toMatch(new RegExp(`dimensions can only be ${local.nEmbd}`));
    await expect(openai.embeddings.create({ model: 'gpt-4', input: 'a' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(openai.embeddings.create({ model: 'hermes3', input: [] as string[] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(openai.embeddings.create({ model: 'hermes3', input: [[1, -5]] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(openai.embeddings.create({ model: 'hermes3', input: [[1, s.model.info.nVocab]] })).rejects.toThrow(/outside the vocabulary/);
  });

  it('ollama: embed (normalized, truncating by default) and the older embeddings', async () => {
    const r = await ollama.embed({ model: 'hermes3', input: texts });
    expect(r.model).toBe('hermes3');
    expect(r.embeddings).toHaveLength(3);
    for (let i = 0; i < texts.length; i++) expect(maxAbsDiff(r.embeddings[i]!, expected[i]!)).toBeLessThan(1e-6);
    expect(r.prompt_eval_count).toBeGreaterThan(texts.length);
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const cut = await ollama.embed({ model: 'hermes3', input: long });
    expect(cut.embeddings[0]).toHaveLength(local.nEmbd);
    await expect(ollama.embed({ model: 'hermes3', input: long, truncate: false })).rejects.toThrow(/truncate/);
    const legacy = await ollama.embeddings({ model: 'hermes3', prompt: texts[0]! });
    const [raw] = await local.embed(texts[0]!, { normalize: false });
    expect(maxAbsDiff(legacy.embedding, raw!)).toBeLessThan(1e-5);
    await expect(ollama.embed({ model: 'nope', input: 'a' })).rejects.toThrow(/does not exist on this server/);
  });

  it('counts embedded inputs, tokens and shared decodes in /metrics', async () => {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
    // the tests above embedded at least 3 + 1 + 1 + 3 + 1 + 1 inputs, several per decode
    expect(value('hermes3_embedding_inputs_total')).toBeGreaterThanOrEqual(10);
    expect(value('hermes3_embedding_decodes_total')).toBeLessThan(value('hermes3_embedding_inputs_total'));
    expect(value('hermes3_embedding_tokens_total')).toBeGreaterThan(value('hermes3_embedding_inputs_total'));
  });

  it('can be turned off', async () => {
    const off = await startServer({ embeddings: false });
    try {
      const res = await fetch(`${off.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'x', input: 'a' }) });
      expect(res.status).toBe(404);
    } finally {
      await off.close();
    }
  });
});
