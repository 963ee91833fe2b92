// One base model in memory serving two fine-tunes: LoRA adapters applied per context.
//
//   node examples/lora.mjs path/to/model.gguf adapter1.gguf adapter2.gguf
//
// Without paths it writes the tiny synthetic model and two synthetic adapters for it (random
// weights): the replies are noise, but each context's differs, as each fine-tune's would.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatChat, loadModel } from '../dist/index.js';
import { writeSyntheticLora, writeSyntheticModel } from '../dist/testing/index.js';

let [modelPath, ...adapterPaths] = process.argv.slice(2);
if (!modelPath) {
  const dir = join(tmpdir(), 'hermes3-native');
  modelPath = join(dir, 'demo-tiny-f16.gguf');
  if (!existsSync(modelPath)) await writeSyntheticModel({ path: modelPath, shape: 'tiny', seed: 1 });
  adapterPaths = [join(dir, 'demo-lora-1.gguf'), join(dir, 'demo-lora-2.gguf')];
  for (const [i, path] of adapterPaths.entries()) await writeSyntheticLora({ path, modelPath, rank: 8, seed: i + 1 });
  console.log(`no model given: using the synthetic model ${modelPath} and two synthetic adapters (random weights)\n`);
}

const model = await loadModel({ modelPath });
const prompt = formatChat([{ role: 'user', content: 'Introduce yourself in one sentence.' }]);
const contexts = [['base model', await model.createContext({ nCtx: 1024, lora: [] })]];
for (const path of adapterPaths) {
  const adapter = await model.loadLora(path); // checked against the model first
  console.log(`${path}: LoRA for ${adapter.baseModel.architecture}, rank ${adapter.rank}, alpha ${adapter.alpha}, ${adapter.targets.length} weights`);
  contexts.push([path, await model.createContext({ nCtx: 1024, lora: [{ adapter, scale: 1 }] })]);
}
// the contexts generate at the same time, each with its own adapter
const replies = await Promise.all(
  contexts.map(async ([name, ctx]) => {
    let text = '';
    for await (const chunk of ctx.sequence().generate(prompt, { temperature: 0, maxTokens: 24 })) text += chunk.text;
    return `${name}:\n  ${JSON.stringify(text)}`;
  }),
);
console.log('\n' + replies.join('\n'));
await model.dispose();
