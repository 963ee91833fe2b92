// Tools and JSON mode end to end. A random-weight model under a grammar still writes tool calls
// and JSON that parse and validate; a scripted model drives the whole tool loop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTool, loadModel, type ChatEvent, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { ScriptedChat } from './helpers.js';

async function events(iter: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  for await (const ev of iter) out.push(ev);
  return out;
}

const weather = defineTool({
  name: 'get_weather',
  description: 'Get the weather for a city.',
  parameters: z.object({ city: z.string().max(24).describe('City'), unit: z.enum(['celsius', 'fahrenheit']).optional().describe('Unit') }),
  handler: ({ city }) => ({ city, temperature: 21 }),
});
const calculator = defineTool({
  name: 'calculate',
  description: 'Evaluate arithmetic.',
  parameters: z.object({ expression: z.string().max(24).describe('Expression'), precision: z.number().int().min(0).max(6).optional().describe('Digits') }),
  handler: ({ expression }) => `${expression} = 4`,
});
const booking = defineTool({
  name: 'book_flight',
  description: 'Book a flight.',
  parameters: z.object({
    passenger: z.object({ name: z.string().max(20).describe('Name'), age: z.number().int().min(0).max(120).describe('Age') }).describe('Passenger'),
    cabin: z.enum(['economy', 'business']).describe('Cabin'),
    seats: z.array(z.number().int().min(1).max(40)).min(1).max(3).describe('Seat numbers'),
    confirmed: z.boolean().describe('Confirm now'),
  }),
  handler: () => 'booked',
});

const schemas = {
  person: z.object({ name: z.string().max(20), age: z.number().int().min(0).max(120), tags: z.array(z.enum(['a', 'b', 'c'])).max(3) }),
  forecast: z.object({ city: z.string().max(20), days: z.array(z.object({ day: z.number().int().min(1).max(7), sky: z.enum(['sun', 'rain']) })).min(1).max(3) }),
  union: z.object({ answer: z.union([z.string().max(10), z.number()]), note: z.string().max(16).optional(), flag: z.boolean().nullable() }),
  flags: z.object({ ok: z.boolean(), score: z.number(), level: z.literal('high').or(z.literal('low')) }),
};

describe('constrained generation on a random-weight model', () => {
  let model: Model;
  // Biasing the tokens that close strings, arrays and objects keeps a random model's JSON short;
  // the grammar alone decides what is allowed.
  let terse: Record<string, number>;
  const tally = { generated: 0, validated: 0 };
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
    terse = {};
    for (let id = 0; id < model.info.nVocab; id++) {
      const piece = model.detokenize([id]);
      if (/^["\]}]/.test(piece)) terse[id] = 4;
    }
  });
  afterAll(async () => {
    // the closing note reports this share: every constrained generation must validate
    console.log(`constrained generations validated: ${tally.validated} of ${tally.generated}`);
    await model.dispose();
  });

  it.each(Object.entries(schemas).flatMap(([name, schema]) => [1, 2, 3, 4].map((seed) => [name, seed, schema] as const)))(
    'JSON mode: %s, seed %i, parses and validates',
    async (_name, seed, schema) => {
      const chat = model.chat({ temperature: 0.9, seed, maxTokens: 400, logitBias: terse });
      tally.generated++;
      const r = await chat.ask('Answer in JSON.', { schema });
      expect(r.finishReason).toBe('stop');
      expect(schema.safeParse(JSON.parse(r.text)).success).toBe(true);
      expect(r.object).toEqual(schema.parse(JSON.parse(r.text)));
      tally.validated++;
      await chat.dispose();
    },
  );

  it.each([1, 2, 3, 4, 5])('tool calls with toolChoice required, seed %i, parse and validate', async (seed) => {
    const chat = model.chat({ temperature: 0.9, seed, maxTokens: 300, logitBias: terse });
    const evs = await events(chat.send('Help me.', { tools: [weather, calculator, booking], toolChoice: 'required', maxSteps: 2 }));
    const calls = evs.filter((e) => e.type === 'tool_call');
    const results = evs.filter((e) => e.type === 'tool_result');
    tally.generated++;
    expect(calls.length).toBeGreaterThan(0);
    for (const r of results) expect(r.type === 'tool_result' && r.error).toBeUndefined();
    tally.validated++;
    const done = evs[evs.length - 1];
    expect(done.type === 'done' && done.steps).toBeGreaterThanOrEqual(1);
    await chat.dispose();
  });

  it('forces the tool named by toolChoice', async () => {
    const chat = model.chat({ temperature: 0.9, seed: 9, maxTokens: 300, logitBias: terse });
    const r = await chat.ask('Book it.', { tools: [weather, booking], toolChoice: { name: 'book_flight' }, maxSteps: 1 });
    tally.generated++;
    expect(r.toolCalls.length).toBeGreaterThan(0);
    for (const c of r.toolCalls) {
      expect(c.name).toBe('book_flight');
      expect(booking.parameters.safeParse(c.arguments).success).toBe(true);
    }
    tally.validated++;
    expect(r.finishReason).toBe('max_steps');
    await chat.dispose();
  });

  it('offers no tools with toolChoice none', async () => {
    const chat = model.chat({ temperature: 0, maxTokens: 8 });
    const r = await chat.ask('Hi', { tools: [weather], toolChoice: 'none' });
    expect(r.toolCalls).toEqual([]);
    expect(r.usage.promptTokens).toBeLessThan(40);
    await chat.dispose();
  });

  it('accepts a raw GBNF grammar', async () => {
    const chat = model.chat({ temperature: 0.9, seed: 5, maxTokens: 20 });
    const r = await chat.ask('Yes or no?', { grammar: 'root ::= "yes" | "no"' });
    expect(['yes', 'no']).toContain(r.text);
    await chat.dispose();
  });
});

describe('the tool loop, with a scripted model', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
  });
  afterAll(() => model.dispose());

  const call = (name: string, args: object) => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;

  it('runs parallel calls concurrently, feeds results and errors back, and ends on the answer', async () => {
    let running = 0;
    let overlap = 0;
    const slow = (name: string, value: string) =>
      defineTool({
        name,
        description: name,
        parameters: z.object({ x: z.string() }),
        handler: async ({ x }) => {
          running++;
          overlap = Math.max(overlap, running);
          await new Promise((r) => setTimeout(r, 20));
          running--;
          if (x === 'boom') throw new Error('exploded');
          return `${value}:${x}`;
        },
      });
    const a = slow('tool_a', 'A');
    const b = slow('tool_b', 'B');
    const chat = new ScriptedChat(model, [
      `Let me look.\n${call('tool_a', { x: '1' })}\n${call('tool_b', { x: '2' })}`,
      `${call('tool_a', { x: 3 })}\n${call('tool_b', { x: 'boom' })}`,
      'All done: A:1 and B:2.',
    ]);
    const evs = await events(chat.send('Go', { tools: [a, b], maxSteps: 5 }));
    expect(evs.map((e) => e.type).filter((t, i, all) => t !== 'text' || all[i - 1] !== 'text')).toEqual(['text', 'tool_call', 'tool_call', 'tool_result', 'tool_result', 'tool_call', 'tool_call', 'tool_result', 'tool_result', 'text', 'done']);
    expect(overlap).toBe(2);
    const results = evs.filter((e) => e.type === 'tool_result') as Extract<ChatEvent, { type: 'tool_result' }>[];
    expect(results.map((r) => r.result ?? r.error)).toEqual([
      'A:1',
      'B:2',
      expect.stringMatching(/^invalid arguments for tool_a \(x: .*\); call it again/),
      'tool_b failed: exploded',
    ]);
    const done = evs[evs.length - 1] as Extract<ChatEvent, { type: 'done' }>;
    expect(done.finishReason).toBe('stop');
    expect(done.steps).toBe(3);
    expect(done.text).toBe('All done: A:1 and B:2.');
    expect(done.toolCalls.map((c) => c.name)).toEqual(['tool_a', 'tool_b', 'tool_a', 'tool_b']);
    // what the model saw on step 2: its calls, then the results grouped in one tool turn
    expect(chat.prompts[1]).toContain('<|im_start|>assistant\n<tool_call>\n{"name": "tool_a", "arguments": {"x": "1"}}\n</tool_call>\n<tool_call>\n{"name": "tool_b", "arguments": {"x": "2"}}\n</tool_call><|im_end|>\n');
    expect(chat.prompts[1]).toContain('<|im_start|>tool\n<tool_response>\n{"name": "tool_a", "content": "A:1"}\n</tool_response>\n<tool_response>\n{"name": "tool_b", "content": "B:2"}\n</tool_response><|im_end|><|im_start|>assistant\n');
    expect(chat.prompts[2]).toContain('{"name": "tool_b", "content": {"error": "tool_b failed: exploded"}}');
    expect(chat.history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant', 'tool', 'tool', 'assistant']);
    expect(chat.history[1]).toMatchObject({ role: 'assistant', content: 'Let me look.' });
  });

  it('stops at maxSteps with finish reason max_steps, leaving the last calls unrun', async () => {
    let runs = 0;
    const t = defineTool({ name: 'again', description: 'again', parameters: z.object({}), handler: () => ++runs });
    const chat = new ScriptedChat(model, [call('again', {}), call('again', {}), call('again', {})]);
    const r = await chat.ask('Loop', { tools: [t], maxSteps: 2 });
    expect(r.finishReason).toBe('max_steps');
    expect(r.steps).toBe(2);
    expect(runs).toBe(1);
    expect(r.toolCalls).toHaveLength(2);
  });

  it('returns calls of tools without a handler to the caller', async () => {
    const t = defineTool({ name: 'external', description: 'runs elsewhere', parameters: z.object({ q: z.string() }) });
    const chat = new ScriptedChat(model, [call('external', { q: 'x' })]);
    const r = await chat.ask('Do it', { tools: [t] });
    expect(r.finishReason).toBe('tool_call');
    expect(r.toolCalls).toEqual([{ name: 'external', arguments: { q: 'x' } }]);
  });

  it('reports unknown tools back to the model', async () => {
    const chat = new ScriptedChat(model, [call('nope', {}), 'ok']);
    const evs = await events(chat.send('x', { tools: [weather] }));
    const res = evs.find((e) => e.type === 'tool_result') as Extract<ChatEvent, { type: 'tool_result' }>;
    expect(res.error).toBe('there is no tool named "nope"; the tools are get_weather');
  });

  it('aborts while handlers run', async () => {
    const controller = new AbortController();
    const t = defineTool({
      name: 'wait',
      description: 'waits',
      parameters: z.object({}),
      handler: (_args, { signal }) =>
        new Promise((resolve) => {
          controller.abort();
          if (signal.aborted) resolve('stopped');
          else signal.addEventListener('abort', () => resolve('stopped'));
        }),
    });
    const chat = new ScriptedChat(model, [call('wait', {}), 'never']);
    const r = await chat.ask('x', { tools: [t], signal: controller.signal });
    expect(r.finishReason).toBe('abort');
    expect(chat.script).toEqual(['never']);
  });

  it('rejects invalid turn options', () => {
    const chat = new ScriptedChat(model, []);
    expect(() => chat.send('x', { tools: [weather], toolChoice: { name: 'other' } })).toThrow('no tool named "other" among tools');
    expect(() => chat.send('x', { tools: [weather], schema: z.object({}) })).toThrow('cannot be combined');
    expect(() => chat.send('x', { maxSteps: 0 })).toThrow('Invalid option maxSteps for send');
    expect(() => chat.send('x', { tools: [{ name: 'raw' }] as never })).toThrow('expected tools made by defineTool()');
  });
});
