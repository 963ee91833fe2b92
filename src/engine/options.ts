/**
 * Schemas and defaults for loading models, creating contexts and generating. Defaults live here
 * and nowhere else.
 */
import { z } from 'zod';
import { abortSignal, bool, int, num } from './validate.js';

/** Context length when none is asked for (capped by the training context). */
export const DEFAULT_CTX = 4096;

/**
 * The longest context nCtx 'auto' fits; a longer one is asked for with a range, e.g.
 * `{ max: 131072 }`. A 131,072-token f16 KV cache is 4 GiB for the 1B shape and 16 GiB for 8B,
 * and llama.cpp clears (writes) all of it when the context is created.
 */
export const AUTO_CTX_MAX = 8192;

/** A context length to fit: the longest that fits in memory, between min and max tokens. */
export interface ContextRange {
  /** fail with InsufficientMemoryError rather than go below this (default 512) */
  min?: number;
  /** the longest to try (default: the training context) */
  max?: number;
}

/** What 'auto' and a range mean: 'auto' is at most AUTO_CTX_MAX tokens; a range without max reaches the training context. */
export function contextRange(nCtx: 'auto' | ContextRange, nCtxTrain: number): { min: number; max: number } {
  const range = nCtx === 'auto' ? { max: AUTO_CTX_MAX } : nCtx;
  const train = nCtxTrain > 0 ? nCtxTrain : DEFAULT_CTX;
  const min = range.min ?? Math.min(512, train, range.max ?? train);
  return { min, max: Math.max(min, Math.min(range.max ?? train, train)) };
}

const ctxLength = () => int(16, 1 << 24);
const contextSize = () =>
  z.union(
    [
      ctxLength(),
      z.literal('auto'),
      z.strictObject({ min: ctxLength().optional(), max: ctxLength().optional() }).refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, {
        error: 'expected a range { min, max } with min <= max',
      }),
    ],
    { error: "expected an integer between 16 and 16777216, 'auto', or a range { min, max } of such integers" },
  );

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Logger = (level: LogLevel, message: string) => void;

/** A LoRA adapter's scale: 1 applies it as trained, 0 not at all, negative values subtract it. */
const loraScale = () => num(-100, 100).default(1);
/** What the lora options need of a LoraAdapter (kept structural: options are below the engine's classes). */
export interface LoraAdapterLike {
  readonly isDisposed: boolean;
  readonly targets: readonly string[];
}
/** adapters applied to a context: [{ adapter, scale }] (at most 32) */
export const loraUsesSchema = z
  .array(
    z.strictObject({
      adapter: z.custom<LoraAdapterLike>((v) => typeof v === 'object' && v !== null && 'isDisposed' in v && 'targets' in v, {
        error: 'expected a LoraAdapter from model.loadLora()',
      }),
      scale: loraScale(),
    }),
    { error: 'expected an array of { adapter, scale } (an empty array: the base model)' },
  )
  .max(32, { error: 'expected at most 32 adapters' });

/** ggml_sched_priority by threadPriority */
export const THREAD_PRIORITIES = { low: -1, normal: 0 } as const;
export type ThreadPriority = keyof typeof THREAD_PRIORITIES;
const threadPriority = () => z.enum(['low', 'normal'], { error: "expected 'low' or 'normal'" });

export const loadModelSchema = z.strictObject({
  modelPath: z.string({ error: 'expected the path of a GGUF file' }).min(1, { error: 'expected the path of a GGUF file' }),
  /** layers to offload to the GPU; 'max' offloads all; 0 keeps everything on the CPU */
  nGpuLayers: z
    .custom<number | 'max' | 'auto'>((v) => v === 'max' || v === 'auto' || (Number.isInteger(v) && (v as number) >= 0), {
      error: "expected an integer >= 0, 'max' or 'auto'",
    })
    .default('auto'),
  /** default context length for createContext(); 'auto' or a range { min, max }: the longest that fits (see contextRange) */
  nCtx: contextSize().optional(),
  /** rpc-servers (HOST:PORT, llama.cpp's ggml-rpc) whose devices take layers like local GPUs, placed before them */
  rpcServers: z
    .array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):\d{1,5}$/, { error: 'expected HOST:PORT, e.g. 10.0.0.2:50052' }), { error: 'expected an array of HOST:PORT' })
    .max(16, { error: 'expected at most 16 rpc-servers' })
    .optional(),
  /** LoRA adapter files loaded with the model and applied to every context it creates (unless createContext says otherwise) */
  lora: z
    .array(
      z.strictObject({
        path: z.string({ error: 'expected the path of a LoRA adapter GGUF file' }).min(1, { error: 'expected the path of a LoRA adapter GGUF file' }),
        scale: loraScale(),
      }),
      { error: 'expected an array of { path, scale }' },
    )
    .max(32, { error: 'expected at most 32 adapters' })
    .optional(),
  /**
   * scheduling priority of the native threads: loading and freeing the model, and (by default)
   * creating, running and freeing its contexts. 'low' puts them in the lowest class the OS has
   * (SCHED_IDLE on Linux, idle priority on Windows; unchanged on macOS): every thread of
   * normal priority, the JavaScript event loop and its garbage collector first, preempts them at
   * once, so the event loop stays responsive with every core computing, at no cost to speed on
   * otherwise idle cores; but other busy processes on the machine come first too. 'normal' is
   * llama.cpp's default: its threads share the cores equally with everything else
   */
  threadPriority: threadPriority().default('low'),
  useMmap: bool().default(true),
  useMlock: bool().default(false),
  /** load the vocabulary only (tokenize/detokenize, no contexts) */
  vocabOnly: bool().default(false),
  checkTensors: bool().default(false),
  onProgress: z.custom<(progress: number) => void>((v) => typeof v === 'function', { error: 'expected a function' }).optional(),
  signal: abortSignal().optional(),
  logger: z.custom<Logger>((v) => typeof v === 'function', { error: 'expected a function (level, message) => void' }).optional(),
  logLevel: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('warn'),
});
export type LoadModelOptions = z.input<typeof loadModelSchema>;

/** KV cache element types and their ggml type ids. */
export const KV_CACHE_TYPES = { f32: 0, f16: 1, bf16: 30, q8_0: 8, q4_0: 2, q4_1: 3, q5_0: 6, q5_1: 7, iq4_nl: 20 } as const;
export type KvCacheType = keyof typeof KV_CACHE_TYPES;
const kvType = () =>
  z.enum(Object.keys(KV_CACHE_TYPES) as [KvCacheType, ...KvCacheType[]], {
    error: `expected one of ${Object.keys(KV_CACHE_TYPES).join(', ')}`,
  });

/** prompt lookup's n-gram sizes when `draft: { ngram: true }` */
export const NGRAM_SIZES = { min: 2, max: 4 } as const;

export const contextSchema = z.strictObject({
  /** context length in tokens, shared by all sequences; 'auto' or a range { min, max }: the longest that fits (default: the model's nCtx option, else min(training context, DEFAULT_CTX)) */
  nCtx: contextSize().optional(),
  /** most tokens submitted to one decode call */
  nBatch: int(1, 1 << 20).default(512),
  /** physical batch size (default: nBatch) */
  nUbatch: int(1, 1 << 20).optional(),
  /** sequences that can be held at once */
  nSeqMax: int(1, 256).default(1),
  /** threads for generation (default: physical cores) */
  threads: int(1, 1024).optional(),
  /** threads for prompt processing (default: threads) */
  threadsBatch: int(1, 1024).optional(),
  /** scheduling priority of the context's CPU compute threads (default: the model's threadPriority) */
  threadPriority: threadPriority().optional(),
  flashAttention: z.union([bool(), z.literal('auto')], { error: "expected true, false or 'auto'" }).default('auto'),
  kvCacheType: kvType().default('f16'),
  /** V cache type (default: kvCacheType) */
  kvCacheTypeV: kvType().optional(),
  kvUnified: bool().default(true),
  /**
   * speculative decoding: a draft model of the same vocabulary (`model`, a loaded Model) or
   * prompt lookup (`ngram`), proposing up to nDraft tokens that the model checks in one batch
   */
  draft: z
    .strictObject({
      model: z
        .custom<DraftModel>((v) => typeof v === 'object' && v !== null && 'native' in v && 'info' in v, { error: 'expected a Model from loadModel()' })
        .optional(),
      ngram: z
        .union([z.literal(true), z.strictObject({ min: int(1, 64).default(NGRAM_SIZES.min), max: int(1, 64).default(NGRAM_SIZES.max) })], {
          error: 'expected true or { min, max } (n-gram sizes)',
        })
        .optional(),
      nDraft: int(1, 64).default(8),
      /** draft model: drafting stops at a token the draft model gives less than this probability */
      pMin: num(0, 1).default(0.5),
      /** time steps with and without drafts, and pause drafting while it is the slower */
      adaptive: bool().default(true),
    })
    .refine((d) => (d.model === undefined) !== (d.ngram === undefined), { error: 'expected either model (a draft model) or ngram (prompt lookup)' })
    .optional(),
  /** LoRA adapters (from model.loadLora()) the context applies, each with its scale (default: the model's lora option; []: none) */
  lora: loraUsesSchema.optional(),
});
export type ContextOptions = z.input<typeof contextSchema>;
/** What the draft option needs of a Model (kept structural: options are below the engine's classes). */
export interface DraftModel {
  readonly info: { readonly nVocab: number; readonly specialTokens: { readonly bos: number; readonly eos: number; readonly eog: readonly number[] } };
  readonly isDisposed: boolean;
}

export const samplingSchema = {
  /** 0 picks the most likely token (greedy) */
  temperature: num(0, 100).default(0.8),
  topK: int(0, 1 << 20).default(40),
  topP: num(0, 1).default(0.95),
  minP: num(0, 1).default(0.05),
  typicalP: num(0, 1).default(1),
  repeatPenalty: num(0, 100).default(1),
  frequencyPenalty: num(-100, 100).default(0),
  presencePenalty: num(-100, 100).default(0),
  /** tokens the penalties look back over (-1: the whole context) */
  penaltyLastN: int(-1, 1 << 24).default(64),
  seed: int(0, 0xffffffff).optional(),
  mirostat: z.union([z.literal(0), z.literal(1), z.literal(2)], { error: 'expected 0, 1 or 2' }).default(0),
  mirostatTau: num(0, 100).default(5),
  mirostatEta: num(0, 1).default(0.1),
  /** token id -> bias added to its logit (-Infinity bans it) */
  logitBias: z
    .record(
      z.string().regex(/^\d+$/, { error: 'expected token ids as keys' }),
      z.custom<number>((v) => typeof v === 'number' && !Number.isNaN(v) && v !== Infinity, { error: 'expected a number, or -Infinity to ban the token' }),
    )
    .optional(),
  dryMultiplier: num(0, 100).default(0),
  dryBase: num(1, 100).default(1.75),
  dryAllowedLength: int(0, 1 << 16).default(2),
  dryPenaltyLastN: int(-1, 1 << 24).default(-1),
  xtcProbability: num(0, 1).default(0),
  xtcThreshold: num(0, 1).default(0.1),
  /** a GBNF grammar that constrains the output */
  grammar: z.string({ error: 'expected a GBNF grammar string' }).min(1).optional(),
  grammarRoot: z.string().default('root'),
  /** make the grammar lazy: it applies from the first match of one of these patterns (regex, matched from the start of the output; the grammar sees the text from the first capture group) */
  grammarTriggerPatterns: z.array(z.string(), { error: 'expected an array of regular expressions' }).optional(),
};

export const generateSchema = z.strictObject({
  ...samplingSchema,
  maxTokens: int(0, 1 << 24).default(256),
  /** strings that end the generation; they are not part of the output */
  stop: z.array(z.string().min(1, { error: 'expected non-empty stop strings' }), { error: 'expected an array of strings' }).default([]),
  signal: abortSignal().optional(),
  /** parse special-token text (e.g. <|im_start|>) in a string prompt */
  parseSpecial: bool().default(true),
  /** render control tokens in the output text */
  renderSpecial: bool().default(false),
  /** tokens the native loop may run ahead of the consumer */
  bufferTokens: int(1, 1 << 16).default(256),
});
export type GenerateOptions = z.input<typeof generateSchema>;
export type ParsedGenerateOptions = z.output<typeof generateSchema>;

/** A default seed when none is given: random, so sampled output differs between runs. */
export function resolveSeed(seed: number | undefined): number {
  return seed ?? Math.floor(Math.random() * 0xffffffff);
}
