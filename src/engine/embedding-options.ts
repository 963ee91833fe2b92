/** Schemas and defaults for embedding contexts and embed() calls. */
import { z } from 'zod';
import { abortSignal, bool, int } from './validate.js';

/** Context length of an embedding context when none is asked for (capped by the training context). */
export const DEFAULT_EMBEDDING_CTX = 2048;

/** llama_pooling_type values */
export const POOLING_IDS = { none: 0, mean: 1, cls: 2, last: 3 } as const;
export type Pooling = keyof typeof POOLING_IDS;
/** a pooling name, as every option that takes one accepts it */
export const poolingSchema = () => z.enum(Object.keys(POOLING_IDS) as [Pooling, ...Pooling[]], { error: "expected 'none', 'mean', 'cls' or 'last'" });

export const embeddingContextSchema = z.strictObject({
  /** tokens one decode holds, and so the longest input (default: min(training context, DEFAULT_EMBEDDING_CTX)) */
  nCtx: int(16, 1 << 20).optional(),
  /** inputs one decode holds at most, each as its own sequence */
  nSeqMax: int(1, 256).default(16),
  /**
   * how a sequence's token embeddings become one vector: 'mean', 'cls' (the first token), 'last'
   * (the last token), or 'none' (every token's embedding, one after another). Default: the
   * model's `<arch>.pooling_type`, else 'mean'
   */
  pooling: poolingSchema().optional(),
  /** CPU threads (default: physical cores) */
  threads: int(1, 1024).optional(),
  flashAttention: z.union([bool(), z.literal('auto')], { error: "expected true, false or 'auto'" }).default('auto'),
});

export const embedSchema = z.strictObject({
  /** scale each vector to unit length (Euclidean), as llama.cpp's embedding example does (default true) */
  normalize: bool().default(true),
  /**
   * an input longer than nCtx tokens: false (the default) fails with ContextOverflowError; true
   * keeps its first nCtx tokens (and the end-of-sequence token the tokenizer adds, if any)
   */
  truncate: bool().default(false),
  /** parse special-token text such as <|im_start|> in the inputs (default false: plain text) */
  special: bool().default(false),
  signal: abortSignal().optional(),
});

export type EmbeddingContextOptions = z.input<typeof embeddingContextSchema>;
export type EmbedOptions = z.input<typeof embedSchema>;
