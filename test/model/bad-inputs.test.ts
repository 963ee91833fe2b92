/**
 * Bad inputs that need a loaded model (the synthetic tiny Q8_0 one): files llama.cpp refuses,
 * JSON mode cut at maxTokens, aborts before, during and after a generation, use after dispose,
 * and a chat's history and KV cache after a failed turn. Rows of docs/bad-inputs.md.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AbortError, DisposedError, ModelLoadError, OptionsError, SchemaValidationError, defineTool, formatChat, loadModel, type ChatEvent, type Model } from '../../src/index.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { writeGguf } from '../../src/gguf/writer.js';
import { GgufValueType, type GgufTypedValue } from '../../src/gguf/types.js';
import { FIXTURES, root, runNode } from '../fixtures.js';
import { ScriptedChat, generate, greedy } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'hermes3-bad-model-'));
const prompt = formatChat([{ role: 'user', content: 'Hi there' }]);

/** The tiny model's metadata, changed by `edit`, in a file without tensors. */
async function metadataOnly(name: string, edit: (meta: Map<string, GgufTypedValue>) => void): Promise<string> {
  const source = await readGgufHeader(FIXTURES.q8);
  const meta = new Map<string, GgufTypedValue>();
  for (const [k, v] of source.metadata) {
    const value = v.type === GgufValueType.ARRAY ? { type: (v.value as { type: GgufValueType }).type, values: (v.value as { values: unknown[] }).values } : v.value;
    meta.set(k, { type: v.type, value } as GgufTypedValue);
  }
  edit(meta);
  const path = join(scratch, name);
  await writeGguf(path, meta, []);
  return path;
}

describe('files llama.cpp refuses', () => {
  it('refuses an unsupported architecture with a ModelLoadError naming it', async () => {
    const path = await metadataOnly('mamba9.gguf', (m) => m.set('general.architecture', { type: GgufValueType.STRING, value: 'mamba9' }));
    const err = await loadModel({ modelPath: path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toMatch(/^cannot load .*mamba9\.gguf: .*unknown model architecture: 'mamba9'/);
  });

  it('refuses a model file without a tokenizer with a ModelLoadError naming the missing key', async () => {
    const path = await metadataOnly('no-tokenizer.gguf', (m) => {
      for (const k of [...m.keys()]) if (k.startsWith('tokenizer.')) m.delete(k);
    });
    const err = await loadModel({ modelPath: path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toMatch(/tokenizer\.ggml\.model/);
  });
});

describe('generation and chats', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.q8 });
  });
  afterAll(() => model.dispose());

  const person = z.object({ name: z.string(), city: z.string(), age: z.number().int() });

  it('says a JSON-mode reply cut at maxTokens was cut before the JSON closed, and keeps the raw text', async () => {
    const chat = model.chat({ ...greedy });
    const err = await chat.ask('Describe a person.', { schema: person, maxTokens: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaValidationError);
    const e = err as SchemaValidationError;
    expect(e.code).toBe('ERR_SCHEMA_VALIDATION');
    expect(e.message).toBe("the reply was cut at maxTokens (3) after 3 tokens, before the JSON closed: raise maxTokens (or ask for a shorter object); the partial text is in the error's text");
    expect(e.text.startsWith('{')).toBe(true);
    expect(() => JSON.parse(e.text)).toThrow();
    await chat.dispose();
  });

  it('keeps history and cache consistent after a turn that failed schema validation: the next turn works', async () => {
    const chat = model.chat({ ...greedy });
    const err = await chat.ask('Describe a person.', { schema: person, maxTokens: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaValidationError);
    // as documented: the user message and the reply as generated stay in the history
    expect(chat.history).toEqual([
      { role: 'user', content: 'Describe a person.' },
      { role: 'assistant', content: (err as SchemaValidationError).text },
    ]);
    const next = await chat.ask('Say something else.', { maxTokens: 4 });
    expect(next.finishReason).toBe('length');
    expect(next.usage.completionTokens).toBe(4);
    // the failed turn is in the KV cache: only the new turn is evaluated
    expect(next.usage.cachedTokens).toBeGreaterThan(0);
    expect(chat.history.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(chat.history[3].content).toBe(next.text);
    await chat.dispose();
  });

  it('keeps history and cache consistent after an aborted turn: the next turn works and reuses the cache', async () => {
    const chat = model.chat({ ...greedy });
    const controller = new AbortController();
    let seen = '';
    let finish: string | undefined;
    for await (const ev of chat.send('Go on and on', { maxTokens: 100, signal: controller.signal }) as AsyncIterable<ChatEvent>) {
      if (ev.type === 'text') {
        seen += ev.text;
        if (seen.length > 0) controller.abort();
      } else if (ev.type === 'done') finish = ev.finishReason;
    }
    expect(finish).toBe('abort');
    expect(chat.history).toEqual([
      { role: 'user', content: 'Go on and on' },
      { role: 'assistant', content: seen },
    ]);
    const next = await chat.ask('And now?', { maxTokens: 3 });
    expect(next.finishReason).toBe('length');
    expect(next.usage.cachedTokens).toBeGreaterThan(0);
    expect(chat.history).toHaveLength(4);
    await chat.dispose();
  });

  it('ends a generation whose signal was aborted before it started, with finish reason abort', async () => {
    const ctx = await model.createContext({ nCtx: 256 });
    const seq = ctx.sequence();
    const r = await generate(seq, prompt, { maxTokens: 20, signal: AbortSignal.abort() });
    expect(r.last.finishReason).toBe('abort');
    expect(r.tokens.length).toBeLessThanOrEqual(1);
    // the sequence stays usable
    expect((await generate(seq, prompt, { maxTokens: 2 })).tokens).toHaveLength(2);
    await ctx.dispose();
  });

  it('ignores a signal aborted after the generation finished', async () => {
    const ctx = await model.createContext({ nCtx: 256 });
    const seq = ctx.sequence();
    const controller = new AbortController();
    const r = await generate(seq, prompt, { maxTokens: 3, signal: controller.signal });
    controller.abort();
    expect(r.last.finishReason).toBe('length');
    expect(r.tokens).toHaveLength(3);
    const again = await generate(seq, prompt, { maxTokens: 2, signal: controller.signal });
    expect(again.last.finishReason).toBe('abort');
    expect((await generate(seq, prompt, { maxTokens: 2 })).tokens).toHaveLength(2);
    await ctx.dispose();
  });

  it('refuses to use a chat, a context and a sequence after dispose with DisposedError', async () => {
    const chat = model.chat();
    await chat.dispose();
    expect(() => chat.send('x')).toThrow(DisposedError);
    expect(() => chat.reset()).toThrow(new DisposedError('the chat has been disposed'));
    const ctx = await model.createContext({ nCtx: 128 });
    const seq = ctx.sequence();
    await ctx.dispose();
    expect(() => ctx.sequence()).toThrow(DisposedError);
    expect(() => seq.generate(prompt)).toThrow(DisposedError);
    const ctx2 = await model.createContext({ nCtx: 128 });
    const seq2 = ctx2.sequence();
    await seq2.dispose();
    expect(() => seq2.generate(prompt)).toThrow(DisposedError);
    await ctx2.dispose();
  });
});

describe('tools and schemas', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.q8 });
  });
  afterAll(() => model.dispose());
  const call = (name: string) => `<tool_call>\n${JSON.stringify({ name, arguments: {} })}\n</tool_call>`;

  it('reports a tool result that cannot be written as JSON back to the model as an error, and writes a Date as JSON does', async () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const tools = [
      defineTool({ name: 'loop', description: 'circular', parameters: z.object({}), handler: () => circular }),
      defineTool({ name: 'big', description: 'bigint', parameters: z.object({}), handler: () => ({ n: 10n }) }),
      defineTool({ name: 'when', description: 'date', parameters: z.object({}), handler: () => ({ at: new Date(Date.UTC(2026, 0, 2)) }) }),
    ];
    const chat = new ScriptedChat(model, [`${call('loop')}\n${call('big')}\n${call('when')}`, 'done']);
    const evs: ChatEvent[] = [];
    for await (const ev of chat.send('go', { tools })) evs.push(ev);
    const results = evs.filter((e): e is Extract<ChatEvent, { type: 'tool_result' }> => e.type === 'tool_result');
    expect(results.map((r) => r.error)).toEqual([
      expect.stringMatching(/^loop returned a value that cannot be written as JSON \(Converting circular structure to JSON.*\); its handler must return plain data/),
      expect.stringMatching(/^big returned a value that cannot be written as JSON \(Do not know how to serialize a BigInt\)/),
      undefined,
    ]);
    expect(chat.prompts[1]).toContain('{"name": "when", "content": {"at": "2026-01-02T00:00:00.000Z"}}');
    expect(evs[evs.length - 1]).toMatchObject({ type: 'done', finishReason: 'stop', text: 'done' });
  });

  it('refuses a schema that is not a zod schema, and a message that is not a string', () => {
    const chat = new ScriptedChat(model, []);
    expect(() => chat.send('x', { schema: { type: 'object' } as never })).toThrow(OptionsError);
    expect(() => chat.send('x', { schema: { type: 'object' } as never })).toThrow(/Invalid option schema for send: expected a zod schema/);
    expect(() => chat.send(42 as never)).toThrow('Invalid message for send: expected a string, received number');
  });
});

describe('dispose and abort while loading', () => {
  it('aborts a model load whose signal fires while it loads, with AbortError', async () => {
    const controller = new AbortController();
    // the signal fires while the header is read, before llama.cpp starts: the load stops at its first step
    const loading = loadModel({ modelPath: FIXTURES.q8, signal: controller.signal });
    controller.abort();
    const err = await loading.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as Error).message).toMatch(/model loading was aborted/);
    // the next load works
    const model = await loadModel({ modelPath: FIXTURES.q8 });
    expect(model.info.nVocab).toBe(128256);
    await model.dispose();
  });

  it('disposes a model while a context is being created: the context fails with DisposedError', async () => {
    const model = await loadModel({ modelPath: FIXTURES.q8 });
    const pending = model.createContext({ nCtx: 256 });
    const disposed = model.dispose();
    const ctx = await pending.catch((e: unknown) => e);
    await disposed;
    expect(ctx).toBeInstanceOf(DisposedError);
    expect((ctx as Error).message).toBe('cannot create the context: the model has been disposed');
    await expect(model.createContext()).rejects.toBeInstanceOf(DisposedError);
  });

  it('disposes a chat while its first turn creates the context', async () => {
    const model = await loadModel({ modelPath: FIXTURES.q8 });
    const chat = model.chat({ ...greedy, nCtx: 256 });
    const it = chat.send('Hi', { maxTokens: 50 });
    const first = it.next();
    const disposed = chat.dispose();
    const r = await first.catch((e: unknown) => e);
    await it.return(undefined).catch(() => undefined);
    await disposed;
    // the turn ends as aborted, with nothing generated (or, if the sequence was gone first, DisposedError)
    if (r instanceof Error) expect(r).toBeInstanceOf(DisposedError);
    else expect((r as IteratorResult<ChatEvent>).value).toMatchObject({ type: 'done', finishReason: 'abort', text: '' });
    expect(() => chat.send('again')).toThrow(DisposedError);
    await model.dispose();
  });

  it('says why llama.cpp refused a hand-written grammar, and writes nothing to stderr', async () => {
    // a separate process, so that its stderr is all there is to read
    const script = `
      import { loadModel } from ${JSON.stringify(join(root, 'dist', 'index.js'))};
      const model = await loadModel({ modelPath: ${JSON.stringify(FIXTURES.q8)} });
      const ctx = await model.createContext({ nCtx: 256 });
      try {
        for await (const _ of ctx.sequence().generate('hi', { grammar: 'root ::= "a" | b' })) {}
      } catch (err) {
        console.log(err.constructor.name + ': ' + err.message);
      }
      await model.dispose();
    `;
    const r = await runNode(['--input-type=module', '-e', script]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^OptionsError: the GBNF grammar could not be parsed: .*Undefined rule identifier 'b'/);
    expect(r.stderr).toBe('');
  });
});
