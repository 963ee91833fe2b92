/** Options of createServer(), their defaults and limits. */
import { basename } from 'node:path';
import { z } from 'zod';
import type { Model } from '../engine/model.js';
import { int, num } from '../engine/validate.js';
import { poolingSchema } from '../engine/embedding-options.js';

export const serverSchema = z.strictObject({
  /** the loaded model every request runs on */
  model: z.custom<Model>((v) => typeof v === 'object' && v !== null && 'createContext' in v && 'info' in v, { error: 'expected a Model from loadModel()' }),
  /** the name clients use for the model (default: the file name without .gguf) */
  modelName: z.string().regex(/^[\w.:@/+-]{1,128}$/, { error: 'expected 1 to 128 letters, digits and . _ - : @ / +' }).optional(),
  /** requests generating at once: sequences of the shared context (continuous batching) */
  parallel: int(1, 64).default(4),
  /** context length of each request slot in tokens */
  ctx: int(64, 1 << 20).default(4096),
  /** requests waiting for a slot beyond `parallel`; more get 503 with Retry-After */
  maxQueue: int(0, 100_000).default(64),
  /** Bearer key every API request must carry (compared in constant time) */
  apiKey: z.string().min(1, { error: 'expected a non-empty key' }).optional(),
  /** origins allowed to call from a browser (CORS is off without it); '*' allows all */
  cors: z.union([z.string().min(1), z.array(z.string().min(1))], { error: 'expected an origin or a list of origins' }).optional(),
  /** largest request body in bytes */
  bodyLimit: int(1024, 1 << 30).default(4 << 20),
  /** most tokens one request may generate; also the default when a request names none */
  maxTokens: int(1, 1 << 20).default(4096),
  /** on close(): how long running requests may finish before they are aborted (ms) */
  graceMs: int(0, 600_000).default(10_000),
  /** serve the chat page at / (default true) */
  webPage: z.boolean({ error: 'expected true or false' }).default(true),
  /** each request as one line (method, path, status, ms) */
  log: z.custom<(line: string) => void>((v) => typeof v === 'function', { error: 'expected a function (line) => void' }).optional(),
  /** dispose the model when the server closes (the CLI loads the model for the server) */
  ownsModel: z.boolean({ error: 'expected true or false' }).default(false),
  /** CPU threads of the shared context (default: physical cores) */
  threads: int(1, 1024).optional(),
  /**
   * embeddings (/v1/embeddings, /api/embed): an embedding context over the model, created on the
   * first such request; `ctx` is the longest input in tokens, `pooling` as for
   * createEmbeddingContext. false turns the routes off (404)
   */
  embeddings: z
    .union([
      z.literal(false),
      z.strictObject({
        ctx: int(16, 1 << 20).optional(),
        pooling: poolingSchema().optional(),
      }),
    ], { error: 'expected false or { ctx, pooling }' })
    .default({}),
  /** the system prompt of conversations that bring none */
  systemPrompt: z.string({ error: 'expected a string' }).optional(),
  /** sampling defaults for requests that do not set them */
  sampling: z
    .strictObject({
      temperature: num(0, 100).optional(),
      topP: num(0, 1).optional(),
      topK: int(0, 1 << 20).optional(),
      minP: num(0, 1).optional(),
      repeatPenalty: num(0, 100).optional(),
      presencePenalty: num(-100, 100).optional(),
      frequencyPenalty: num(-100, 100).optional(),
      seed: int(0, 0xffffffff).optional(),
    })
    .optional(),
});
export type ServerOptions = z.input<typeof serverSchema>;
export type ParsedServerOptions = z.output<typeof serverSchema>;

/** The model's name in the APIs: the file name without its extension, or the name given. */
export function modelId(opts: ParsedServerOptions): string {
  return opts.modelName ?? basename(opts.model.path).replace(/\.gguf$/i, '');
}
