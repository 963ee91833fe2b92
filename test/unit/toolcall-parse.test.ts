import { describe, expect, it } from 'vitest';
import { ToolCallStream, parseToolCalls, type ParsedOutput } from '../../src/tools/parse.js';

const w = (city: string) => ({ name: 'get_weather', arguments: { city } });

// [description, model output, expected]
const cases: Array<[string, string, ParsedOutput]> = [
  ['plain text', 'Hello there!', { content: 'Hello there!', toolCalls: [] }],
  ['empty', '', { content: '', toolCalls: [] }],
  ['canonical call', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['no newlines', '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['keys reversed', '<tool_call>\n{"arguments": {"city": "Paris"}, "name": "get_weather"}\n</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['single quotes', "<tool_call>\n{'name': 'get_weather', 'arguments': {'city': 'Paris'}}\n</tool_call>", { content: '', toolCalls: [w('Paris')] }],
  ['python literals', "<tool_call>\n{'name': 'set', 'arguments': {'on': True, 'off': False, 'x': None}}\n</tool_call>", { content: '', toolCalls: [{ name: 'set', arguments: { on: true, off: false, x: null } }] }],
  ['apostrophe inside double quotes', `<tool_call>\n{'name': 'say', 'arguments': {'text': "it's fine"}}\n</tool_call>`, { content: '', toolCalls: [{ name: 'say', arguments: { text: "it's fine" } }] }],
  ['escaped quote in single quotes', "<tool_call>{'name': 'say', 'arguments': {'text': 'it\\'s'}}</tool_call>", { content: '', toolCalls: [{ name: 'say', arguments: { text: "it's" } }] }],
  ['arguments as a JSON string', '<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}\n</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['arguments as an empty string', '<tool_call>{"name": "get_time", "arguments": ""}</tool_call>', { content: '', toolCalls: [{ name: 'get_time', arguments: {} }] }],
  ['no arguments key', '<tool_call>{"name": "get_time"}</tool_call>', { content: '', toolCalls: [{ name: 'get_time', arguments: {} }] }],
  ['missing closing tag', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}', { content: '', toolCalls: [w('Paris')] }],
  ['missing closing tag, trailing newline', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n', { content: '', toolCalls: [w('Paris')] }],
  ['json fence inside the block', '<tool_call>\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\n</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['fence around the block', '```json\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n```', { content: '', toolCalls: [w('Paris')] }],
  ['text before a call', 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', { content: 'Let me check.', toolCalls: [w('Paris')] }],
  ['text after a call', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\nOne moment.', { content: 'One moment.', toolCalls: [w('Paris')] }],
  ['two blocks', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', { content: '', toolCalls: [w('Paris'), w('Oslo')] }],
  ['two blocks, first unclosed', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', { content: '', toolCalls: [w('Paris'), w('Oslo')] }],
  ['several calls in one block, one per line', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', { content: '', toolCalls: [w('Paris'), w('Oslo')] }],
  ['several calls in one block, back to back', '<tool_call>{"name": "a", "arguments": {}}{"name": "b", "arguments": {}}</tool_call>', { content: '', toolCalls: [{ name: 'a', arguments: {} }, { name: 'b', arguments: {} }] }],
  ['several calls as a JSON array', '<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]</tool_call>', { content: '', toolCalls: [{ name: 'a', arguments: {} }, { name: 'b', arguments: { x: 1 } }] }],
  ['scratch_pad before a call', '<scratch_pad>\nThe user wants the weather.\n</scratch_pad>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['think before an answer', '<think>Easy one.</think>\nThe answer is 4.', { content: 'The answer is 4.', toolCalls: [] }],
  ['think with a tool_call mention inside', '<think>I could use <tool_call> here</think>Sure.', { content: 'Sure.', toolCalls: [] }],
  ['unclosed think is dropped', 'Hi <think>still thinking', { content: 'Hi', toolCalls: [] }],
  ['nested arguments', '<tool_call>\n{"name": "book", "arguments": {"passenger": {"name": "Ada", "age": 36}, "seats": [1, 2], "note": "a } brace"}}\n</tool_call>', { content: '', toolCalls: [{ name: 'book', arguments: { passenger: { name: 'Ada', age: 36 }, seats: [1, 2], note: 'a } brace' } }] }],
  ['unicode arguments', '<tool_call>{"name": "get_weather", "arguments": {"city": "München 🌦"}}</tool_call>', { content: '', toolCalls: [w('München 🌦')] }],
  ['trailing comma', '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris",},}</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['OpenAI-style function wrapper', '<tool_call>{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['parameters instead of arguments', '<tool_call>{"name": "get_weather", "parameters": {"city": "Paris"}}</tool_call>', { content: '', toolCalls: [w('Paris')] }],
  ['unparseable JSON stays content', 'x <tool_call>{"name": "get_weather", "arguments": {city: Paris}}</tool_call>', { content: 'x <tool_call>{"name": "get_weather", "arguments": {city: Paris}}</tool_call>', toolCalls: [] }],
  ['no name stays content', '<tool_call>{"arguments": {}}</tool_call>', { content: '<tool_call>{"arguments": {}}</tool_call>', toolCalls: [] }],
  ['empty block stays content', '<tool_call></tool_call>', { content: '<tool_call></tool_call>', toolCalls: [] }],
  ['arguments not an object stays content', '<tool_call>{"name": "a", "arguments": [1]}</tool_call>', { content: '<tool_call>{"name": "a", "arguments": [1]}</tool_call>', toolCalls: [] }],
  ['truncated JSON stays content', '<tool_call>\n{"name": "get_weather", "argu', { content: '<tool_call>\n{"name": "get_weather", "argu', toolCalls: [] }],
  ['closing tag alone is content', 'odd </tool_call> text', { content: 'odd </tool_call> text', toolCalls: [] }],
  ['a tag-like word is content', 'use <tool> or <tool_calls> carefully', { content: 'use <tool> or <tool_calls> carefully', toolCalls: [] }],
  ['good call then bad call', '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>oops</tool_call>', { content: '<tool_call>oops</tool_call>', toolCalls: [{ name: 'a', arguments: {} }] }],
  ['numbers and booleans', '<tool_call>{"name": "calc", "arguments": {"x": -1.5e3, "ok": true}}</tool_call>', { content: '', toolCalls: [{ name: 'calc', arguments: { x: -1500, ok: true } }] }],
  ['whitespace everywhere', '  \n<tool_call>\n\n   {  "name" : "get_weather" , "arguments" : { "city" : "Paris" } }  \n\n</tool_call>\n  ', { content: '', toolCalls: [w('Paris')] }],
];

function streamed(text: string, sizes: number[]): ParsedOutput {
  const s = new ToolCallStream();
  const events = [];
  let i = 0;
  let k = 0;
  while (i < text.length) {
    const n = sizes[k++ % sizes.length];
    events.push(...s.push(text.slice(i, i + n)));
    i += n;
  }
  events.push(...s.end());
  let content = events.filter((e) => e.type === 'text').map((e) => (e as { text: string }).text).join('');
  const toolCalls = events.flatMap((e) => (e.type === 'tool_call' ? [e.call] : []));
  if (toolCalls.length > 0) content = content.replace(/^[ \t]*```[a-zA-Z]*[ \t]*$/gm, '');
  return { content: content.trim(), toolCalls };
}

describe('parseToolCalls', () => {
  it('has a corpus of at least 40 outputs', () => expect(cases.length).toBeGreaterThanOrEqual(40));

  it.each(cases)('%s', (_name, text, expected) => {
    expect(parseToolCalls(text)).toEqual(expected);
  });

  it.each(cases)('%s, streamed in pieces', (_name, text, expected) => {
    for (const sizes of [[1], [2, 3], [7], [13, 1, 4]]) expect(streamed(text, sizes)).toEqual(expected);
  });

  it('passes text on before a call opens, holding back only what may start a tag', () => {
    const s = new ToolCallStream();
    expect(s.push('Checking the weather <tool')).toEqual([{ type: 'text', text: 'Checking the weather ' }]);
    expect(s.push('_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}')).toEqual([]);
    expect(s.push('\n</tool_call>')).toEqual([{ type: 'tool_call', call: w('Paris') }]);
    expect(s.end()).toEqual([]);
  });

  it('never throws on arbitrary input', () => {
    let seed = 7;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const alphabet = ['<tool_call>', '</tool_call>', '{', '}', '"', "'", ':', ',', 'name', 'arguments', '[', ']', '<think>', '</think>', '```', '\n', ' ', 'x', '\\'];
    for (let i = 0; i < 3000; i++) {
      let t = '';
      for (let k = 0; k < 20; k++) t += alphabet[Math.floor(rand() * alphabet.length)];
      expect(() => parseToolCalls(t)).not.toThrow();
    }
  });
});
