/** Runs the tool calls of one step: validates arguments, calls handlers concurrently, reports errors back. */
import type { Tool } from '../tools/define.js';
import type { ParsedToolCall } from '../tools/parse.js';
import { pyJson } from './pyjson.js';

export interface ToolOutcome {
  call: ParsedToolCall;
  result?: unknown;
  /** why the call failed: unknown tool, invalid arguments, or the handler threw */
  error?: string;
}

export async function runToolCalls(calls: readonly ParsedToolCall[], tools: readonly Tool[], signal: AbortSignal): Promise<ToolOutcome[]> {
  return Promise.all(
    calls.map(async (call): Promise<ToolOutcome> => {
      const tool = tools.find((t) => t.name === call.name);
      if (!tool) return { call, error: `there is no tool named ${JSON.stringify(call.name)}; the tools are ${tools.map((t) => t.name).join(', ')}` };
      const parsed = tool.parameters.safeParse(call.arguments);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; ');
        return { call, error: `invalid arguments for ${tool.name} (${issues}); call it again with arguments that match its schema` };
      }
      let result: unknown;
      try {
        result = await tool.handler!(parsed.data, { signal });
      } catch (err) {
        return { call, error: `${tool.name} failed: ${err instanceof Error ? err.message : String(err)}` };
      }
      // the result goes to the model as JSON: a circular structure or a BigInt cannot
      try {
        JSON.stringify(result);
      } catch (err) {
        const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
        return { call, error: `${tool.name} returned a value that cannot be written as JSON (${why}); its handler must return plain data (objects, arrays, strings, numbers, booleans, null)` };
      }
      return { call, result };
    }),
  );
}

/** The tool message for an outcome, as Hermes reads it inside <tool_response>. */
export function toolResponse(outcome: ToolOutcome): string {
  const content = outcome.error !== undefined ? { error: outcome.error } : (outcome.result ?? null);
  return pyJson({ name: outcome.call.name, content });
}
