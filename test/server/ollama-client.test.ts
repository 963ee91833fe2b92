/**
 * The official `ollama` npm client against a real server: chat, streaming, generate, tools,
 * JSON format, tags, show, ps, version.
 */
import { Ollama, type ToolCall } from 'ollama';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type Running } from './helpers.js';

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Lima'], description: 'the city' } }, required: ['city'] },
  },
};

describe('the ollama client', () => {
  let s: Running;
  let ollama: Ollama;
  beforeAll(async () => {
    s = await startServer({ modelName: 'hermes3' });
    ollama = new Ollama({ host: s.url });
  });
  afterAll(() => s.close());

  it('lists, shows and reports the model', async () => {
    const tags = await ollama.list();
    expect(tags.models).toHaveLength(1);
    expect(tags.models[0].name).toBe('hermes3');
    expect(tags.models[0].details.format).toBe('gguf');
    expect(tags.models[0].details.quantization_level).toBe(s.model.info.fileType);
    expect(tags.models[0].size).toBeGreaterThan(1_000_000);
    const show = await ollama.show({ model: 'hermes3:latest' });
    expect(show.capabilities).toContain('tools');
    expect((show.model_info as unknown as Record<string, unknown>)['general.architecture']).toBe('llama');
    expect(show.details.family).toBe('llama');
    const ps = await ollama.ps();
    expect(ps.models[0].name).toBe('hermes3');
    const version = await ollama.version();
    expect(version.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('chats without streaming, with options mapped to the sampler', async () => {
    const ask = () =>
      ollama.chat({
        model: 'hermes3',
        messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }],
        options: { temperature: 0.9, top_k: 20, top_p: 0.9, seed: 7, num_predict: 10, repeat_penalty: 1.1 },
        stream: false,
      });
    const a = await ask();
    const b = await ask();
    expect(a.done).toBe(true);
    expect(a.message.role).toBe('assistant');
    expect(a.message.content).toBe(b.message.content);
    expect(a.eval_count).toBe(10);
    expect(a.done_reason).toBe('length');
    expect(a.prompt_eval_count).toBeGreaterThan(5);
    expect(a.eval_duration).toBeGreaterThan(0);
  });

  it('streams a chat as NDJSON pieces ending with done', async () => {
    const stream = await ollama.chat({ model: 'hermes3', messages: [{ role: 'user', content: 'Tell me more' }], options: { num_predict: 12 }, stream: true });
    let text = '';
    let pieces = 0;
    let last;
    for await (const part of stream) {
      if (part.message.content) {
        text += part.message.content;
        pieces++;
      }
      last = part;
    }
    expect(pieces).toBeGreaterThan(1);
    expect(text.length).toBeGreaterThan(0);
    expect(last!.done).toBe(true);
    expect(last!.eval_count).toBe(12);
  });

  it('generates from a prompt, streamed and not, raw and templated', async () => {
    const res = await ollama.generate({ model: 'hermes3', prompt: 'Why is the sky blue?', system: 'Answer as a poet.', options: { num_predict: 6, temperature: 0 }, stream: false });
    expect(res.done).toBe(true);
    expect(res.eval_count).toBe(6);
    const stream = await ollama.generate({ model: 'hermes3', prompt: 'Why is the sky blue?', system: 'Answer as a poet.', options: { num_predict: 6, temperature: 0 }, stream: true });
    let text = '';
    for await (const part of stream) text += part.response;
    expect(text).toBe(res.response);
    const raw = await ollama.generate({ model: 'hermes3', prompt: 'Once upon a time', raw: true, options: { num_predict: 4 }, stream: false });
    // raw: the prompt as it is, without the chat template around it
    expect(raw.prompt_eval_count).toBe(s.model.tokenize('Once upon a time', { addBos: true }).length);
  });

  it('calls a tool and takes its result back', async () => {
    const res = await ollama.chat({ model: 'hermes3', messages: [{ role: 'user', content: 'Weather in Lima?' }], tools: [weather], options: { num_predict: 200, temperature: 0.2, seed: 3 }, stream: false });
    // with tools offered the model may answer or call; the grammar makes any call well formed
    for (const call of res.message.tool_calls ?? []) {
      expect(call.function.name).toBe('get_weather');
      expect(['Paris', 'Lima']).toContain((call.function.arguments as { city: string }).city);
    }
    const follow = await ollama.chat({
      model: 'hermes3',
      messages: [
        { role: 'user', content: 'Weather in Lima?' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Lima' } } }] },
        { role: 'tool', content: '{"temperature": 19}', tool_name: 'get_weather' } as never,
      ],
      options: { num_predict: 5 },
      stream: false,
    });
    expect(follow.message.content.length).toBeGreaterThan(0);
  });

  it('streams tool calls as message.tool_calls when the model must call (tool_choice, an extension)', async () => {
    const request = { model: 'hermes3', messages: [{ role: 'user', content: 'Weather?' }], tools: [weather], tool_choice: 'required', options: { num_predict: 200 }, stream: true as const };
    const stream = await ollama.chat(request as never as Parameters<Ollama['chat']>[0] & { stream: true });
    const calls = [];
    let last;
    for await (const part of stream) {
      calls.push(...(part.message.tool_calls ?? []));
      last = part;
    }
    expect(last!.done).toBe(true);
    expect(calls.length).toBeGreaterThanOrEqual(1);
    for (const call of calls) {
      expect(call.function.name).toBe('get_weather');
      expect(['Paris', 'Lima']).toContain((call.function.arguments as { city: string }).city);
    }
  });

  it('ends a tool call cut short by num_predict with the arguments read so far, streamed and not', async () => {
    let cut = 0;
    for (const n of [22, 26, 30, 34, 38, 42]) {
      const request = { model: 'hermes3', messages: [{ role: 'user', content: 'Weather?' }], tools: [weather], tool_choice: 'required', options: { num_predict: n, seed: n } };
      const stream = await ollama.chat({ ...request, stream: true } as never as Parameters<Ollama['chat']>[0] & { stream: true });
      const calls: ToolCall[] = [];
      let last;
      for await (const part of stream) {
        calls.push(...(part.message.tool_calls ?? []));
        last = part;
      }
      // the stream ends as a stream does, not with an error line (the client throws on one)
      expect(last!.done).toBe(true);
      const whole = await ollama.chat({ ...request, stream: false } as never as Parameters<Ollama['chat']>[0] & { stream: false });
      for (const call of [...calls, ...(whole.message.tool_calls ?? [])]) {
        expect(call.function.name).toBe('get_weather');
        expect(typeof call.function.arguments).toBe('object');
      }
      const complete = (c: ToolCall) => ['Paris', 'Lima'].includes((c.function.arguments as { city?: string }).city ?? '');
      if (last!.done_reason === 'length' && calls.some((c) => !complete(c))) cut++;
    }
    // some of these lengths end inside a call's arguments (before its city is whole)
    expect(cut).toBeGreaterThan(0);
  });

  it('answers in JSON with format "json" and with a schema', async () => {
    const res = await ollama.chat({ model: 'hermes3', messages: [{ role: 'user', content: 'JSON' }], format: { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' } }, required: ['ok', 'n'], additionalProperties: false }, options: { num_predict: 60 }, stream: false });
    const value = JSON.parse(res.message.content) as { ok: boolean; n: number };
    expect(typeof value.ok).toBe('boolean');
    expect(Number.isInteger(value.n)).toBe(true);
    const anyObject = await ollama.generate({ model: 'hermes3', prompt: 'JSON', format: 'json', options: { num_predict: 30 }, stream: false });
    expect(anyObject.response!.startsWith('{')).toBe(true);
  });

  it('reports an unknown model and bad options as Ollama errors', async () => {
    await expect(ollama.chat({ model: 'llama3', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status_code: 404, error: expect.stringMatching(/does not exist/) });
    await expect(ollama.generate({ model: 'hermes3', prompt: 'x', options: { temperature: 'hot' as never } })).rejects.toMatchObject({ status_code: 400, error: expect.stringMatching(/options\.temperature/) });
  });
});
