/** The model files a run benchmarks: the given file, or synthetic models written once into the cache. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { inspectGguf } from '../gguf/inspect.js';
import { writeSyntheticModel } from '../testing/synthetic.js';
import type { BenchOptions, BenchQuant } from './options.js';

/** The seed of every synthetic benchmark model: the speculative pair shares its weights. */
const SEED = 1;

export interface BenchModels {
  model: string;
  /** speculative decoding: an F16 target and a Q4_K_M draft quantized from the same weights */
  speculative?: { target: string; draft: string };
}

async function synthetic(o: BenchOptions, quant: BenchQuant, log: (line: string) => void): Promise<string> {
  const path = join(o.cacheDir, `${o.shape}-${quant.toLowerCase()}-seed${SEED}.gguf`);
  if (!existsSync(path)) {
    log(`writing the synthetic ${o.shape} ${quant} model to ${path}`);
    await writeSyntheticModel({ path, shape: o.shape, quant, seed: SEED });
  }
  return path;
}

export async function benchModels(o: BenchOptions, log: (line: string) => void): Promise<BenchModels> {
  const model = o.modelPath ?? (await synthetic(o, o.quant, log));
  // a file that is not a GGUF model fails here, once, with the reader's message
  await inspectGguf(model);
  if (!o.speculative || !o.only.includes('hermes3')) return { model };
  if (o.modelPath) {
    log('speculative: skipped, it needs the synthetic pair of one shape (an F16 target, its Q4_K_M draft): use --shape instead of --model');
    return { model };
  }
  return { model, speculative: { target: await synthetic(o, 'F16', log), draft: await synthetic(o, 'Q4_K_M', log) } };
}
