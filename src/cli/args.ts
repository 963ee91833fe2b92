import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OptionsError } from '../errors.js';
import { loadModel } from '../engine/model.js';

/** parseArgs with errors as OptionsError, so the CLI reports them as usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T): { values: Record<string, string | boolean | undefined> & { [K in keyof T]: T[K]['type'] extends 'boolean' ? boolean : string | undefined }; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as never;
  } catch (err) {
    throw new OptionsError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

export function intArg(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new OptionsError(`Invalid --${name}: expected an integer >= ${min}, received '${value}'`);
  return n;
}

export function numArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new OptionsError(`Invalid --${name}: expected a number, received '${value}'`);
  return n;
}

/** Options every command that runs a model takes. */
export const modelArgs = {
  model: { type: 'string' },
  ctx: { type: 'string' },
  threads: { type: 'string' },
  'gpu-layers': { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  seed: { type: 'string' },
} as const;

export const modelArgsUsage = `  --model FILE         GGUF model file (required)
  --ctx N|auto         context length (default: min(training context, 4096); auto: the
                       longest that fits in memory, up to 8192)
  --threads N          CPU threads (default: physical cores)
  --gpu-layers N|max|auto  layers to offload to the GPU (default auto: as many as fit)
  --temperature T      sampling temperature; 0 is greedy (default 0.8)
  --seed S             sampling seed`;

/** Loads the model and creates a context as the model options say. */
export async function openModel(values: Record<string, string | boolean | undefined>, command: string, signal: AbortSignal) {
  const modelPath = values.model;
  if (typeof modelPath !== 'string') throw new OptionsError(`hermes3 ${command} needs --model FILE (a GGUF model)`);
  const gpu = values['gpu-layers'] as string | undefined;
  const nGpuLayers = gpu === 'max' || gpu === 'auto' || gpu === undefined ? (gpu ?? 'auto') : intArg(gpu, 'gpu-layers', 0)!;
  const ctxArg = values.ctx as string | undefined;
  const nCtx = ctxArg === 'auto' ? 'auto' : intArg(ctxArg, 'ctx', 16);
  const model = await loadModel({ modelPath, nGpuLayers, signal });
  try {
    const context = await model.createContext({ nCtx, threads: intArg(values.threads as string | undefined, 'threads', 1) });
    return { model, context };
  } catch (err) {
    await model.dispose();
    throw err;
  }
}

/** Sampling options from the command line. */
export function samplingArgs(values: Record<string, string | boolean | undefined>, defaultMaxTokens: number) {
  return {
    maxTokens: intArg(values['max-tokens'] as string | undefined, 'max-tokens', 0) ?? defaultMaxTokens,
    temperature: numArg(values.temperature as string | undefined, 'temperature') ?? 0.8,
    seed: intArg(values.seed as string | undefined, 'seed', 0),
  };
}
