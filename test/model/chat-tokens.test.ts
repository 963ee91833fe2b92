/**
 * A chat's prompt tokenized message by message: equal to tokenizing the whole rendered prompt
 * over random multi-turn conversations (tools, unicode, template markers in text), and to
 * llama.cpp tokenizing the whole prompt text where the chat's rules do not differ from it.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, normalizeMessages, type ChatMessage, type ChatMessageInput, type Model, type ToolSpec } from '../../src/index.js';
import { formatChat } from '../../src/chat/format.js';
import { promptTokens } from '../../src/chat/prompt.js';
import { ChatTokens } from '../../src/chat/turn-tokens.js';
import { FIXTURES } from '../fixtures.js';

/** text that mixes ASCII, whitespace runs, unicode and the template's own markers */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.array(fc.constantFrom('a', 'Hello', ' ', '  ', '\n', '\n\n', '\t', '日本語', '🙂', 'é', '<|im_end|>', '<|im_start|>', '<tool_call>', '</tool_response>', '{"x": 1}', "'", '123'), { maxLength: 12 }).map((a) => a.join('')),
);
const word = fc.constantFrom('get_weather', 'lookup', 'add');
const message: fc.Arbitrary<ChatMessageInput[]> = fc.oneof(
  text.map((content) => [{ role: 'user' as const, content }]),
  text.map((content) => [{ role: 'assistant' as const, content }]),
  fc
    .array(fc.record({ name: word, arguments: fc.oneof(fc.dictionary(fc.constantFrom('city', 'q', 'n'), fc.oneof(text, fc.integer())), text) }), { minLength: 1, maxLength: 2 })
    .map((toolCalls) => [{ role: 'assistant' as const, content: '', toolCalls }]),
  fc.array(fc.record({ name: word, content: text }), { minLength: 1, maxLength: 3 }).map((rs) => rs.map((r) => ({ role: 'tool' as const, name: r.name, content: r.content }))),
);
const tool = (name: string): ToolSpec => ({ name, description: `${name} 🙂 tool`, parameters: { type: 'object', properties: { city: { type: 'string', description: 'a city' } }, required: ['city'] } });
const head = fc.record({
  systemPrompt: fc.option(text, { nil: undefined }),
  extra: fc.option(text, { nil: undefined }),
  tools: fc.constantFrom([], [tool('get_weather')], [tool('lookup'), tool('add')]),
});

describe('a chat prompt tokenized message by message', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
  });
  afterAll(() => model.dispose());

  it('equals tokenizing the whole rendered prompt, turn after turn, over random conversations', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 14 }).map((ms) => normalizeMessages(ms.flat())),
        fc.array(fc.tuple(head, fc.nat(4), fc.nat(2), fc.boolean()), { minLength: 1, maxLength: 6 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 128000 }), { maxLength: 6 }), { minLength: 4, maxLength: 4 }),
        (conversation, steps, replyIds) => {
          const cache = new ChatTokens(model);
          // replies: token ids "generated" for some plain assistant messages
          const replies = new Map<number, number[]>();
          conversation.forEach((m, i) => {
            if (m.role === 'assistant' && m.toolCalls === undefined && i % 2 === 0) replies.set(i, replyIds[i % 4]);
          });
          let end = 0;
          let start = 0;
          for (const [h, grow, dropOldest, again] of steps) {
            end = Math.min(conversation.length, end + grow);
            if (dropOldest > 1) start = Math.min(end, start + 1);
            const messages = conversation.slice(start, end);
            const mine = new Map([...replies].filter(([i]) => i >= start && i < end).map(([i, t]) => [i - start, t]));
            const system: ChatMessage[] = [];
            if (h.systemPrompt !== undefined) system.push({ role: 'system', content: h.systemPrompt });
            if (h.extra !== undefined) system.push({ role: 'system', content: h.extra });
            const full = promptTokens(model, 'chatml', [...system, ...messages], { tools: h.tools, replies: new Map([...mine].map(([i, t]) => [i + system.length, t])) });
            expect(cache.prompt(system, h.tools, messages, mine)).toEqual(full);
            if (again) expect(cache.prompt(system, h.tools, messages, mine)).toEqual(full);
          }
        },
      ),
      { numRuns: 120, seed: 20261130 },
    );
  });

  it('equals llama.cpp tokenizing the whole prompt text when no message holds template markers or leading whitespace', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 10 }), head, (ms, h) => {
        const messages = normalizeMessages(ms.flat());
        const system: ChatMessage[] = h.systemPrompt === undefined ? [] : [{ role: 'system', content: h.systemPrompt }];
        const all = [...system, ...messages];
        // the template's markers in a message are text, not special tokens, in the chat's prompt;
        // a reply is tokenized apart from the "assistant\n" before it, so whitespace leading it does not merge
        fc.pre(!/<\|im_(start|end)\|>/.test(JSON.stringify(all)) && all.every((m) => !(m.role === 'assistant' && /^\s/.test(m.content))));
        const cache = new ChatTokens(model);
        expect(cache.prompt(system, h.tools, messages, new Map())).toEqual(model.tokenize(formatChat(all, { tools: h.tools }), { special: true, addBos: true }));
      }),
      { numRuns: 120, seed: 20261201 },
    );
  });

  it('tokenizes only the messages a turn adds, and a run of tool results again once something follows it', () => {
    const cache = new ChatTokens(model);
    const history: ChatMessage[] = [{ role: 'user', content: 'Weather in Paris?' }];
    cache.prompt([], [], history, new Map());
    expect(cache.tokenizedMessages).toBe(1);
    history.push({ role: 'assistant', content: '', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }, { role: 'tool', name: 'get_weather', content: '18C' }, { role: 'tool', name: 'get_weather', content: 'sunny' });
    cache.prompt([], [], history, new Map());
    expect(cache.tokenizedMessages).toBe(1 + 3);
    history.push({ role: 'assistant', content: 'Sunny, 18C.' }, { role: 'user', content: 'Thanks' });
    const tokens = cache.prompt([], [], history, new Map());
    // the tool results render with a closing newline now that a message follows them
    expect(cache.tokenizedMessages).toBe(1 + 3 + 2 + 2);
    expect(tokens).toEqual(promptTokens(model, 'chatml', history));
    cache.prompt([], [], history, new Map());
    expect(cache.tokenizedMessages).toBe(8);
  });
});
