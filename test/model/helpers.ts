import type { Chunk, Sequence } from '../../src/index.js';

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
