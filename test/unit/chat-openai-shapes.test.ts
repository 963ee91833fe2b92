// OpenAI's message and tool shapes, beside the project's own: the same conversation renders the
// same bytes in either shape, and the same as the Hermes 3 tool_use template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import {
  OptionsError,
  formatChat,
  normalizeMessages,
  normalizeTools,
  renderChat,
  type ChatMessage,
  type ChatMessageInput,
  type OpenAIChatMessage,
  type OpenAIToolSpec,
} from '../../src/index.js';
import { root } from '../fixtures.js';
import { calculator, weather } from './chat-corpus.js';

const toolUse = new Template(readFileSync(join(root, 'vendor/llama.cpp/models/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja'), 'utf8'));

const openaiTools: OpenAIToolSpec[] = [weather, calculator].map(({ name, description, parameters }) => ({
  type: 'function',
  function: { name, description, parameters },
}));

// A conversation as an OpenAI client sends it back: arguments as compact JSON text (as
// JSON.stringify writes them), content null beside tool_calls, results paired by tool_call_id.
const openaiConversation: OpenAIChatMessage[] = [
  { role: 'system', content: 'Use tools when useful.' },
  { role: 'user', content: [{ type: 'text', text: 'Weather in Paris and Oslo,' }, { type: 'text', text: 'and 2+2?' }] },
  {
    role: 'assistant',
    content: null,
    tool_calls: [
      { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' } },
      { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
      { id: 'call_3', type: 'function', function: { name: 'calculate', arguments: '{"expression":"2+2","precision":0}' } },
    ],
  },
  { role: 'tool', tool_call_id: 'call_1', content: '{"name": "get_weather", "content": "21C"}' },
  { role: 'tool', tool_call_id: 'call_2', name: 'get_weather', content: '{"name": "get_weather", "content": "4C"}' },
  { role: 'tool', tool_call_id: 'call_3', content: [{ type: 'text', text: '{"name": "calculate", "content": 4}' }] },
  { role: 'assistant', content: 'Paris 21C, Oslo 4C, and 2+2=4.' },
  { role: 'user', content: 'Thanks!' },
];

const projectConversation: ChatMessage[] = [
  { role: 'system', content: 'Use tools when useful.' },
  { role: 'user', content: 'Weather in Paris and Oslo,\nand 2+2?' },
  {
    role: 'assistant',
    content: '',
    toolCalls: [
      { name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } },
      { name: 'get_weather', arguments: { city: 'Oslo' } },
      { name: 'calculate', arguments: { expression: '2+2', precision: 0 } },
    ],
  },
  { role: 'tool', content: '{"name": "get_weather", "content": "21C"}' },
  { role: 'tool', name: 'get_weather', content: '{"name": "get_weather", "content": "4C"}' },
  { role: 'tool', content: '{"name": "calculate", "content": 4}' },
  { role: 'assistant', content: 'Paris 21C, Oslo 4C, and 2+2=4.' },
  { role: 'user', content: 'Thanks!' },
];

/**
 * The conversation as a Transformers user hands it to apply_chat_template: arguments as dicts,
 * content as strings (text parts joined with a newline). Written out here, apart from the code
 * under test.
 */
function asTemplateInput(messages: OpenAIChatMessage[]) {
  return messages.map((m) => {
    const content = Array.isArray(m.content) ? m.content.map((p) => p.text).join('\n') : m.content;
    if (m.role !== 'assistant' || !m.tool_calls) return { ...m, content };
    const tool_calls = m.tool_calls.map((c) => ({
      ...c,
      function: { ...c.function, arguments: typeof c.function.arguments === 'string' ? JSON.parse(c.function.arguments) : c.function.arguments },
    }));
    return { ...m, content, tool_calls };
  });
}

const jinja = (messages: unknown[], tools: unknown[], addGenerationPrompt = true) =>
  toolUse.render({ messages, tools, bos_token: '', add_generation_prompt: addGenerationPrompt });

function thrown(fn: () => unknown): OptionsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OptionsError);
    expect((err as OptionsError).code).toBe('ERR_OPTIONS');
    return err as OptionsError;
  }
  throw new Error('expected an OptionsError');
}

describe('OpenAI message and tool shapes', () => {
  it('render byte-equal to the project shape and to the tool_use template', () => {
    const ours = formatChat(openaiConversation, { tools: openaiTools });
    expect(ours).toBe(formatChat(projectConversation, { tools: [weather, calculator] }));
    expect(ours).toBe(jinja(asTemplateInput(openaiConversation), openaiTools));
    // the same parts too: template tokens apart from text, the assistant's reply marked
    expect(renderChat(openaiConversation, { tools: openaiTools })).toEqual(renderChat(projectConversation, { tools: [weather, calculator] }));
  });

  it('renders JSON-text arguments as the template renders a mapping, i.e. as the model writes a call', () => {
    const messages: ChatMessageInput[] = [
      { role: 'user', content: 'Wetter in München?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{"city":"München","extra":{"days":[1,2.5],"at":null,"ok":true}}' } }],
      },
    ];
    const text = formatChat(messages, { tools: openaiTools, addGenerationPrompt: false });
    expect(text.slice(text.indexOf('<|im_start|>assistant'))).toBe(
      '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "München", "extra": {"days": [1, 2.5], "at": null, "ok": true}}}\n</tool_call><|im_end|>\n',
    );
    // the template itself prints a string as it is: OpenAI's compact text would reach the model
    // in a spacing it never writes (and miss the KV cache of the call it generated)
    expect(jinja(messages, openaiTools)).toContain('"arguments": {"city":"München","extra"');
    // text already spaced as the template prints a mapping: the template shows it as it is, and so do we
    const spaced: OpenAIChatMessage[] = [
      { role: 'user', content: 'Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } }] },
      { role: 'tool', tool_call_id: 'c', content: '"sunny"' },
    ];
    expect(formatChat(spaced, { tools: openaiTools })).toBe(jinja(spaced, openaiTools));
  });

  it("takes object arguments, missing content and the template's own unwrapped call form", () => {
    const messages: ChatMessageInput[] = [
      { role: 'user', content: 'Paris and Oslo?' },
      {
        role: 'assistant',
        tool_calls: [
          { id: 'a', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } },
          { function: { name: 'get_weather', arguments: { city: 'Oslo', unit: 'fahrenheit' } } },
        ],
      } as OpenAIChatMessage,
      { role: 'tool', tool_call_id: 'a', content: '"21C"' },
      { role: 'tool', tool_call_id: 'b', content: '"40F"' },
    ];
    const tools = [openaiTools[0], calculator];
    expect(formatChat(messages, { tools })).toBe(jinja(messages, tools));
  });

  it('joins text parts with a newline in every role and reads developer as system', () => {
    const parts = (...texts: string[]) => texts.map((text) => ({ type: 'text' as const, text }));
    const messages: OpenAIChatMessage[] = [
      { role: 'developer', content: parts('Rule one.', 'Rule two.') },
      { role: 'user', content: parts('a', '', 'b') },
      { role: 'assistant', content: parts('reply') },
      { role: 'user', content: [] },
    ];
    expect(normalizeMessages(messages)).toEqual([
      { role: 'system', content: 'Rule one.\nRule two.' },
      { role: 'user', content: 'a\n\nb' },
      { role: 'assistant', content: 'reply' },
      { role: 'user', content: '' },
    ]);
    expect(formatChat(messages, { tools: openaiTools })).toBe(jinja(asTemplateInput(messages).map((m) => ({ ...m, role: m.role === 'developer' ? 'system' : m.role })), openaiTools));
  });

  it('takes both shapes in one list, and the project shape as before', () => {
    expect(normalizeTools([openaiTools[0], calculator])).toEqual([weather, calculator]);
    expect(normalizeMessages([...openaiConversation.slice(0, 3), ...projectConversation.slice(3)])).toEqual(projectConversation);
    // the project's string arguments are the model's own text, shown as they are
    const own: ChatMessage[] = [{ role: 'assistant', content: 'x', toolCalls: [{ name: 'calculate', arguments: '{"expression":"1+1"} trailing' }] }];
    expect(formatChat(own, { addGenerationPrompt: false })).toBe('<|im_start|>assistant\n<tool_call>\n{"name": "calculate", "arguments": {"expression":"1+1"} trailing}\n</tool_call><|im_end|>\n');
  });

  it('returns new objects and leaves the input alone', () => {
    const input = structuredClone(openaiConversation);
    const out = normalizeMessages(input);
    expect(input).toEqual(openaiConversation);
    expect(out[0]).not.toBe(input[0]);
  });
});

describe('messages and tools that fit neither shape', () => {
  const call = (fn: Record<string, unknown>) => [
    { role: 'user', content: 'Paris?' },
    { role: 'assistant', content: 'Looking.' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: fn }] },
  ];
  const cases: Array<[string, () => unknown, string | RegExp]> = [
    ['null', () => formatChat(null as never), 'Invalid messages: expected an array of messages, received null'],
    ['a string', () => renderChat('Hello' as never), "Invalid messages: expected an array of messages, received 'Hello' (string)"],
    ['a message that is not an object', () => formatChat([{ role: 'user', content: 'a' }, 'b'] as never), "Invalid messages[1]: expected a message object { role, content }, received 'b' (string)"],
    [
      'an unknown role',
      () => formatChat([{ role: 'user', content: 'a' }, { role: 'robot', content: 'b' }] as never),
      "Invalid messages[1].role: expected 'system', 'user', 'assistant', 'tool' or 'developer', received 'robot' (string)",
    ],
    ['numeric content', () => formatChat([{ role: 'user', content: 42 }] as never), "Invalid messages[0].content: expected a string or an array of text parts { type: 'text', text }, received 42 (number)"],
    ['null content without tool calls', () => formatChat([{ role: 'assistant', content: null }] as never), "Invalid messages[0].content: expected a string or an array of text parts { type: 'text', text }, received null"],
    [
      'an image part',
      () => formatChat([{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,' } }] }] as never),
      "Invalid messages[0].content[1].type: expected 'text', received 'image_url' (string); images and other media are not supported by this model (Hermes 3 reads text only)",
    ],
    ['a text part without text', () => formatChat([{ role: 'tool', tool_call_id: 'c', content: [{ type: 'text' }] }] as never), 'Invalid messages[0].content[0].text: expected a string, received undefined'],
    ['a tool call without a name', () => formatChat(call({ arguments: '{}' }) as never), 'Invalid messages[2].tool_calls[0].function.name: expected a string, received undefined'],
    [
      'arguments that are a string but not JSON',
      () => formatChat(call({ name: 'get_weather', arguments: '{city: Paris}' }) as never),
      /^Invalid messages\[2\]\.tool_calls\[0\]\.function\.arguments: expected an object or a JSON string of an object, received '\{city: Paris\}' \(string\) \(not JSON: .+\)$/,
    ],
    [
      'arguments that are JSON but not an object',
      () => formatChat(call({ name: 'get_weather', arguments: '["Paris"]' }) as never),
      `Invalid messages[2].tool_calls[0].function.arguments: expected an object or a JSON string of an object, received '["Paris"]' (string) (JSON, but not of an object)`,
    ],
    [
      'missing arguments',
      () => formatChat(call({ name: 'get_weather' }) as never),
      'Invalid messages[2].tool_calls[0].function.arguments: expected an object or a JSON string of an object, received undefined',
    ],
    [
      'tool_calls that are not an array',
      () => formatChat([{ role: 'assistant', content: null, tool_calls: { id: 'c' } }] as never),
      'Invalid messages[0].tool_calls: expected an array of tool calls, received an object',
    ],
    [
      'a tool call of another type',
      () => formatChat([{ role: 'assistant', tool_calls: [{ type: 'custom', function: { name: 'x', arguments: '{}' } }] }] as never),
      "Invalid messages[0].tool_calls[0].type: expected 'function', received 'custom' (string)",
    ],
    [
      'both toolCalls and tool_calls',
      () => formatChat([{ role: 'assistant', content: '', toolCalls: [], tool_calls: [] }] as never),
      'Invalid messages[0]: has both toolCalls and tool_calls; give one of them',
    ],
    ['a project-shape call without a name', () => formatChat([{ role: 'assistant', content: '', toolCalls: [{ arguments: {} }] }] as never), 'Invalid messages[0].toolCalls[0].name: expected a string, received undefined'],
    ['a non-string tool_call_id', () => formatChat([{ role: 'tool', tool_call_id: 7, content: 'x' }] as never), 'Invalid messages[0].tool_call_id: expected a string, received 7 (number)'],
    ['tools that are not an array', () => formatChat([], { tools: { type: 'function' } as never }), 'Invalid tools: expected an array of tools, received an object'],
    [
      'an OpenAI tool without a name',
      () => formatChat([], { tools: [openaiTools[0], { type: 'function', function: { description: 'x' } }] as never }),
      'Invalid tools[1].function.name: expected a string, received undefined',
    ],
    ['a project tool without a name', () => formatChat([], { tools: [{ description: 'x' }] as never }), 'Invalid tools[0].name: expected a string, received undefined'],
    ['parameters that are not an object', () => formatChat([], { tools: [{ type: 'function', function: { name: 'x', parameters: 'none' } }] as never }), "Invalid tools[0].function.parameters: expected a JSON Schema object, received 'none' (string)"],
    ['a tool that is not an object', () => normalizeTools(['get_weather']), "Invalid tools[0]: expected a tool { type: 'function', function: { name, description, parameters } } or { name, description, parameters }, received 'get_weather' (string)"],
    ['a prefix of the caller', () => normalizeMessages([{ role: 'robot' }], 'history'), "Invalid history[0].role: expected 'system', 'user', 'assistant', 'tool' or 'developer', received 'robot' (string)"],
  ];

  it.each(cases)('%s', (_name, fn, message) => {
    const err = thrown(fn);
    if (typeof message === 'string') expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
  });
});
