import { Chat, type Chunk, type GenerateOptions, type Model, type Sequence } from '../../src/index.js';

export interface Collected {
  text: string;
  tokens: number[];
  chunks: Chunk[];
  last: Chunk;
}

export async function collect(iterable: AsyncIterable<Chunk>): Promise<Collected> {
  const chunks: Chunk[] = [];
  for await (const c of iterable) chunks.push(c);
  return {
    text: chunks.map((c) => c.text).join(''),
    tokens: chunks.flatMap((c) => c.tokens),
    chunks,
    last: chunks[chunks.length - 1],
  };
}

export const greedy = { temperature: 0 } as const;

export function generate(seq: Sequence, input: string | number[], options: Parameters<Sequence['generate']>[1] = {}) {
  return collect(seq.generate(input, { ...greedy, ...options }));
}

/** A chat whose model writes scripted text, one script entry per generation, streamed in 5-character pieces. */
export class ScriptedChat extends Chat {
  prompts: string[] = [];
  constructor(model: Model, readonly script: string[]) {
    super(model, {});
  }
  protected override async *generate(_seq: Sequence, tokens: number[], _options: GenerateOptions): AsyncIterable<Chunk> {
    this.prompts.push(this.model.detokenize(tokens, { special: true }));
    const text = this.script.shift() ?? 'script ended';
    const pieces = text.match(/[\s\S]{1,5}/g) ?? [];
    for (const piece of pieces) yield { text: piece, tokens: this.model.tokenize(piece) };
    const n = this.model.tokenize(text).length;
    yield {
      text: '',
      tokens: [],
      finishReason: 'stop',
      timings: { promptTokens: tokens.length, cachedTokens: 0, evaluatedTokens: tokens.length, generatedTokens: n, promptMs: 1, generateMs: 1, promptTokensPerSecond: 1, generateTokensPerSecond: 1, draftTokens: 0, acceptedTokens: 0 },
    };
  }
}
