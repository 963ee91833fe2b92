import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatChat } from '../chat/format.js';
import { loadModel } from '../engine/model.js';
import { writeSyntheticModel } from '../testing/synthetic.js';
import { parse } from './args.js';

export const demoUsage = `hermes3 demo [--model-dir DIR] [--prompt TEXT]

Writes a tiny synthetic Hermes 3 model (random weights, the real Llama 3 vocabulary) and streams
a ChatML reply from it. The reply is random text: the demo shows the pipeline, not a trained model.`;

export async function demoCommand(argv: string[], out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const { values } = parse(argv, {
    'model-dir': { type: 'string', default: join(tmpdir(), 'hermes3-native') },
    prompt: { type: 'string', default: 'Hello Hermes! What can you do?' },
  });
  const path = join(values['model-dir']!, 'demo-tiny-f16.gguf');
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
      { role: 'user' as const, content: values.prompt! },
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
