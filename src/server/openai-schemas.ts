/**
 * Request bodies of the OpenAI-compatible API. Fields OpenAI defines and this server cannot
 * honour (n > 1, logprobs, audio) are refused with a message; fields it does not know are
 * ignored, as OpenAI-compatible servers do (clients send `user`, `store`, `metadata`...).
 */
import { z } from 'zod';
import { int, num } from '../engine/validate.js';

const opt = <T extends z.ZodType>(t: T) => t.nullable().optional();
const unsupported = (what: string, allowed: unknown[]) =>
  z.unknown().refine((v) => v === undefined || v === null || allowed.includes(v), { error: `${what} is not supported by this server` }).optional();

/** Sampling fields shared by chat and text completions, with llama-server's extensions (top_k, min_p, repeat_penalty). */
export const samplingFields = {
  model: z.string({ error: 'expected the model name (GET /v1/models lists it)' }).min(1, { error: 'expected the model name (GET /v1/models lists it)' }),
  temperature: opt(num(0, 2)),
  top_p: opt(num(0, 1)),
  top_k: opt(int(0, 1 << 20)),
  min_p: opt(num(0, 1)),
  typical_p: opt(num(0, 1)),
  repeat_penalty: opt(num(0, 10)),
  presence_penalty: opt(num(-2, 2)),
  frequency_penalty: opt(num(-2, 2)),
  seed: opt(z.number({ error: 'expected an integer' }).int({ error: 'expected an integer' })),
  stop: opt(z.union([z.string().min(1), z.array(z.string().min(1), { error: 'expected up to 16 non-empty strings' }).max(16, { error: 'expected up to 16 stop strings' })], { error: 'expected a string or an array of strings' })),
  logit_bias: opt(z.record(z.string().regex(/^\d+$/, { error: 'expected token ids as keys' }), num(-100, 100), { error: 'expected an object of token id -> bias between -100 and 100' })),
  stream: opt(z.boolean({ error: 'expected true or false' })),
  stream_options: opt(z.object({ include_usage: opt(z.boolean({ error: 'expected true or false' })) }, { error: 'expected an object { include_usage }' })),
  n: unsupported('n other than 1 (several choices per request)', [1]),
  logprobs: unsupported('logprobs', [false]),
  top_logprobs: unsupported('top_logprobs', [0]),
};

export const toolChoice = z.union(
  [
    z.enum(['auto', 'none', 'required']),
    z.object({ type: z.literal('function'), function: z.object({ name: z.string().min(1) }) }),
  ],
  { error: "expected 'auto', 'none', 'required' or { type: 'function', function: { name } }" },
);

const responseFormat = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.object(
        {
          name: z.string().min(1).max(64),
          description: z.string().optional(),
          schema: z.record(z.string(), z.unknown(), { error: 'expected a JSON Schema object' }).optional(),
          strict: opt(z.boolean()),
        },
        { error: 'expected { name, schema, strict }' },
      ),
    }),
  ],
  { error: "expected { type: 'text' }, { type: 'json_object' } or { type: 'json_schema', json_schema: { name, schema } }" },
);

export const chatCompletionSchema = z.object({
  ...samplingFields,
  messages: z.array(z.unknown(), { error: 'expected an array of messages' }).min(1, { error: 'expected at least one message' }),
  tools: opt(z.array(z.unknown(), { error: "expected an array of { type: 'function', function: { name, description, parameters } }" })),
  tool_choice: opt(toolChoice),
  parallel_tool_calls: opt(z.boolean({ error: 'expected true or false' })),
  response_format: opt(responseFormat),
  max_tokens: opt(int(1, 1 << 24)),
  max_completion_tokens: opt(int(1, 1 << 24)),
  audio: unsupported('audio output', []),
  modalities: z.unknown().refine((v) => v === undefined || v === null || (Array.isArray(v) && v.every((m) => m === 'text')), { error: "only the 'text' modality is supported" }).optional(),
});
export type ChatCompletionRequest = z.output<typeof chatCompletionSchema>;

export const completionSchema = z.object({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(z.string()).length(1, { error: 'expected one prompt (several prompts per request are not supported)' })], {
    error: 'expected a prompt string',
  }),
  max_tokens: opt(int(1, 1 << 24)),
  echo: unsupported('echo', [false]),
  suffix: unsupported('suffix (fill-in-the-middle)', []),
  best_of: unsupported('best_of other than 1', [1]),
});
export type CompletionRequest = z.output<typeof completionSchema>;
