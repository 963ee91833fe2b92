/**
 * Embeddings over HTTP: OpenAI's /v1/embeddings, Ollama's /api/embed and its older
 * /api/embeddings. One embedding context, created on the first request, batches each request's
 * inputs into shared decodes; requests take turns on it.
 */
import type { FastifyInstance, FastifyRequest, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { EmbeddingContext, EmbeddingInput, EmbeddingResult } from '../engine/embedding.js';
import type { Pooling } from '../engine/embedding-options.js';
import { ContextOverflowError } from '../errors.js';
import { int } from '../engine/validate.js';
import { ApiError, disconnectSignal, parseBody } from './http.js';
import { ServerBusyError } from './slots.js';
import type { ServerState } from './state.js';

/** most inputs in one request, as OpenAI allows */
const MAX_INPUTS = 2048;

const tokenList = z.array(int(0), { error: 'expected an array of token ids' }).min(1, { error: 'expected at least one token id' });
const openaiSchema = z.object({
  model: z.string({ error: 'expected the model name' }),
  input: z.union(
    [
      z.string().min(1, { error: 'expected non-empty text' }),
      z.array(z.string().min(1, { error: 'expected non-empty text' })).min(1).max(MAX_INPUTS),
      tokenList,
      z.array(tokenList).min(1).max(MAX_INPUTS),
    ],
    { error: `expected a string, an array of up to ${MAX_INPUTS} strings, an array of token ids, or an array of such arrays` },
  ),
  encoding_format: z.enum(['float', 'base64'], { error: "expected 'float' or 'base64'" }).nullable().optional(),
  dimensions: int(1).nullable().optional(),
  user: z.string().nullable().optional(),
});

const ollamaEmbedSchema = z.object({
  model: z.string({ error: 'expected the model name' }),
  input: z.union([z.string(), z.array(z.string()).max(MAX_INPUTS)], { error: 'expected a string or an array of strings' }),
  truncate: z.boolean({ error: 'expected true or false' }).nullable().optional(),
  dimensions: int(1).nullable().optional(),
  options: z.record(z.string(), z.unknown()).nullable().optional(),
  keep_alive: z.union([z.string(), z.number()]).nullable().optional(),
});

const ollamaLegacySchema = z.object({
  model: z.string({ error: 'expected the model name' }),
  prompt: z.string({ error: 'expected the text to embed' }),
  options: z.record(z.string(), z.unknown()).nullable().optional(),
  keep_alive: z.union([z.string(), z.number()]).nullable().optional(),
});

export interface EmbeddingSettings {
  /** tokens one decode holds: the longest input (default: min(training context, 2048)) */
  ctx?: number;
  pooling?: Pooling;
  /** CPU threads (default: physical cores) */
  threads?: number;
}

/** The server's embedding context: created on first use, shared by all requests, bounded in waiters. */
export class ServerEmbeddings {
  private context: Promise<EmbeddingContext> | undefined;
  private waiting = 0;

  constructor(
    private readonly state: ServerState,
    private readonly settings: EmbeddingSettings,
    private readonly maxQueue: number,
  ) {}

  async embed(inputs: EmbeddingInput[], options: { normalize: boolean; truncate: boolean; signal: AbortSignal }): Promise<EmbeddingResult> {
    if (this.waiting > this.maxQueue) throw new ServerBusyError(`${this.waiting} embedding requests are waiting already; retry shortly`, 1);
    this.waiting++;
    try {
      return await (await this.open()).embedWithUsage(inputs, options);
    } finally {
      this.waiting--;
    }
  }

  /** the vector length, creating the context if it is not yet */
  async dimensions(): Promise<number> {
    return (await this.open()).nEmbd;
  }

  /** the context, created on first use; a failed creation is tried again by the next request */
  private open(): Promise<EmbeddingContext> {
    this.context ??= this.state.model
      .createEmbeddingContext({ nCtx: this.settings.ctx, pooling: this.settings.pooling, threads: this.settings.threads })
      .catch((err: unknown) => {
        this.context = undefined;
        throw err;
      });
    return this.context;
  }

  async close(): Promise<void> {
    const ctx = await this.context?.catch(() => undefined);
    await ctx?.dispose();
  }
}

async function run(
  embeddings: ServerEmbeddings,
  state: ServerState,
  request: FastifyRequest,
  reply: FastifyReply,
  inputs: EmbeddingInput[],
  options: { normalize: boolean; truncate: boolean; dimensions?: number | null },
): Promise<EmbeddingResult> {
  if (options.dimensions != null) {
    const n = await embeddings.dimensions();
    if (options.dimensions !== n) throw new ApiError(400, `this model's embeddings have ${n} dimensions; dimensions can only be ${n}`, 'invalid_request_error', 'invalid_value', 'dimensions');
  }
  const controller = disconnectSignal(request, reply, state.shutdown);
  try {
    const r = await embeddings.embed(inputs, { normalize: options.normalize, truncate: options.truncate, signal: controller.signal });
    state.metrics.embedding(inputs.length, r.tokenCounts.reduce((a, b) => a + b, 0), r.decodes);
    return r;
  } catch (err) {
    if (err instanceof ContextOverflowError) throw new ApiError(400, err.message, 'invalid_request_error', 'context_length_exceeded', 'input');
    throw err;
  } finally {
    controller.abort();
  }
}

function base64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

export function registerEmbeddings(app: FastifyInstance, state: ServerState, embeddings: ServerEmbeddings): void {
  app.post('/v1/embeddings', async (request, reply) => {
    const body = parseBody(openaiSchema, request.body);
    state.checkModel(body.model);
    const input = body.input;
    const inputs: EmbeddingInput[] = typeof input === 'string' ? [input] : typeof input[0] === 'number' ? [input as number[]] : (input as EmbeddingInput[]);
    const r = await run(embeddings, state, request, reply, inputs, { normalize: true, truncate: false, dimensions: body.dimensions });
    const tokens = r.tokenCounts.reduce((a, b) => a + b, 0);
    return {
      object: 'list',
      data: r.embeddings.map((v, index) => ({ object: 'embedding', index, embedding: body.encoding_format === 'base64' ? base64(v) : Array.from(v) })),
      model: state.modelId,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  });

  app.post('/api/embed', async (request, reply) => {
    const started = process.hrtime.bigint();
    const body = parseBody(ollamaEmbedSchema, request.body);
    state.checkModel(body.model);
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    if (inputs.length === 0) return { model: body.model, embeddings: [] };
    if (inputs.some((t) => t.length === 0)) throw new ApiError(400, 'input holds an empty string: each input needs some text');
    // Ollama cuts long inputs unless truncate is false
    const r = await run(embeddings, state, request, reply, inputs, { normalize: true, truncate: body.truncate ?? true, dimensions: body.dimensions });
    return {
      model: body.model,
      embeddings: r.embeddings.map((v) => Array.from(v)),
      total_duration: Number(process.hrtime.bigint() - started),
      load_duration: 0,
      prompt_eval_count: r.tokenCounts.reduce((a, b) => a + b, 0),
    };
  });

  // the older endpoint: one prompt, a vector that is not normalized, as Ollama returns it
  app.post('/api/embeddings', async (request, reply) => {
    const body = parseBody(ollamaLegacySchema, request.body);
    state.checkModel(body.model);
    if (body.prompt.length === 0) return { embedding: [] };
    const r = await run(embeddings, state, request, reply, [body.prompt], { normalize: false, truncate: true });
    return { embedding: Array.from(r.embeddings[0]!) };
  });
}
