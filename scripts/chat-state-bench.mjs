#!/usr/bin/env node
// What a long conversation costs to keep: a chat of about --tokens tokens (default 32000) on a
// synthetic model (default: the 'tiny' shape, f16, written to a temporary folder), then
//   - save: the whole state (time, bytes), and an incremental save after one more turn;
//   - load into a fresh model's chat, and the next turn's time to first token after it, against a
//     chat that evaluates the same conversation from its text;
//   - a live chat's next turn with the prompt kept per message against one that renders and
//     tokenizes the whole conversation each turn (the chat before turn-tokens.ts), and the
//     tokenization alone at this length.
// Each figure is one run (the live turns medians of 6, the tokenization medians of 5); the
// model's compute per token does not depend on its weights, so a synthetic model stands for a
// trained one of its shape.
// usage: node scripts/chat-state-bench.mjs [--tokens N] [--model PATH]   (after npm run compile)
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { writeSyntheticModel } from '../dist/testing/index.js';
import { promptTokens } from '../dist/chat/prompt.js';
import { ChatTokens } from '../dist/chat/turn-tokens.js';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '32000' }, model: { type: 'string' } } });
const target = Number(values.tokens);
const dir = join(tmpdir(), 'hermes3-chat-state-bench');
mkdirSync(dir, { recursive: true });
let modelPath = values.model;
if (!modelPath) {
  modelPath = join(dir, 'tiny-f16.gguf');
  if (!statSync(modelPath, { throwIfNoEntry: false })) await writeSyntheticModel({ path: modelPath, shape: 'tiny', quant: 'F16', seed: 7 });
}
const nCtx = Math.ceil((target + 4096) / 256) * 256;
const file = join(dir, 'conversation.chat');
rmSync(file, { force: true });
const now = () => performance.now();
const ms = (t) => `${t.toFixed(1)} ms`;
const mib = (b) => `${(b / 2 ** 20).toFixed(2)} MiB`;
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const greedy = { temperature: 0, maxTokens: 16 };

/** a turn of one generated token: its wall time is the time to the first token */
async function firstToken(chat, text) {
  const t0 = now();
  const r = await chat.ask(text, { maxTokens: 1 });
  return { ttft: now() - t0, usage: r.usage };
}

// a conversation of varied text, turn after turn, until it holds `target` tokens
const words = 'the a model river 42 Paris blue quickly answer token cache 日本 café zebra seven because history'.split(' ');
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const sentence = (n) => Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]).join(' ') + '.';
const model = await loadModel({ modelPath });
const counter = new ChatTokens(model);
const systemPrompt = 'You are Hermes 3, a helpful assistant.';
const history = [];
while (counter.prompt([{ role: 'system', content: systemPrompt }], [], history, new Map()).length < target - 300) {
  history.push({ role: 'user', content: sentence(60) }, { role: 'assistant', content: sentence(90) });
}
console.log(`model ${modelPath} (${model.info.nLayer} layers, ${model.info.nHeadKv} KV heads), nCtx ${nCtx}, ${history.length} messages; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

const chat = model.chat({ systemPrompt, history, nCtx, ...greedy });
const first = await firstToken(chat, 'Summarise the conversation.');
console.log(`conversation evaluated from text: ${first.usage.promptTokens} prompt tokens, first token after ${ms(first.ttft)}`);

let t = now();
const full = await chat.save(file);
const fullMs = now() - t;
console.log(`full save: ${ms(fullMs)}, ${mib(full.bytesWritten)} (${full.tokens} tokens, ${(full.bytesWritten / full.tokens).toFixed(0)} bytes per token)`);

await chat.ask('One more question about the river.');
t = now();
const inc = await chat.save(file);
const incMs = now() - t;
console.log(`incremental save after one more turn: ${ms(incMs)}, ${(inc.bytesWritten / 1024).toFixed(1)} KiB (${inc.mode}, ${inc.tokensWritten} new tokens); file ${mib(inc.fileBytes)}`);

// a fresh model: load the file, against evaluating the same conversation from its text
const fresh = await loadModel({ modelPath });
const loaded = fresh.chat({ nCtx, ...greedy });
await loaded.ask('x', { maxTokens: 1 }); // creates the context, so the load below is the load alone
t = now();
const info = await loaded.load(file);
const loadMs = now() - t;
console.log(`load: ${ms(loadMs)} (${info.tokens} tokens, ${info.saves} saves)`);
const afterLoad = await firstToken(loaded, 'What about Paris?');
const fromText = fresh.chat({ systemPrompt, history: chat.history, nCtx, ...greedy });
const reeval = await firstToken(fromText, 'What about Paris?');
console.log(`next turn after load: first token after ${ms(afterLoad.ttft)} (${afterLoad.usage.cachedTokens} tokens cached, ${afterLoad.usage.promptTokens - afterLoad.usage.cachedTokens} evaluated)`);
console.log(`next turn re-evaluating the conversation from text: first token after ${ms(reeval.ttft)} (${reeval.usage.promptTokens} tokens evaluated)`);
await fromText.dispose();

// a live chat: prompt kept per message, against rendering and tokenizing everything each turn
// (the chat before turn-tokens.ts: promptTokens over the whole conversation at every step); one
// chat, one context, the two ways turn about (they give the same token ids)
await loaded.dispose();
const kept = fresh.chat({ nCtx, ...greedy });
await kept.load(file);
const perMessage = kept.promptCache;
const whole = {
  prompt: (system, tools, messages, replies) =>
    promptTokens(fresh, 'chatml', [...system, ...messages], { tools, replies: new Map([...replies].map(([i, ids]) => [i + system.length, ids])) }),
};
const beforeTtft = [];
const keptTtft = [];
// the first decodes of a new context run slow: leave them out
for (let i = 0; i < 3; i++) await firstToken(kept, `Warm-up ${i}?`);
for (let i = 0; i < 12; i++) {
  kept.promptCache = i % 2 === 0 ? whole : perMessage;
  const r = await firstToken(kept, `Question ${i} about the cache?`);
  if (process.env.DEBUG) console.log(i, r.ttft.toFixed(1), JSON.stringify(r.usage));
  (i % 2 === 0 ? beforeTtft : keptTtft).push(r.ttft);
}
kept.promptCache = perMessage;
console.log(`live next turn, first token: whole prompt tokenized each turn ${ms(median(beforeTtft))}, kept per message ${ms(median(keptTtft))} (medians of 6, turn about on one chat)`);

// tokenization alone, for the conversation as it stands plus one new user message
const msgs = [...kept.history];
const system = [{ role: 'system', content: systemPrompt }];
const oldMs = [];
const newMs = [];
const cache = new ChatTokens(fresh);
cache.prompt(system, [], msgs, new Map());
let n = 0;
for (let i = 0; i < 5; i++) {
  msgs.push({ role: 'user', content: sentence(30) });
  t = now();
  n = promptTokens(fresh, 'chatml', [...system, ...msgs]).length;
  oldMs.push(now() - t);
  t = now();
  cache.prompt(system, [], msgs, new Map());
  newMs.push(now() - t);
  msgs.push({ role: 'assistant', content: sentence(40) });
}
console.log(`prompt tokens for a turn at ${n} tokens: rendered and tokenized whole ${ms(median(oldMs))}, kept per message ${ms(median(newMs))} (medians of 5)`);

const perToken8b = 2 * 32 * 8 * 128 * 2;
console.log(`for scale: the 8B shape's f16 KV cache holds ${perToken8b} bytes per token, ${(perToken8b * 32768 / 2 ** 30).toFixed(1)} GiB for 32768 tokens`);
await Promise.all([chat.dispose(), kept.dispose()]);
await Promise.all([model.dispose(), fresh.dispose()]);
console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other processes share the cores: figures move with it)`);
