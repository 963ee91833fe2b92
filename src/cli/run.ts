import { formatChat } from '../chat/format.js';
import { OptionsError } from '../errors.js';
import type { FinishReason, GenerationTimings } from '../engine/sequence.js';
import type { Command } from 'commander';
import { modelOptions, openModel, samplingArgs, samplingOptions, type CliIO, type Values } from './args.js';

export interface RunResult {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  timings: GenerationTimings | undefined;
}

export function register(program: Command, io: CliIO): void {
  const cmd = program
    .command('run')
    .summary('generate a reply to one prompt')
    .description('Sends TEXT as a user message through ChatML and streams the reply.')
    .requiredOption('--prompt <text>', 'the user message')
    .option('--system <text>', 'a system prompt');
  samplingOptions(modelOptions(cmd), 256)
    .option('--raw', 'send TEXT as raw prompt text, special tokens parsed')
    .option('--json', 'print one JSON object: text, tokens, finishReason, timings')
    .addHelpText('after', '\nExample:\n  hermes3 run --model Hermes-3-Llama-3.1-8B.Q4_K_M.gguf --prompt "Write a haiku about the sea" --temperature 0.7')
    .action(async (values: Values) => {
      await runCommand(values, io.out, io.signal);
    });
}

export async function runCommand(values: Values, out: NodeJS.WritableStream, signal: AbortSignal): Promise<RunResult> {
  if (typeof values.prompt !== 'string') throw new OptionsError('hermes3 run needs --prompt TEXT');
  const { model, context: ctx } = await openModel(values, 'run', signal);
  try {
    const text = values.prompt as string;
    const prompt = values.raw
      ? text
      : formatChat([...(typeof values.system === 'string' ? [{ role: 'system' as const, content: values.system }] : []), { role: 'user', content: text }]);
    const result: RunResult = { text: '', tokens: [], finishReason: 'abort', timings: undefined };
    for await (const chunk of ctx.sequence().generate(prompt, { ...samplingArgs(values, 256), signal })) {
      result.text += chunk.text;
      result.tokens.push(...chunk.tokens);
      if (!values.json && chunk.text) out.write(chunk.text);
      if (chunk.finishReason) {
        result.finishReason = chunk.finishReason;
        result.timings = chunk.timings;
      }
    }
    out.write(values.json ? JSON.stringify(result) + '\n' : '\n');
    return result;
  } finally {
    await model.dispose();
  }
}
