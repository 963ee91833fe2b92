#!/usr/bin/env node
// A transcript of the openai and ollama npm clients talking to `createServer()` over a
// synthetic model (random weights: the words are random, the shapes and the tool-call
// grammar are real). Usage: node scripts/serve-transcript.mjs [MODEL.gguf]
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { createServer, loadModel } from '../dist/index.js';
import { writeSyntheticModel } from '../dist/testing/index.js';

let path = process.argv[2];
if (!path) {
  path = join(tmpdir(), 'hermes3-transcript-tiny-q8_0.gguf');
  if (!existsSync(path)) await writeSyntheticModel({ path, shape: 'tiny', quant: 'Q8_0', seed: 7 });
}
const model = await loadModel({ modelPath: path });
const server = await createServer({ model, modelName: 'hermes3', parallel: 2, ctx: 2048 });
const url = await server.listen({ port: 0 });
const show = (label, value) => console.log(`${label} ${typeof value === 'string' ? value : JSON.stringify(value)}`);
console.log(`# server: listening on ${url}\n`);

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather of a city', parameters: { type: 'object', properties: { city: { type: 'string', description: 'the city' } }, required: ['city'] } } }];
const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused' });
console.log('## openai: client.chat.completions.create({ stream: true, tools, tool_choice: "required" })');
const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
const stream = await openai.chat.completions.create({ model: 'hermes3', messages, tools, tool_choice: 'required', stream: true, max_tokens: 60, seed: 1 });
const calls = [];
for await (const chunk of stream) {
  const c = chunk.choices[0];
  for (const d of c?.delta.tool_calls ?? []) {
    show('  delta.tool_calls', d);
    if (d.id) calls[d.index] = { id: d.id, type: 'function', function: { name: d.function.name, arguments: '' } };
    if (d.function?.arguments) calls[d.index].function.arguments += d.function.arguments;
  }
  if (c?.finish_reason) show('  finish_reason', c.finish_reason);
}
show('  arguments parsed:', JSON.parse(calls[0].function.arguments));
messages.push({ role: 'assistant', content: null, tool_calls: calls }, { role: 'tool', tool_call_id: calls[0].id, content: '{"temperature": 18, "sky": "clear"}' });
console.log('\n## openai: the tool result fed back (tool_choice "none")');
const answer = await openai.chat.completions.create({ model: 'hermes3', messages, tools, tool_choice: 'none', max_tokens: 12, seed: 1 });
show('  message', answer.choices[0].message);
show('  usage', answer.usage);

const ollama = new Ollama({ host: url });
// Ollama's API has no tool_choice, and a random-weight model almost never opens a <tool_call>
// by itself: the server takes OpenAI's tool_choice in /api/chat as an extension
console.log('\n## ollama: ollama.chat({ stream: true, tools, tool_choice: "required" })');
const called = await ollama.chat({ model: 'hermes3', messages: [{ role: 'user', content: 'Weather in Lima?' }], tools, tool_choice: 'required', stream: true, options: { num_predict: 120, seed: 2 } });
for await (const part of called) {
  if (part.message.tool_calls) show('  message.tool_calls', part.message.tool_calls);
  else if (part.done) show('  done', { done_reason: part.done_reason, eval_count: part.eval_count });
  else if (part.message.content) show('  message.content', part.message.content);
}
console.log('\n## ollama: the call and its result sent back, streamed');
const parts = await ollama.chat({
  model: 'hermes3',
  messages: [
    { role: 'user', content: 'Weather in Lima?' },
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Lima' } } }] },
    { role: 'tool', content: '{"temperature": 19}', tool_name: 'get_weather' },
  ],
  tools,
  stream: true,
  options: { num_predict: 8, seed: 4, temperature: 0.7 },
});
for await (const part of parts) {
  if (part.message.tool_calls) show('  message.tool_calls', part.message.tool_calls);
  else if (part.done) show('  done', { done_reason: part.done_reason, eval_count: part.eval_count, prompt_eval_count: part.prompt_eval_count });
  else show('  message.content', part.message.content);
}
console.log('\n## ollama: list() and show()');
show('  models', (await ollama.list()).models.map((m) => ({ name: m.name, details: m.details })));
show('  capabilities', (await ollama.show({ model: 'hermes3' })).capabilities);

await server.close();
await model.dispose();
