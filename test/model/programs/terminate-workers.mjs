// Starts workers that load a model and generate, then terminates them mid-generation and while
// loading. Any crash in teardown ends this process with a signal; success prints "ok".
import { Worker } from 'node:worker_threads';

const [modelPath, entry] = process.argv.slice(2);
const child = `
  const { parentPort, workerData } = require('node:worker_threads');
  import(workerData.entry).then(async ({ loadModel }) => {
    const model = await loadModel({ modelPath: workerData.modelPath, onProgress: () => {} });
    const ctx = await model.createContext({ nCtx: 512 });
    let n = 0;
    for await (const c of ctx.sequence().generate('hello', { maxTokens: 400, temperature: 0 })) {
      n += c.tokens.length;
      if (n >= 5) parentPort.postMessage('generating');
    }
  });
`;
const spawn = () => new Worker(child, { eval: true, workerData: { modelPath, entry } });
for (let i = 0; i < 3; i++) {
  const w = spawn();
  await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await w.terminate();
}
for (let i = 0; i < 3; i++) {
  const w = spawn();
  await new Promise((r) => setTimeout(r, 20 + i * 40));
  await w.terminate();
}
console.log('ok');
