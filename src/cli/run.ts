import { formatChat } from '../chat/format.js';
import { OptionsError } from '../errors.js';
import { loadModel } from '../engine/model.js';
import type { FinishReason, GenerationTimings } from '../engine/sequence.js';
import { intArg, numArg, parse } from './args.js';

export const runUsage = `hermes3 run --model FILE --prompt TEXT [options]

Sends TEXT as a user message through ChatML and streams the reply.

  --model FILE         GGUF model file (required)
  --prompt TEXT        the user message (required)
  --system TEXT        a system prompt
  --max-tokens N       most tokens to generate (default 256)
  --temperature T      sampling temperature; 0 is greedy (default 0.8)
  --seed S             sampling seed
  --ctx N              context length (default: min(training context, 4096))
  --threads N          CPU threads (default: physical cores)
  --gpu-layers N|max   layers to offload to the GPU (default 0)
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
    model: { type: 'string' },
    prompt: { type: 'string' },
    system: { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    seed: { type: 'string' },
    ctx: { type: 'string' },
    threads: { type: 'string' },
    'gpu-layers': { type: 'string' },
    raw: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  if (!values.model) throw new OptionsError('hermes3 run needs --model FILE (a GGUF model)');
  if (values.prompt === undefined) throw new OptionsError('hermes3 run needs --prompt TEXT');
  const gpu = values['gpu-layers'];
  const model = await loadModel({
    modelPath: values.model,
    nGpuLayers: gpu === 'max' ? 'max' : (intArg(gpu, 'gpu-layers', 0) ?? 0),
    signal,
  });
  try {
    const ctx = await model.createContext({ nCtx: intArg(values.ctx, 'ctx', 16), threads: intArg(values.threads, 'threads', 1) });
    const prompt = values.raw
      ? values.prompt
      : formatChat([...(values.system ? [{ role: 'system' as const, content: values.system }] : []), { role: 'user', content: values.prompt }]);
    const result: RunResult = { text: '', tokens: [], finishReason: 'abort', timings: undefined };
    for await (const chunk of ctx.sequence().generate(prompt, {
      maxTokens: intArg(values['max-tokens'], 'max-tokens', 0) ?? 256,
      temperature: numArg(values.temperature, 'temperature') ?? 0.8,
      seed: intArg(values.seed, 'seed', 0),
      signal,
    })) {
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
