/** The token workloads both engines run, and token arrival timing. */
import { performance } from 'node:perf_hooks';
import type { BenchSequence } from './engines.js';

export const now = () => performance.now();

/** A prompt of `n` ordinary tokens after BOS, different for each `salt`. */
export function prompt(bos: number, n: number, salt = 0): number[] {
  return [bos, ...Array.from({ length: n - 1 }, (_, i) => (i * 7919 + salt * 104729 + 1000) % 128000)];
}

/** Generates `n` tokens and returns when the first and the last arrived, and how many came after the first. */
export async function timedGenerate(seq: BenchSequence, tokens: number[], n: number) {
  let first: number | undefined;
  let last = 0;
  let after = 0;
  await seq.generate(tokens, n, (k) => {
    last = now();
    if (first === undefined) first = last;
    else after += k;
  });
  if (first === undefined) throw new Error('no token was generated');
  return { first, last, after };
}
