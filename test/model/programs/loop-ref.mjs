// A generation keeps the event loop alive while it runs, and only then: nothing else here holds
// the loop, so the process (or worker) would end before the first token if the generation did
// not hold it, and would never end if it held it after its last token. Neither the model nor
// the context is disposed. Prints the tokens of the main thread's and a worker's generation.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const [modelPath, entry] = isMainThread ? process.argv.slice(2) : workerData;
const { loadModel } = await import(entry);
const model = await loadModel({ modelPath });
const ctx = await model.createContext({ nCtx: 256 });
let n = 0;
for await (const chunk of ctx.sequence().generate('hello', { maxTokens: 40, temperature: 0 })) n += chunk.tokens.length;
if (isMainThread) {
  const worker = new Worker(new URL(import.meta.url), { workerData: [modelPath, entry] });
  worker.on('message', (m) => console.log(`main ${n} worker ${m}`));
  worker.on('exit', (code) => console.log(`worker exit ${code}`));
} else {
  parentPort.postMessage(n);
}
