/** Tools defined with zod: their JSON Schema for the prompt, their grammar, their handler. */
import { z } from 'zod';
import { OptionsError } from '../errors.js';
import type { ToolSpec } from '../chat/messages.js';
import { GrammarBuilder, gbnfLiteral } from './grammar.js';

export interface ToolContext {
  /** aborted when the turn is aborted */
  signal: AbortSignal;
}

export interface Tool<P extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  parameters: P;
  /** runs the call; without one, calls are returned to the caller (finishReason 'tool_call') */
  handler?: (args: z.output<P>, context: ToolContext) => unknown;
  /** the arguments' JSON Schema (zod's converter) */
  jsonSchema: Record<string, unknown>;
}

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** Defines a tool; `parameters` is a zod object schema whose `.describe()` texts reach the model. */
export function defineTool<P extends z.ZodType>(definition: {
  name: string;
  description: string;
  parameters: P;
  handler?: (args: z.output<P>, context: ToolContext) => unknown;
}): Tool<P> {
  const { name, description, parameters, handler } = definition ?? {};
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new OptionsError(`Invalid tool name ${JSON.stringify(name)}: expected 1 to 64 letters, digits, _ or -`);
  }
  if (typeof description !== 'string') throw new OptionsError(`Invalid description for tool ${name}: expected a string`);
  if (!(parameters instanceof z.ZodType)) throw new OptionsError(`Invalid parameters for tool ${name}: expected a zod schema (z.object({...}))`);
  if (handler !== undefined && typeof handler !== 'function') throw new OptionsError(`Invalid handler for tool ${name}: expected a function`);
  let jsonSchema: Record<string, unknown>;
  try {
    const { $schema: _, ...rest } = z.toJSONSchema(parameters, { io: 'input' }) as Record<string, unknown>;
    jsonSchema = rest;
  } catch (err) {
    throw new OptionsError(`Invalid parameters for tool ${name}: zod cannot express them as JSON Schema (${(err as Error).message})`);
  }
  if (jsonSchema.type !== 'object') throw new OptionsError(`Invalid parameters for tool ${name}: expected an object schema, got ${JSON.stringify(jsonSchema.type)}`);
  return { name, description, parameters, handler, jsonSchema };
}

/** Drops `additionalProperties: false` (zod writes it on every object): the grammar enforces it. */
function forPrompt(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(forPrompt);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'additionalProperties' && v === false) continue;
    out[k] = forPrompt(v);
  }
  return out;
}

/** The tool as the system prompt shows it. */
export function toToolSpec(tool: Tool): ToolSpec {
  return { name: tool.name, description: tool.description, parameters: forPrompt(tool.jsonSchema) as Record<string, unknown> };
}

/** A trigger for the lazy grammar: from the first `<tool_call>` on, the output is constrained. */
export const TOOL_CALL_TRIGGER = '[\\s\\S]*?(<tool_call>[\\s\\S]*)';

/**
 * GBNF for Hermes tool calls: one or more `<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>`
 * blocks, each naming one of `tools` with arguments that follow that tool's schema.
 */
export function toolCallGrammar(tools: readonly Tool[], options: { parallel?: boolean } = {}): string {
  if (tools.length === 0) throw new OptionsError('a tool-call grammar needs at least one tool');
  const b = new GrammarBuilder();
  const calls = tools.map((t) => {
    const args = b.schema(t.jsonSchema, `${t.name}-arguments`);
    return b.rule(`call-${t.name}`, `"{\\"name\\": " ${gbnfLiteral(JSON.stringify(t.name))} ", \\"arguments\\": " ${args} "}"`);
  });
  const call = b.rule('call', calls.join(' | '));
  const block = b.rule('tool-call', `"<tool_call>\\n" ${call} "\\n</tool_call>"`);
  return b.build(options.parallel === false ? block : `${block} ("\\n" ${block})*`);
}
