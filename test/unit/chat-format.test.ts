import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { formatChat, renderChat, type ChatMessage, type ToolSpec } from '../../src/index.js';
import { pythonType } from '../../src/chat/pyjson.js';
import { HERMES_CHAT_TEMPLATE } from '../../src/testing/index.js';
import { root } from '../fixtures.js';
import { corpus, weather } from './chat-corpus.js';

const toolUse = new Template(readFileSync(join(root, 'vendor/llama.cpp/models/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja'), 'utf8'));
const plain = new Template(HERMES_CHAT_TEMPLATE);

// the templates' own message and tool shapes
function templateMessages(messages: ChatMessage[]) {
  return messages.map((m) =>
    m.role === 'assistant' && m.toolCalls
      ? { role: 'assistant', content: m.content, tool_calls: m.toolCalls.map((c) => ({ type: 'function', function: c })) }
      : m,
  );
}
const templateTools = (tools: ToolSpec[]) => tools.map((t) => ({ type: 'function', function: t }));

describe('formatChat conformance', () => {
  it('has a corpus of at least 20 conversations', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(20);
    expect(corpus.filter((c) => c.tools).length).toBeGreaterThanOrEqual(8);
  });

  it.each(corpus.map((c) => [c.name, c] as const))('%s', (_name, entry) => {
    const ours = formatChat(entry.messages, { tools: entry.tools, addGenerationPrompt: entry.addGenerationPrompt ?? true });
    const vars = { messages: templateMessages(entry.messages), bos_token: '', add_generation_prompt: entry.addGenerationPrompt ?? true };
    if (entry.tools) {
      expect(ours).toBe(toolUse.render({ ...vars, tools: templateTools(entry.tools) }));
    } else {
      expect(ours).toBe(plain.render(vars));
    }
  });
});

describe('renderChat', () => {
  it('keeps template special tokens apart from message text', () => {
    const parts = renderChat([{ role: 'user', content: 'a <|im_end|> b' }]);
    expect(parts).toEqual([
      { text: '<|im_start|>', special: true },
      { text: 'user\na <|im_end|> b', special: false },
      { text: '<|im_end|>', special: true },
      { text: '\n', special: false },
      { text: '<|im_start|>', special: true },
      { text: 'assistant\n', special: false },
    ]);
  });

  it('renders the tools system turn like the Hermes tool_use template', () => {
    expect(formatChat([{ role: 'user', content: 'Paris?' }], { tools: [weather] })).toMatchInlineSnapshot(`
      "<|im_start|>system
      You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug into functions. Here are the available tools: <tools> {"type": "function", "function": {"name": "get_weather", "description": "get_weather(city: str, unit: str) - Get the current weather for a city.

          Args:
              city(str): The city name, e.g. Paris        unit(str): Temperature unit", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name, e.g. Paris"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit "}}, "required": ["city"]}} </tools>Use the following pydantic model json schema for each tool call you will make: {"properties": {"name": {"title": "Name", "type": "string"}, "arguments": {"title": "Arguments", "type": "object"}}, "required": ["name", "arguments"], "title": "FunctionCall", "type": "object"}}
      For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags as follows:
      <tool_call>
      {"name": <function-name>, "arguments": <args-dict>}
      </tool_call><|im_end|>
      <|im_start|>user
      Paris?<|im_end|>
      <|im_start|>assistant
      "
    `);
  });

  it('writes the intended element type for arrays (the template writes list[Union[]])', () => {
    expect(pythonType({ type: 'array', items: { type: 'string' } })).toBe('list[str]');
    expect(pythonType({ type: 'array', items: { type: 'array', items: { type: 'integer' } } })).toBe('list[list[int]]');
    expect(pythonType({ type: 'array' })).toBe('list[Any]');
  });

  it('writes Any and dict where the template recurses forever or writes Union[]', () => {
    expect(pythonType({ type: ['string', 'null'] })).toBe('Union[str,Any]');
    expect(pythonType({ type: 'null' })).toBe('Any');
    expect(pythonType({ description: 'no type' })).toBe('Any');
    expect(pythonType(false)).toBe('Any');
    expect(pythonType({ type: 'object', additionalProperties: false })).toBe('dict');
    expect(pythonType({ type: 'object', additionalProperties: true })).toBe('dict[str, Any]');
    expect(pythonType({ type: 'object', additionalProperties: { type: 'integer' } })).toBe('dict[str, int]');
  });
});
