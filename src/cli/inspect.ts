import { OptionsError } from '../errors.js';
import { inspectGguf } from '../gguf/inspect.js';
import { readGgufHeader } from '../gguf/reader.js';
import type { Command } from 'commander';
import type { CliIO, Values } from './args.js';

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export function register(program: Command, io: CliIO): void {
  program
    .command('inspect')
    .summary("show what a GGUF file holds, without loading it")
    .description("Reads a GGUF file's header (nothing is loaded): architecture, shape, parameters, file type,\ntensor types and sizes, training context, chat template and special tokens.")
    .argument('<file>', 'a GGUF file')
    .option('--json', 'print everything as one JSON object')
    .option('--tensors', 'list every tensor')
    .addHelpText('after', '\nExample:\n  hermes3 inspect Hermes-3-Llama-3.1-8B.Q4_K_M.gguf --json')
    .action((file: string, values: Values) => inspectCommand(file, values, io.out));
}

export async function inspectCommand(file: string, values: Values, out: NodeJS.WritableStream): Promise<void> {
  if (!file) throw new OptionsError('hermes3 inspect needs one GGUF file');
  const info = await inspectGguf(file);
  if (values.json) {
    out.write(JSON.stringify(info, null, 2) + '\n');
    return;
  }
  const s = info.shape;
  const header = await readGgufHeader(file);
  const meta = (key: string) => header.metadata.get(key)?.value;
  const adapter = meta('general.type') === 'adapter';
  // an adapter (LoRA) has no shape of its own: what it adapts instead
  const targets = header.tensors.filter((t) => t.name.endsWith('.lora_b'));
  const rank = targets.reduce((r, t) => Math.max(r, t.dims[0]), 0);
  const base = meta('general.base_model.0.name');
  const lines = adapter
    ? [
        `file          ${info.path} (${mib(info.fileBytes)}, GGUF v${info.version})`,
        `adapter       ${String(meta('adapter.type') ?? '?')} for ${info.architecture ?? '?'}${typeof base === 'string' ? ` (base model ${base})` : ''}: ${info.name ?? '?'}`,
        `lora          alpha ${String(meta('adapter.lora.alpha') ?? 'none')}, rank ${rank || '?'}, ${targets.length} weights adapted (${mib(info.weightsBytes)})`,
      ]
    : [
        `file          ${info.path} (${mib(info.fileBytes)}, GGUF v${info.version})`,
        `model         ${info.name ?? '?'} — ${info.architecture ?? '?'}, ${(info.nParams / 1e9).toFixed(3)}B parameters`,
        `file type     ${info.fileType ?? '?'} (${info.bitsPerWeight.toFixed(2)} bits per weight, ${mib(info.weightsBytes)} of weights)`,
        `shape         ${s.nLayer} layers, ${s.nEmbd} wide, FFN ${s.nFf}, ${s.nHead} heads / ${s.nHeadKv} KV heads / head dim ${s.headDim}, vocab ${s.nVocab}`,
        `context       ${s.nCtxTrain} tokens (trained), rope theta ${s.ropeTheta}`,
        `tokens        bos ${info.specialTokens.bos}, eos ${info.specialTokens.eos}${info.specialTokens.addBos ? ', BOS added' : ''}`,
        `chat template ${info.chatTemplate ? (info.chatTemplate.includes('<|im_start|>') ? 'ChatML' : 'not ChatML') + ` (${info.chatTemplate.length} characters)` : 'none'}`,
      ];
  lines.push(
    'tensor types  ' +
      Object.entries(info.tensorTypes)
        .sort((a, b) => b[1].bytes - a[1].bytes)
        .map(([t, v]) => `${t}: ${v.count} (${mib(v.bytes)})`)
        .join(', '),
  );
  if (values.tensors) for (const t of info.tensors) lines.push(`  ${t.name.padEnd(32)} ${t.type.padEnd(7)} [${t.dims.join(', ')}] ${mib(t.sizeBytes)}`);
  out.write(lines.join('\n') + '\n');
}
