import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatChat } from '../chat/format.js';
import { loadModel } from '../engine/model.js';
import { writeSyntheticModel } from '../testing/synthetic.js';
import type { Command } from 'commander';
import type { CliIO, Values } from './args.js';

export function register(program: Command, io: CliIO): void {
  program
    .command('demo')
    .summary('write a tiny synthetic model and stream a reply from it')
    .description(
      'Writes a tiny synthetic Hermes 3 model (random weights, the real Llama 3 vocabulary) and streams\na ChatML reply from it. The reply is random text: the demo shows the pipeline, not a trained model.',
    )
    .option('--model-dir <dir>', 'where the synthetic model is written', join(tmpdir(), 'hermes3-native'))
    .option('--prompt <text>', 'the user message', 'Hello Hermes! What can you do?')
    .addHelpText('after', '\nExample:\n  hermes3 demo --prompt "What is the capital of France?"')
    .action((values: Values) => demoCommand(values, io.out, io.signal));
}

export async function demoCommand(values: Values, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const path = join(values.modelDir as string, 'demo-tiny-f16.gguf');
  if (!existsSync(path)) {
    out.write(`writing a synthetic model to ${path}\n`);
    await writeSyntheticModel({ path, shape: 'tiny', seed: 1 });
  }
  const model = await loadModel({ modelPath: path, signal });
  try {
    const { info } = model;
    out.write(`model: ${info.name} (${info.architecture}, ${(info.nParams / 1e6).toFixed(1)}M parameters, ${info.fileType})\n`);
    const ctx = await model.createContext({ nCtx: 1024 });
    const messages = [
      { role: 'system' as const, content: 'You are Hermes 3, a helpful assistant.' },
      { role: 'user' as const, content: values.prompt as string },
    ];
    out.write(`user: ${values.prompt}\nassistant: `);
    for await (const chunk of ctx.sequence().generate(formatChat(messages), { maxTokens: 48, temperature: 0.8, seed: 42, signal })) {
      out.write(chunk.text);
      if (chunk.finishReason && chunk.timings) {
        const t = chunk.timings;
        out.write(
          `\n\n[${chunk.finishReason}] ${t.generatedTokens} tokens, prompt ${t.promptTokensPerSecond.toFixed(0)} tok/s, generation ${t.generateTokensPerSecond.toFixed(0)} tok/s\n`,
        );
      }
    }
  } finally {
    await model.dispose();
  }
}
