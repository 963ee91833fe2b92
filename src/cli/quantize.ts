import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { quantize } from '../engine/quantize.js';
import { OptionsError } from '../errors.js';
import { inspectGguf } from '../gguf/inspect.js';
import { plannedTensors } from '../gguf/tensors.js';
import { FILE_TYPES, type FileTypeName } from '../gguf/types.js';
import { intArg, type CliIO, type Values } from './args.js';
import { Progress } from './progress.js';

export function register(program: Command, io: CliIO): void {
  program
    .command('quantize')
    .summary('quantize a GGUF model to a smaller file type')
    .description("Quantizes a GGUF model with llama.cpp's quantizer (the same code as llama-quantize), with a\nprogress bar from the size of the file written so far against the size the new type gives.")
    .argument('<input>', 'the GGUF model to quantize (usually F16 or BF16)')
    .argument('<output>', 'the file to write')
    .argument('<type>', `the file type: ${Object.keys(FILE_TYPES).join(', ')}`)
    .option('--threads <n>', 'CPU threads (default: physical cores)')
    .option('--json', 'print the result as JSON: input, output, type, bytes, seconds')
    .addHelpText('after', '\nExample:\n  hermes3 quantize Hermes-3-Llama-3.1-8B.F16.gguf Hermes-3-Llama-3.1-8B.Q4_K_M.gguf Q4_K_M')
    .action((input: string, output: string, type: string, values: Values) => quantizeCommand(input, output, type, values, io.out));
}

export async function quantizeCommand(input: string, output: string, type: string, values: Values, out: NodeJS.WritableStream): Promise<void> {
  if (!(type in FILE_TYPES)) throw new OptionsError(`Invalid type '${type}': expected one of ${Object.keys(FILE_TYPES).join(', ')}`);
  const info = await inspectGguf(input);
  // the size the new type gives these tensors (metadata aside), for the bar
  const sh = info.shape;
  const known = [sh.nLayer, sh.nEmbd, sh.nFf, sh.nHead, sh.nHeadKv, sh.headDim, sh.nVocab].every((v) => typeof v === 'number' && v > 0);
  const expected = known
    ? plannedTensors({ ...(sh as Required<typeof sh>), name: info.name ?? 'model', tiedEmbeddings: !info.tensors.some((t) => t.name === 'output.weight') }, type as FileTypeName).reduce((n, t) => n + t.sizeBytes, 0)
    : info.fileBytes;
  const bar = values.json ? undefined : new Progress({ label: `quantizing to ${type}`, totalBytes: expected });
  const started = Date.now();
  const poll = setInterval(() => {
    stat(output).then((s) => bar?.update(Math.min(s.size, expected)), () => undefined);
  }, 250);
  try {
    await quantize({ input, output, type: type as FileTypeName, threads: intArg(values.threads, 'threads', 1) });
  } catch (err) {
    bar?.abandon();
    throw err;
  } finally {
    clearInterval(poll);
  }
  const bytes = (await stat(output)).size;
  const seconds = (Date.now() - started) / 1000;
  bar?.finish(`quantized ${input} to ${type}: ${output} (${(bytes / 1e6).toFixed(1)} MB from ${(info.fileBytes / 1e6).toFixed(1)} MB) in ${seconds.toFixed(1)} s`);
  if (values.json) out.write(JSON.stringify({ input, output, type, bytes, inputBytes: info.fileBytes, seconds }) + '\n');
}
