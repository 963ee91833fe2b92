import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTool, formatChat, OptionsError } from '../../src/index.js';
import { toToolSpec, toolCallGrammar } from '../../src/tools/define.js';
import { schemaToGrammar } from '../../src/tools/grammar.js';
import { root } from '../fixtures.js';

const template = new Template(readFileSync(join(root, 'vendor/llama.cpp/models/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja'), 'utf8'));

// every tool shape of the byte-equality corpus (arrays are rendered on purpose as the template
// means them, so they stay out of it: see the chat-format tests)
export const zodTools = [
  defineTool({ name: 'get_weather', description: 'Get the weather.', parameters: z.object({ city: z.string().describe('City name'), unit: z.enum(['celsius', 'fahrenheit']).optional().describe('Unit') }) }),
  defineTool({ name: 'get_time', description: 'The current time.', parameters: z.object({}) }),
  defineTool({
    name: 'book_flight',
    description: 'Book a flight.',
    parameters: z.object({
      passenger: z.object({ name: z.string().describe('Full name'), age: z.number().int().min(0).max(120).optional().describe('Age') }).describe('Who flies'),
      cabin: z.enum(['economy', 'business']).describe('Cabin'),
      confirmed: z.boolean().describe('Confirm now'),
      extras: z.record(z.string(), z.boolean()).optional().describe('Extras by name'),
    }),
  }),
  defineTool({ name: 'calculate', description: 'Evaluate arithmetic.', parameters: z.object({ expression: z.string().max(64).describe('Expression'), precision: z.number().int().min(0).max(10).default(2).describe('Digits') }) }),
  defineTool({ name: 'set_level', description: 'Set a level.', parameters: z.object({ level: z.literal(3).describe('Always 3'), ratio: z.number().min(0).max(1).describe('Ratio') }) }),
];

describe('defineTool', () => {
  it('rejects bad definitions with messages that say what is expected', () => {
    expect(() => defineTool({ name: 'bad name', description: 'x', parameters: z.object({}) })).toThrow('Invalid tool name "bad name": expected 1 to 64 letters, digits, _ or -');
    expect(() => defineTool({ name: 'x', description: 'x', parameters: { type: 'object' } as never })).toThrow('Invalid parameters for tool x: expected a zod schema');
    expect(() => defineTool({ name: 'x', description: 'x', parameters: z.string() })).toThrow('expected an object schema, got "string"');
    expect(() => defineTool({ name: 'x', description: 'x', parameters: z.object({}), handler: 3 as never })).toThrow(OptionsError);
  });

  it('keeps zod descriptions and requiredness in the JSON Schema', () => {
    expect(zodTools[0].jsonSchema).toEqual({
      type: 'object',
      properties: { city: { type: 'string', description: 'City name' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'], description: 'Unit' } },
      required: ['city'],
    });
  });

  it.each(zodTools.map((t) => [t.name, t] as const))('renders %s byte-equal to the tool_use template', (_name, tool) => {
    const messages = [{ role: 'user' as const, content: 'Go' }];
    const spec = toToolSpec(tool);
    expect(formatChat(messages, { tools: [spec] })).toBe(
      template.render({ messages, tools: [{ type: 'function', function: spec }], bos_token: '', add_generation_prompt: true }),
    );
  });

  it('renders all tools together byte-equal to the template', () => {
    const messages = [{ role: 'system' as const, content: 'Be helpful.' }, { role: 'user' as const, content: 'Go' }];
    const specs = zodTools.map(toToolSpec);
    expect(formatChat(messages, { tools: specs })).toBe(
      template.render({ messages, tools: specs.map((s) => ({ type: 'function', function: s })), bos_token: '', add_generation_prompt: true }),
    );
  });
});

describe('grammars', () => {
  it('lists small integer ranges, drops the sign for non-negative numbers, and bounds string length', () => {
    const g = schemaToGrammar(z.toJSONSchema(z.object({ n: z.number().int().min(1).max(3), r: z.number().min(0), s: z.string().min(2).max(5) })) as never);
    expect(g).toContain('("1" | "2" | "3") space');
    expect(g).toContain('nonnegative-number');
    expect(g).toContain('char{2,5}');
  });

  it('builds optional-only objects as in-order subsets', () => {
    const g = schemaToGrammar({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'integer' } } });
    expect(g).toMatch(/value-root-opt-0 ::= .*"\\"a\\"".*\( "," space value-root-opt-1 \)\? \| value-root-opt-1/);
  });

  it('resolves $ref, including recursive definitions', () => {
    const Node: z.ZodType = z.lazy(() => z.object({ value: z.string(), children: z.array(Node).max(2) }));
    const g = schemaToGrammar(z.toJSONSchema(Node) as never);
    expect(g).toMatch(/ref-/);
  });

  it('constrains tool calls to the named tools and their arguments', () => {
    const g = toolCallGrammar(zodTools.slice(0, 2));
    expect(g).toContain('root ::= tool-call ("\\n" tool-call)*');
    expect(g).toContain('"<tool_call>\\n" call "\\n</tool_call>"');
    expect(g).toContain('call ::= call-get-weather | call-get-time');
  });
});
