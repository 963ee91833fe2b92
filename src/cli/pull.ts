/** hermes3 pull: download a model into the models directory, with a progress bar, or pick the quantization that fits. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { InsufficientMemoryError, OptionsError } from '../errors.js';
import { hubConfig, listRepoFiles } from '../models/hf.js';
import { formatBytes, type PullProgress } from '../models/progress.js';
import { DEFAULT_MODEL_REF, planPull, pullModel, resolveModelPath, type PullResult } from '../models/pull.js';
import { HERMES3_REPOS, recommendQuant, type Hermes3Shape, type QuantRecommendation } from '../models/recommend.js';
import { modelsDir } from '../models/records.js';
import { parseRef, type RemoteFile } from '../models/refs.js';
import type { DeviceInfo } from '../engine/backends.js';
import { intArg, type CliIO, type Values } from './args.js';
import { Progress } from './progress.js';

export interface PullCommandOptions {
  recommend?: boolean;
  shape?: string;
  ctx?: string;
  json?: boolean;
  dryRun?: boolean;
}

/** What the command reads from its surroundings; tests replace them. */
export interface PullDeps {
  env?: NodeJS.ProcessEnv;
  /** where progress and explanations go (default process.stderr) */
  stderr?: NodeJS.WriteStream;
  /** the devices --recommend fits (default getBackendInfo().devices) */
  devices?: DeviceInfo[];
}

export function register(program: Command, io: CliIO): void {
  program
    .command('pull')
    .summary('download a model into the models directory (resumable, verified)')
    .description(
      'Downloads a GGUF model into the models directory (HERMES3_MODELS, else ~/.cache/hermes3/models), verifies its SHA-256 against the published one and prints its path. An interrupted pull resumes where it stopped.\n\n' +
        `REF is hf:OWNER/REPO:QUANT, hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO (its only GGUF), each with an optional @REVISION, or an https:// URL to a .gguf file; default ${DEFAULT_MODEL_REF}. HF_TOKEN opens gated repositories; HF_ENDPOINT points at a mirror.`,
    )
    .argument('[ref]', 'the model to pull')
    .option('--recommend', 'pick the largest Hermes 3 quantization that fits this machine, and say why')
    .option('--shape <8b|70b|405b>', 'with --recommend: the model size (default: from REF, else 8b)')
    .option('--ctx <n>', 'with --recommend: the context length to fit (default 8192)')
    .option('--dry-run', 'say what would be downloaded, download nothing')
    .option('--json', 'print the result as one JSON object')
    .addHelpText('after', `\nExamples:\n  hermes3 pull ${DEFAULT_MODEL_REF}\n  hermes3 pull --recommend --shape 70b --ctx 32768\n  hermes3 pull hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF/Hermes-3-Llama-3.1-8B.Q8_0.gguf`)
    .action(async (ref: string | undefined, values: Values) => void (await pullCommand(ref, values as PullCommandOptions, io.out, io.signal)));
}

/** The quantization --recommend picks, from the repository's listing (or the built-in list offline). */
async function recommendation(ref: string | undefined, opts: PullCommandOptions, deps: PullDeps, signal: AbortSignal, note: (line: string) => void): Promise<QuantRecommendation> {
  const parsed = ref ? parseRef(ref) : undefined;
  if (parsed && (parsed.kind !== 'hf' || parsed.quant || parsed.file)) {
    throw new OptionsError(`--recommend picks the quantization: pass hf:OWNER/REPO without :QUANT or a file, or no REF, received '${ref}'`);
  }
  const inferred = parsed?.kind === 'hf' ? (/(405|70|8)b/i.exec(parsed.repo)?.[1]?.toLowerCase() as string | undefined) : undefined;
  const shape = (opts.shape ?? (inferred ? `${inferred}b` : '8b')) as Hermes3Shape;
  if (!(shape in HERMES3_REPOS)) throw new OptionsError(`Invalid --shape: expected one of ${Object.keys(HERMES3_REPOS).join(', ')}, received '${opts.shape}'`);
  const nCtx = intArg(opts.ctx, 'ctx', 256) ?? 8192;
  const [owner, repo] = parsed?.kind === 'hf' ? [parsed.owner, parsed.repo] : HERMES3_REPOS[shape].split('/');
  let files: RemoteFile[] | undefined;
  try {
    files = await listRepoFiles({ kind: 'hf', text: '', owner, repo, revision: parsed?.kind === 'hf' ? parsed.revision : 'main' }, hubConfig(deps.env ?? process.env), signal);
  } catch (err) {
    if (signal.aborted) throw err;
    note(`could not list ${owner}/${repo} (${(err as Error).message}); choosing among the usual quantizations`);
  }
  const r = await recommendQuant({ shape, nCtx, files, devices: deps.devices });
  const rev = parsed?.kind === 'hf' && parsed.revision !== 'main' ? `@${parsed.revision}` : '';
  return { ...r, ref: r.quant ? `hf:${owner}/${repo}:${r.quant}${rev}` : undefined };
}

/** A bar per file on a terminal, plain lines otherwise; a split model's parts are numbered. */
function progressBars(stderr: NodeJS.WriteStream) {
  let bar: Progress | undefined;
  let current = '';
  return {
    update(p: PullProgress) {
      if (p.file !== current) {
        bar?.finish();
        current = p.file;
        const part = p.fileCount > 1 ? ` (${p.fileIndex}/${p.fileCount})` : '';
        bar = new Progress({ label: `pulling ${p.file.split('/').pop()}${part}`, totalBytes: p.totalBytes, stream: stderr });
      }
      bar!.update(p.receivedBytes);
    },
    finish: () => bar?.finish(),
    abandon: () => bar?.abandon(),
  };
}

/**
 * `hermes3 pull [REF] [--recommend [--shape S] [--ctx N]] [--dry-run] [--json]`: prints the model's
 * path (or a JSON object) on `out`; progress and explanations go to stderr.
 */
export async function pullCommand(ref: string | undefined, opts: PullCommandOptions, out: NodeJS.WritableStream, signal: AbortSignal, deps: PullDeps = {}): Promise<PullResult | undefined> {
  const stderr = deps.stderr ?? process.stderr;
  const env = deps.env ?? process.env;
  const note = (line: string) => stderr.write(`${line}\n`);
  if (!opts.recommend && (opts.shape !== undefined || opts.ctx !== undefined)) throw new OptionsError('--shape and --ctx go with --recommend');
  let target = ref ?? DEFAULT_MODEL_REF;
  let rec: QuantRecommendation | undefined;
  if (opts.recommend) {
    rec = await recommendation(ref, opts, deps, signal, note);
    const shown = rec.candidates.filter((c) => c.device === (rec!.device));
    if (!opts.json) for (const c of shown) note(`  ${c.fits ? '✓' : '✗'} ${c.reason}`);
    if (!rec.ref) throw new InsufficientMemoryError(rec.reason);
    if (!opts.json) note(rec.reason);
    target = rec.ref;
  }
  if (opts.dryRun) {
    // offline, a recommendation is still worth printing without its files
    const plan = await planPull(parseRef(target), env, signal).catch((err: Error) => {
      if (signal.aborted || !rec) throw err;
      note(`could not resolve ${target}: ${err.message}`);
      return undefined;
    });
    const dir = resolve(modelsDir(env));
    const files = plan?.files.map((f) => ({ path: f.local, size: f.size }));
    if (opts.json) {
      out.write(JSON.stringify({ ref: target, dir, files, recommendation: rec }, null, 2) + '\n');
    } else {
      for (const f of files ?? []) out.write(`${f.path}  ${f.size === undefined ? 'size unknown' : formatBytes(f.size)}\n`);
      out.write(`would download ${target} to ${dir}\n`);
    }
    return undefined;
  }
  const bars = opts.json ? undefined : progressBars(stderr);
  let result: PullResult;
  try {
    result = await pullModel(target, {
      signal,
      env,
      onProgress: bars?.update,
      onLockWait: ({ file, pid, host }) => note(`waiting for another pull of ${file} (process ${pid} on ${host}) to finish`),
    });
    bars?.finish();
  } catch (err) {
    bars?.abandon();
    throw err;
  }
  if (opts.json) {
    out.write(JSON.stringify({ ref: target, path: result.path, files: result.files, cached: result.cached, size: result.record.files.reduce((n, f) => n + f.size, 0), recommendation: rec }, null, 2) + '\n');
  } else {
    if (result.cached) note(`${target} is already pulled`);
    out.write(`${result.path}\n`);
  }
  return result;
}

/**
 * The model path for a --model value in the CLI: a file as is, a reference from the cache or
 * pulled with a progress bar, after a y/N question on a terminal unless `yes`.
 */
export async function modelPathForCli(spec: string | undefined, options: { yes?: boolean; signal: AbortSignal; env?: NodeJS.ProcessEnv; stderr?: NodeJS.WriteStream }): Promise<string> {
  const stderr = options.stderr ?? process.stderr;
  const interactive = process.stdin.isTTY === true && stderr.isTTY === true;
  const bars = progressBars(stderr);
  const confirm = interactive
    ? async (question: string) => {
        const rl = createInterface({ input: process.stdin, output: stderr });
        try {
          return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
        } finally {
          rl.close();
        }
      }
    : undefined;
  try {
    const path = await resolveModelPath(spec, { yes: options.yes, confirm, signal: options.signal, env: options.env, onProgress: bars.update });
    bars.finish();
    return path;
  } catch (err) {
    bars.abandon();
    throw err;
  }
}
