// The library's work runs on threads of its own, never on libuv's pool: with a pool of one
// thread (UV_THREADPOOL_SIZE=1, set by the caller), a file read started while four models load
// natively finishes before most of the loads (on libuv's pool it would wait for all four).
// Prints the order in which the loads and the read finished.
import { stat } from 'node:fs/promises';

const [modelPath, entry] = process.argv.slice(2);
const { loadModel } = await import(entry);
const order = [];
let read;
const loads = Array.from({ length: 4 }, (_, i) => {
  // the first report of progress comes from the native load, once it runs
  const onProgress = () => { read ??= stat(modelPath).then(() => order.push('stat')); };
  return loadModel({ modelPath, onProgress }).then(async (model) => {
    order.push(`load${i}`);
    await model.dispose();
  });
});
await Promise.all(loads);
await read;
console.log(order.join(' '));
