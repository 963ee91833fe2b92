import { formatChat } from '../chat/format.js';
import { OptionsError } from '../errors.js';
import type { FinishReason, GenerationTimings } from '../engine/sequence.js';
import { modelArgs, modelArgsUsage, openModel, parse, samplingArgs } from './args.js';

export const runUsage = `hermes3 run --model FILE --prompt TEXT [options]

Sends TEXT as a user message through ChatML and streams the reply.

  --prompt TEXT        the user message (required)
  --system TEXT        a system prompt
  --max-tokens N       most tokens to generate (default 256)
${modelArgsUsage}
  --raw                send TEXT as raw prompt text, special tokens parsed
  --json               print one JSON object: text, tokens, finishReason, timings`;

export interface RunResult {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  timings: GenerationTimings | undefined;
}

export async function runCommand(argv: string[], out: NodeJS.WritableStream, signal: AbortSignal): Promise<RunResult> {
  const { values } = parse(argv, {
    ...modelArgs,
    prompt: { type: 'string' },
    system: { type: 'string' },
    raw: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  if (values.prompt === undefined) throw new OptionsError('hermes3 run needs --prompt TEXT');
  const { model, context: ctx } = await openModel(values, 'run', signal);
  try {
    const prompt = values.raw
      ? values.prompt
      : formatChat([...(values.system ? [{ role: 'system' as const, content: values.system }] : []), { role: 'user', content: values.prompt }]);
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
