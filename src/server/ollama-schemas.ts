/**
 * Request bodies of the Ollama-compatible API. Options that only matter when Ollama loads a
 * model (num_ctx, num_gpu, num_thread, ...) are accepted and ignored: this server loads its
 * model once, at start.
 */
import { z } from 'zod';
import { int, num } from '../engine/validate.js';
import { toolChoice } from './openai-schemas.js';

const opt = <T extends z.ZodType>(t: T) => t.nullable().optional();

export const ollamaOptionsSchema = z.object(
  {
    temperature: opt(num(0, 100)),
    top_k: opt(int(0, 1 << 20)),
    top_p: opt(num(0, 1)),
    min_p: opt(num(0, 1)),
    typical_p: opt(num(0, 1)),
    repeat_penalty: opt(num(0, 100)),
    repeat_last_n: opt(int(-1, 1 << 24)),
    presence_penalty: opt(num(-100, 100)),
    frequency_penalty: opt(num(-100, 100)),
    seed: opt(z.number({ error: 'expected an integer' }).int({ error: 'expected an integer' })),
    num_predict: opt(int(-2, 1 << 24)),
    stop: opt(z.array(z.string().min(1), { error: 'expected an array of strings' }).max(16)),
    mirostat: opt(int(0, 2)),
    mirostat_tau: opt(num(0, 100)),
    mirostat_eta: opt(num(0, 1)),
  },
  { error: 'expected an object of sampling options' },
);
export type OllamaOptions = z.output<typeof ollamaOptionsSchema>;

const format = z.union([z.literal(''), z.literal('json'), z.record(z.string(), z.unknown())], { error: "expected 'json' or a JSON Schema object" });

export const ollamaChatSchema = z.object({
  model: z.string({ error: 'expected the model name (GET /api/tags lists it)' }).min(1),
  messages: opt(z.array(z.unknown(), { error: 'expected an array of messages' })),
  tools: opt(z.array(z.unknown(), { error: 'expected an array of tools' })),
  /** an extension (Ollama has none): OpenAI's tool_choice, e.g. 'required' */
  tool_choice: opt(toolChoice),
  format: opt(format),
  options: opt(ollamaOptionsSchema),
  stream: opt(z.boolean({ error: 'expected true or false' })),
  keep_alive: z.unknown().optional(),
  think: z.unknown().optional(),
});

export const ollamaGenerateSchema = z.object({
  model: z.string({ error: 'expected the model name (GET /api/tags lists it)' }).min(1),
  prompt: opt(z.string({ error: 'expected a string' })),
  system: opt(z.string({ error: 'expected a string' })),
  raw: opt(z.boolean({ error: 'expected true or false' })),
  format: opt(format),
  options: opt(ollamaOptionsSchema),
  stream: opt(z.boolean({ error: 'expected true or false' })),
  keep_alive: z.unknown().optional(),
  images: z.unknown().refine((v) => v == null || (Array.isArray(v) && v.length === 0), { error: 'images are not supported: Hermes 3 reads text only' }).optional(),
  suffix: z.unknown().refine((v) => v == null || v === '', { error: 'suffix (fill-in-the-middle) is not supported by this server' }).optional(),
  template: z.unknown().refine((v) => v == null || v === '', { error: 'a custom template is not supported: the server renders Hermes 3 ChatML itself (send raw: true for your own prompt text)' }).optional(),
  context: z.unknown().refine((v) => v == null || (Array.isArray(v) && v.length === 0), { error: 'context is not supported: send the conversation to /api/chat' }).optional(),
});

export const ollamaShowSchema = z
  .object({ model: z.string().min(1).optional(), name: z.string().min(1).optional(), verbose: z.unknown().optional() })
  .refine((b) => b.model !== undefined || b.name !== undefined, { error: 'expected model: the model name (GET /api/tags lists it)' });
