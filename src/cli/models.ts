/** hermes3 ls and hermes3 rm: the pulled models in the models directory. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { listModels, removeModel, type PulledModel } from '../models/cache.js';
import { formatBytes } from '../models/progress.js';
import { modelsDir } from '../models/records.js';
import type { CliIO, Values } from './args.js';

export function register(program: Command, io: CliIO): void {
  program
    .command('ls')
    .alias('list')
    .summary('list the pulled models')
    .description('Lists the models pulled into the models directory (HERMES3_MODELS, else ~/.cache/hermes3/models): reference, size, when pulled, and the path to pass as --model.')
    .option('--json', 'print the models as a JSON array')
    .action(async (values: Values) => void (await lsCommand({ json: values.json === true }, io.out)));
  program
    .command('rm')
    .alias('remove')
    .summary('remove a pulled model')
    .description('Removes a pulled model: its files, any partial download and its record. Files outside the models directory are never touched.')
    .argument('<ref-or-path>', 'the reference it was pulled with, or the path hermes3 ls shows')
    .addHelpText('after', '\nExample:\n  hermes3 rm hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M')
    .action(async (refOrPath: string) => void (await rmCommand(refOrPath, {}, io.out)));
}

const day = (iso: string) => iso.slice(0, 16).replace('T', ' ');

/** `hermes3 ls [--json]`: one line per pulled model (or a JSON array) on `out`. */
export async function lsCommand(opts: { json?: boolean }, out: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<PulledModel[]> {
  const models = await listModels({ env });
  if (opts.json) {
    out.write(JSON.stringify(models.map(({ record: _record, ...m }) => m), null, 2) + '\n');
    return models;
  }
  if (models.length === 0) {
    out.write(`no models in ${resolve(modelsDir(env))}; hermes3 pull REF downloads one\n`);
    return models;
  }
  const rows = [['REF', 'SIZE', 'PULLED', 'PATH'], ...models.map((m) => [m.ref, formatBytes(m.size), day(m.pulledAt), m.complete ? m.path : `${m.path} (incomplete: pull it again)`])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) out.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ') + '\n');
  return models;
}

/** `hermes3 rm REF|PATH`: removes the model and says what went. */
export async function rmCommand(refOrPath: string, _opts: Record<string, never>, out: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const { removed } = await removeModel(refOrPath, { env });
  for (const p of removed) out.write(`removed ${p}\n`);
  return removed;
}
