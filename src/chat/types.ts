/** Options, events and results of chats. */
import { z } from 'zod';
import type { Context } from '../engine/context.js';
import { generateSchema, type GenerateOptions } from '../engine/options.js';
import type { FinishReason, GenerationTimings } from '../engine/sequence.js';
import { int } from '../engine/validate.js';
import type { Tool } from '../tools/define.js';
import type { ParsedToolCall } from '../tools/parse.js';
import type { ChatMessageInput } from './normalize.js';
import type { ChatFormatter } from './prompt.js';

const ownOptions = {
  /** the system turn that opens every prompt */
  systemPrompt: z.string({ error: 'expected a string' }).optional(),
  /** a context to take a sequence from (default: a context of the chat's own) */
  context: z.custom<Context>((v) => typeof v === 'object' && v !== null && 'sequence' in v, { error: 'expected a Context' }).optional(),
  /** context length of the chat's own context */
  nCtx: int(16, 1 << 24).optional(),
  /** 'chatml' (Hermes 3's format), 'model' (the GGUF's Jinja template) or a function */
  chatFormat: z
    .union([z.literal('chatml'), z.literal('model'), z.custom<ChatFormatter>((v) => typeof v === 'function')], {
      error: "expected 'chatml', 'model' or a function",
    })
    .default('chatml'),
  /** when the conversation outgrows the context: drop the oldest turns, or raise ContextOverflowError */
  contextOverflow: z.enum(['drop-oldest', 'error'], { error: "expected 'drop-oldest' or 'error'" }).default('drop-oldest'),
  /** messages to start from, in the project's shape or OpenAI's (checked by normalizeMessages) */
  history: z.custom<readonly ChatMessageInput[]>((v) => Array.isArray(v), { error: 'expected an array of messages' }).optional(),
};
export const { signal: _signal, parseSpecial: _parseSpecial, ...generationShape } = generateSchema.shape;
export const chatSchema = z.strictObject({ ...ownOptions, ...generationShape });
/** Options of model.chat(): the chat's own and default generation options for every turn. */
export type ChatOptions = z.input<typeof chatSchema>;
/** Options of one turn: generation options (see GenerateOptions), a signal, tools and JSON mode. */
export interface SendOptions<S extends z.ZodType = z.ZodType> extends Omit<GenerateOptions, 'parseSpecial'> {
  /** tools the model may call; their handlers run and their results go back to the model */
  tools?: readonly Tool[];
  /** 'auto' (default): the model decides; 'none': no tools offered; 'required': the first step must call one; { name }: must call that one */
  toolChoice?: 'auto' | 'none' | 'required' | { name: string };
  /** most generations in one turn, tool rounds included (default 5) */
  maxSteps?: number;
  /** JSON mode: Hermes's schema system prompt and a grammar; the reply is parsed and validated */
  schema?: S;
}

export interface ChatUsage {
  /** tokens of the prompt of this turn, cached or not */
  promptTokens: number;
  /** prompt tokens reused from the KV cache */
  cachedTokens: number;
  completionTokens: number;
}

export type ChatEvent =
  | { type: 'text'; text: string }
  | { type: 'tool_call'; call: ParsedToolCall; step: number }
  | { type: 'tool_result'; call: ParsedToolCall; result?: unknown; error?: string; step: number }
  | {
      type: 'done';
      /** the final reply's text (for JSON mode, the JSON) */
      text: string;
      finishReason: FinishReason;
      /** summed over the turn's steps */
      usage: ChatUsage;
      /** of the last step */
      timings: GenerationTimings;
      /** every tool call of the turn, in order */
      toolCalls: ParsedToolCall[];
      /** JSON mode: the parsed and validated reply */
      object?: unknown;
      steps: number;
      droppedMessages: number;
    };

export interface ChatResult<T = unknown> {
  text: string;
  finishReason: FinishReason;
  usage: ChatUsage;
  timings: GenerationTimings;
  toolCalls: ParsedToolCall[];
  /** JSON mode: the reply, parsed and validated by the schema */
  object: T;
  steps: number;
}

export interface TurnOptions {
  tools?: Tool[];
  toolChoice: 'auto' | 'none' | 'required' | { name: string };
  maxSteps: number;
  schema?: z.ZodType;
}

export const turnSchema = z.strictObject({
  tools: z
    .array(z.custom<Tool>((v) => typeof v === 'object' && v !== null && 'jsonSchema' in v && 'parameters' in v, { error: 'expected tools made by defineTool()' }), {
      error: 'expected an array of tools made by defineTool()',
    })
    .optional(),
  toolChoice: z
    .union([z.enum(['auto', 'none', 'required']), z.strictObject({ name: z.string() })], { error: "expected 'auto', 'none', 'required' or { name }" })
    .default('auto'),
  maxSteps: int(1, 100).default(5),
  schema: z.custom<z.ZodType>((v) => v instanceof z.ZodType, { error: 'expected a zod schema' }).optional(),
});
