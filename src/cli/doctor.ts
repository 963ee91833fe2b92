/** hermes3 doctor: the troubleshooting guide run against this machine, this install and a model file. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ModelNotFoundError } from '../errors.js';
import { findCached } from '../models/cache.js';
import { modelsDir } from '../models/records.js';
import { isModelRef, parseRef } from '../models/refs.js';
import { doctor } from '../doctor/index.js';
import { formatFinding, summarize } from '../doctor/report.js';
import { gpuLayersArg, intArg, type CliIO, type Values } from './args.js';
import { EXIT } from './exit.js';

export interface DoctorCommandOptions {
  model?: string;
  ctx?: string | number;
  gpuLayers?: string | number;
  threads?: string | number;
  /** false: skip the speed probe (--no-probe) */
  probe?: boolean;
  json?: boolean;
}

/** A reference names the pulled model in the cache (the doctor never downloads); anything else is a path. */
async function pulledPath(spec: string): Promise<string> {
  if (!isModelRef(spec) || existsSync(spec)) return spec;
  const found = await findCached(parseRef(spec), resolve(modelsDir()));
  if (!found) throw new ModelNotFoundError(`${spec} is not in the models directory (${modelsDir()}): pull it first with hermes3 pull ${spec}, or pass the path of the GGUF file`);
  return found.path;
}

/**
 * Runs the checks and prints them: a report (each finding as it is made), or with `json` the
 * findings as one JSON array. Returns the exit code: 0 when nothing fails, 1 when something does.
 */
export async function doctorCommand(opts: DoctorCommandOptions, out: NodeJS.WritableStream): Promise<number> {
  const nCtx = intArg(opts.ctx, 'ctx', 16);
  const nGpuLayers = gpuLayersArg(opts.gpuLayers);
  const threads = intArg(opts.threads, 'threads', 1);
  const progress = !opts.json && process.stderr.isTTY ? (message: string) => process.stderr.write(`        … ${message}\n`) : undefined;
  let first = true;
  const findings = await doctor({
    modelPath: opts.model === undefined ? undefined : await pulledPath(opts.model),
    nCtx,
    nGpuLayers,
    probe: opts.probe === false ? false : threads ? { threads } : true,
    onProgress: progress,
    onFinding: opts.json
      ? undefined
      : (f) => {
          out.write((first ? '' : '\n') + formatFinding(f, Math.min(Math.max((process.stdout.columns ?? 100) - 1, 60), 120)) + '\n');
          first = false;
        },
  });
  if (opts.json) out.write(JSON.stringify(findings, null, 2) + '\n');
  else out.write(`\n${summarize(findings)}\n`);
  return findings.some((f) => f.status === 'fail') ? EXIT.failure : EXIT.ok;
}

export function register(program: Command, io: CliIO): void {
  program
    .command('doctor')
    .summary('check the install, the GPU, the CPU build and a model file, and say what to fix')
    .description(
      'Checks the backends and GPUs this install finds (and why an expected GPU is absent), the CPU code\n' +
        'and compiler in use, and with --model: that the file is whole (against its pull record and its\n' +
        'own header), its chat template, whether it fits with --ctx and --gpu-layers, and how fast it\n' +
        'generates against what memory bandwidth allows. Exit code 1 when a check fails.',
    )
    .option('--model <file>', 'a GGUF model file to check')
    .option('--ctx <n>', 'context length to fit (default: min(training context, 4096))')
    .option('--gpu-layers <n|max|auto>', 'layers to offload to the GPU (default auto)')
    .option('--threads <n>', 'CPU threads for the speed probe (default: physical cores)')
    .option('--no-probe', 'skip the speed probe (about 5 s of generation)')
    .option('--json', 'print the findings as a JSON array')
    .addHelpText('after', '\nExample:\n  hermes3 doctor --model Hermes-3-Llama-3.1-8B.Q4_K_M.gguf --ctx 32768')
    .action(async (values: Values) => {
      const code = await doctorCommand(values as DoctorCommandOptions, io.out);
      // the report is printed; the exit code carries the verdict (main maps this error to 1)
      io.exitCode = code;
    });
}
