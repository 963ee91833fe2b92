/**
 * The official `openai` npm client against a real server: chat, streaming, a tool round trip
 * with the results fed back, JSON mode with a zod schema, text completions, models.
 * The synthetic model writes random tokens: the tests check shapes and behaviour, and the
 * grammar guarantees that tool arguments and JSON replies parse.
 */
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startServer, type Running } from './helpers.js';

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'Tokyo', 'Lima'], description: 'the city' }, days: { type: 'integer', description: 'days ahead' } },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
};

describe('the openai client', () => {
  let s: Running;
  let client: OpenAI;
  beforeAll(async () => {
    s = await startServer({ apiKey: 'sk-test-key' });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-test-key', maxRetries: 0 });
  });
  afterAll(() => s.close());

  it('lists the model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny-q8_0']);
    const one = await client.models.retrieve('tiny-q8_0');
    expect(one.owned_by).toBe('hermes3-native');
  });

  it('answers a chat, and a resent conversation reuses the cached prefix', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You are Hermes.' },
      { role: 'user', content: 'Say something.' },
    ];
    const first = await client.chat.completions.create({ model: 'tiny-q8_0', messages, max_tokens: 12, temperature: 0, seed: 1 });
    const reply = first.choices[0].message;
    expect(first.object).toBe('chat.completion');
    expect(reply.role).toBe('assistant');
    expect(typeof reply.content).toBe('string');
    expect(['stop', 'length']).toContain(first.choices[0].finish_reason);
    expect(first.usage!.completion_tokens).toBeGreaterThan(0);
    expect(first.usage!.total_tokens).toBe(first.usage!.prompt_tokens + first.usage!.completion_tokens);

    // the client resends the whole conversation with one more turn: only the new turn is evaluated
    messages.push({ role: 'assistant', content: reply.content }, { role: 'user', content: 'And again.' });
    const second = await client.chat.completions.create({ model: 'tiny-q8_0', messages, max_tokens: 4, temperature: 0 });
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThanOrEqual(first.usage!.prompt_tokens + first.usage!.completion_tokens - 1);
    expect(second.usage!.prompt_tokens - cached).toBeLessThan(20);
  });

  it('streams a chat with usage at the end', async () => {
    const stream = await client.chat.completions.create({
      model: 'tiny-q8_0',
      messages: [{ role: 'user', content: 'Stream please.' }],
      max_tokens: 16,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let pieces = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.content) {
          text += c.delta.content;
          pieces++;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    expect(pieces).toBeGreaterThan(1);
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe('length');
    expect(usage!.completion_tokens).toBe(16);
  });

  it('takes sampling options: the same seed gives the same reply; stop strings end it', async () => {
    const ask = (seed: number) =>
      client.chat.completions.create({
        model: 'tiny-q8_0',
        messages: [{ role: 'user', content: 'Random words.' }],
        max_tokens: 12, temperature: 1.2, top_p: 0.9, seed, presence_penalty: 0.5, frequency_penalty: 0.5,
      });
    const [a, b] = [await ask(42), await ask(42)];
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
    const words = a.choices[0].message.content!;
    const stop = words.slice(Math.floor(words.length / 2), Math.floor(words.length / 2) + 2);
    const stopped = await client.chat.completions.create({
      model: 'tiny-q8_0', messages: [{ role: 'user', content: 'Random words.' }], max_tokens: 12, temperature: 1.2, top_p: 0.9, seed: 42,
      presence_penalty: 0.5, frequency_penalty: 0.5, stop: [stop],
    });
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(stopped.choices[0].message.content).toBe(words.slice(0, words.indexOf(stop)));
  });

  it('logit_bias of 100 makes a token all but certain, -100 bans it', async () => {
    const res = await client.chat.completions.create({
      model: 'tiny-q8_0', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, logit_bias: { '1000': 100 },
    });
    expect(res.choices[0].message.content).toBe(s.model.detokenize([1000, 1000, 1000]));
  });

  it('makes a tool round trip: a streamed call, the result fed back, then text', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris in 2 days?' }];
    const stream = await client.chat.completions.create({
      model: 'tiny-q8_0', messages, tools: [weatherTool], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 120, stream: true,
    });
    const calls: { id: string; name: string; arguments: string; pieces: number }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        for (const d of c.delta.tool_calls ?? []) {
          if (d.id) calls[d.index] = { id: d.id, name: d.function!.name!, arguments: '', pieces: 0 };
          if (d.function?.arguments) {
            calls[d.index].arguments += d.function.arguments;
            calls[d.index].pieces++;
          }
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    expect(finish).toBe('tool_calls');
    expect(calls).toHaveLength(1);
    expect(calls[0].id).toMatch(/^call_/);
    expect(calls[0].name).toBe('get_weather');
    // the arguments arrive as they are generated, in several pieces
    expect(calls[0].pieces).toBeGreaterThan(1);
    const args = JSON.parse(calls[0].arguments) as { city: string; days: number };
    expect(['Paris', 'Tokyo', 'Lima']).toContain(args.city);
    expect(Number.isInteger(args.days)).toBe(true);

    messages.push(
      { role: 'assistant', content: null, tool_calls: [{ id: calls[0].id, type: 'function', function: { name: calls[0].name, arguments: calls[0].arguments } }] },
      { role: 'tool', tool_call_id: calls[0].id, content: JSON.stringify({ temperature: 21, sky: 'clear' }) },
    );
    const answer = await client.chat.completions.create({ model: 'tiny-q8_0', messages, tools: [weatherTool], tool_choice: 'none', max_tokens: 8 });
    expect(answer.choices[0].message.tool_calls).toBeUndefined();
    expect(answer.choices[0].finish_reason).toBe('length');
    expect(answer.choices[0].message.content!.length).toBeGreaterThan(0);
  });

  it('returns tool calls without streaming, and a named tool_choice calls that tool', async () => {
    const other = { type: 'function' as const, function: { name: 'get_time', description: 'Time now', parameters: { type: 'object', properties: {}, additionalProperties: false } } };
    const res = await client.chat.completions.create({
      model: 'tiny-q8_0', messages: [{ role: 'user', content: 'Time?' }], tools: [weatherTool, other],
      tool_choice: { type: 'function', function: { name: 'get_time' } }, max_tokens: 60,
    });
    const msg = res.choices[0].message;
    expect(res.choices[0].finish_reason).toBe('tool_calls');
    expect(msg.tool_calls).toHaveLength(1);
    const call = msg.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe('function');
    expect(call.function.name).toBe('get_time');
    expect(JSON.parse(call.function.arguments)).toEqual({});
  });

  it('parses and validates a json_schema reply (zodResponseFormat)', async () => {
    const Verdict = z.object({ answer: z.enum(['yes', 'no']), score: z.number().int(), sure: z.boolean() });
    const res = await client.chat.completions.parse({
      model: 'tiny-q8_0', messages: [{ role: 'user', content: 'Is it raining?' }], response_format: zodResponseFormat(Verdict, 'verdict'), max_tokens: 200,
    });
    const parsed = res.choices[0].message.parsed;
    expect(parsed).not.toBeNull();
    expect(Verdict.parse(parsed)).toEqual(parsed);
  });

  it('answers json_object mode with a JSON object', async () => {
    const res = await client.chat.completions.create({
      model: 'tiny-q8_0', messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' }, max_tokens: 60, temperature: 0,
    });
    if (res.choices[0].finish_reason === 'stop') expect(typeof JSON.parse(res.choices[0].message.content!)).toBe('object');
    else expect(res.choices[0].message.content!.startsWith('{')).toBe(true);
  });

  it('completes raw text, streamed and not', async () => {
    const res = await client.completions.create({ model: 'tiny-q8_0', prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
    expect(res.object).toBe('text_completion');
    expect(res.choices[0].finish_reason).toBe('length');
    expect(res.usage!.completion_tokens).toBe(5);
    const stream = await client.completions.create({ model: 'tiny-q8_0', prompt: 'Once upon a time', max_tokens: 5, temperature: 0, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(res.choices[0].text);
  });

  it('refuses a wrong key and an unknown model with typed client errors', async () => {
    const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const bad = await client.chat.completions.create({ model: 'tiny-q8_0', messages: [{ role: 'robot', content: 'x' } as never] }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as Error).message).toMatch(/messages\[0\]\.role/);
  });
});
