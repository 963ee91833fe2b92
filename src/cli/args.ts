/** Options several commands share, and reading their values. */
import type { Command } from 'commander';
import { OptionsError } from '../errors.js';
import { loadModel } from '../engine/model.js';
import { DEFAULT_MODEL_REF } from '../models/pull.js';
import { Progress } from './progress.js';
import { modelPathForCli } from './pull.js';

/** What a command needs from the process: where to print, and the Ctrl-C signal. */
export interface CliIO {
  out: NodeJS.WritableStream;
  signal: AbortSignal;
  /** a command that completes with a status other than 0 (a check that failed) sets it */
  exitCode?: number;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export function intArg(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new OptionsError(`Invalid --${name}: expected an integer >= ${min}, received '${String(value)}'`);
  return n;
}

export function numArg(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new OptionsError(`Invalid --${name}: expected a number, received '${String(value)}'`);
  return n;
}

/** --gpu-layers N|max|auto */
export function gpuLayersArg(value: unknown): number | 'max' | 'auto' {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === 'max') return 'max';
  return intArg(value, 'gpu-layers', 0)!;
}

/** --lora FILE[:SCALE], repeatable: LoRA adapters applied to the model (scale 1 unless given). */
export function loraOption(cmd: Command): Command {
  return cmd.option(
    '--lora <file[:scale]>',
    'apply a LoRA adapter GGUF made for this model, with a scale (default 1; repeatable)',
    (v: string, all: string[] = []) => [...all, v],
  );
}

/**
 * The adapters of --lora values: FILE or FILE:SCALE. The scale is what follows the last colon
 * (so C:\dir\a.gguf is a file); it must be a number between -100 and 100.
 */
export function loraArgs(value: unknown): Array<{ path: string; scale: number }> | undefined {
  if (value === undefined) return undefined;
  const values = Array.isArray(value) ? value : [value];
  return values.map((raw) => {
    const text = String(raw);
    const usage = `expected FILE or FILE:SCALE (a LoRA adapter GGUF file and a number, default 1), received '${text}'`;
    if (text.trim() === '') throw new OptionsError(`Invalid --lora: ${usage}`);
    const m = /^(.+):([^:/\\]*)$/.exec(text);
    if (!m || (m[1].length === 1 && /^[A-Za-z]$/.test(m[1]) && !/^[-+.\d]/.test(m[2]))) return { path: text, scale: 1 };
    const scale = m[2].trim() === '' ? NaN : Number(m[2]);
    if (!Number.isFinite(scale)) throw new OptionsError(`Invalid --lora: the scale '${m[2]}' is not a number; ${usage}`);
    if (scale < -100 || scale > 100) throw new OptionsError(`Invalid --lora: the scale ${scale} is outside -100 to 100; ${usage}`);
    return { path: m[1], scale };
  });
}

/** The options of every command that runs a model. */
export function modelOptions(cmd: Command): Command {
  return loraOption(
    cmd
      .option('--model <file|ref>', `GGUF model file, or a reference (hf:OWNER/REPO:QUANT, a URL) from the cache or pulled (default ${DEFAULT_MODEL_REF})`)
      .option('-y, --yes', 'download the model without asking when it is not in the cache')
      .option('--ctx <n|auto>', 'context length (default: min(training context, 4096); auto: the longest that fits, up to 8192)')
      .option('--threads <n>', 'CPU threads (default: physical cores)')
      .option('--gpu-layers <n|max|auto>', 'layers to offload to the GPU (default auto: as many as fit)'),
  );
}

export function samplingOptions(cmd: Command, defaultMaxTokens: number): Command {
  return cmd
    .option('--max-tokens <n>', `most tokens to generate (default ${defaultMaxTokens})`)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy (default 0.8)')
    .option('--seed <s>', 'sampling seed');
}

/**
 * The model file a --model value (or a config's model) names: a file as it is, or a reference
 * (hf:OWNER/REPO:QUANT, a URL) from the cache or pulled; none means Hermes 3 8B Q4_K_M. A pull
 * asks first on a terminal, unless --yes.
 */
export async function resolveModelSpec(spec: string | undefined, values: Values, signal: AbortSignal): Promise<string> {
  return modelPathForCli(spec, { yes: values.yes === true, signal });
}

/** Loads a model (and its --lora adapters) with a progress bar on stderr. */
export async function loadWithProgress(modelPath: string, nGpuLayers: number | 'max' | 'auto', signal: AbortSignal, quiet = false, lora?: Array<{ path: string; scale: number }>) {
  const bar = quiet ? undefined : new Progress({ label: `loading ${modelPath.split(/[\\/]/).pop()}` });
  try {
    const model = await loadModel({ modelPath, nGpuLayers, signal, lora, onProgress: bar ? (p) => bar.update(p) : undefined });
    bar?.finish();
    return model;
  } catch (err) {
    bar?.abandon();
    throw err;
  }
}

/** Loads the model and creates a context as the model options say. */
export async function openModel(values: Values, _command: string, signal: AbortSignal) {
  const lora = loraArgs(values.lora);
  const modelPath = await resolveModelSpec(values.model as string | undefined, values, signal);
  const ctxArg = values.ctx as string | undefined;
  const nCtx = ctxArg === 'auto' ? 'auto' : intArg(ctxArg, 'ctx', 16);
  const threads = intArg(values.threads, 'threads', 1);
  const nGpuLayers = gpuLayersArg(values.gpuLayers);
  const model = await loadWithProgress(modelPath, nGpuLayers, signal, values.json === true, lora);
  try {
    const context = await model.createContext({ nCtx, threads });
    return { model, context };
  } catch (err) {
    await model.dispose();
    throw err;
  }
}

/** Sampling options from the command line. */
export function samplingArgs(values: Values, defaultMaxTokens: number) {
  return {
    maxTokens: intArg(values.maxTokens, 'max-tokens', 0) ?? defaultMaxTokens,
    temperature: numArg(values.temperature, 'temperature') ?? 0.8,
    seed: intArg(values.seed, 'seed', 0),
  };
}
