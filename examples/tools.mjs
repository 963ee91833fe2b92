// Hermes function calling with two tools: a weather lookup and a calculator.
//
//   node examples/tools.mjs path/to/Hermes-3-Llama-3.1-8B.Q4_K_M.gguf
//
// Without a model path it writes the tiny synthetic model (random weights) and forces a tool
// call, which shows the machinery: the grammar makes even a random model call a tool with
// arguments that validate.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { defineTool, loadModel } from '../dist/index.js';
import { writeSyntheticModel } from '../dist/testing/index.js';

const weather = defineTool({
  name: 'get_weather',
  description: 'Get the current weather for a city.',
  parameters: z.object({
    city: z.string().max(40).describe('The city, e.g. Paris'),
    unit: z.enum(['celsius', 'fahrenheit']).optional().describe('Temperature unit'),
  }),
  handler: async ({ city, unit = 'celsius' }) => ({ city, temperature: unit === 'celsius' ? 21 : 70, sky: 'clear' }),
});

const calculator = defineTool({
  name: 'calculate',
  description: 'Evaluate an arithmetic expression with + - * / and parentheses.',
  parameters: z.object({ expression: z.string().max(80).describe('The expression, e.g. (2 + 3) * 4') }),
  handler: ({ expression }) => {
    if (!/^[\d\s+\-*/().]+$/.test(expression)) throw new Error('only numbers, + - * / and parentheses are allowed');
    return Function(`"use strict"; return (${expression});`)();
  },
});

let modelPath = process.argv[2];
const synthetic = !modelPath;
if (synthetic) {
  modelPath = join(tmpdir(), 'hermes3-native', 'demo-tiny-f16.gguf');
  if (!existsSync(modelPath)) await writeSyntheticModel({ path: modelPath, shape: 'tiny', seed: 1 });
  console.log(`no model given: using the synthetic model ${modelPath} (random weights)\n`);
}

const model = await loadModel({ modelPath });
const chat = model.chat({ systemPrompt: 'You are Hermes 3, a helpful assistant.', temperature: synthetic ? 0.9 : 0.2, seed: 7, maxTokens: 256 });
const question = "What's the weather in Paris, and what is 17 * 23?";
console.log(`user: ${question}\n`);
for await (const ev of chat.send(question, { tools: [weather, calculator], toolChoice: synthetic ? 'required' : 'auto', maxSteps: 3 })) {
  if (ev.type === 'text') process.stdout.write(ev.text);
  if (ev.type === 'tool_call') console.log(`\n→ ${ev.call.name}(${JSON.stringify(ev.call.arguments)})`);
  if (ev.type === 'tool_result') console.log(`← ${ev.error ? `error: ${ev.error}` : JSON.stringify(ev.result)}`);
  if (ev.type === 'done') console.log(`\n\n[${ev.finishReason} after ${ev.steps} steps, ${ev.usage.completionTokens} tokens generated]`);
}
await model.dispose();
