// Loads a model, creates a context and generates a few tokens, printing the process's memory at
// each step as JSON: resident and peak bytes (/proc/self/status) and the resident bytes of the
// model file's mapping (/proc/self/smaps). Run in a child process so the peak is this run's alone.
// usage: node memory.mjs ENTRY MODEL NCTX USE_MMAP
import { readFileSync, realpathSync } from 'node:fs';

const [entry, modelPath, nCtx, useMmap] = process.argv.slice(2);
const file = realpathSync(modelPath);

function memory() {
  const status = Object.fromEntries(
    readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .filter((l) => /^(VmRSS|VmHWM):/.test(l))
      .map((l) => [l.split(':')[0], parseInt(l.split(':')[1], 10) * 1024]),
  );
  // the mapping may be split into several areas once parts of it are unmapped
  let mapped = 0;
  let inFile = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const area = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (area) inFile = area[1] === file;
    else if (inFile && line.startsWith('Rss:')) mapped += parseInt(line.slice(4), 10) * 1024;
  }
  return { rss: status.VmRSS, peak: status.VmHWM, mapped };
}

const { loadModel, getBackendInfo } = await import(entry);
getBackendInfo();
const base = memory();
const model = await loadModel({ modelPath, useMmap: useMmap === '1' });
const loaded = memory();
const ctx = await model.createContext({ nCtx: Number(nCtx) });
for await (const chunk of ctx.sequence().generate('Hello there, how are you today?', { maxTokens: 8, temperature: 0 })) void chunk;
const generated = memory();
console.log(JSON.stringify({ base, loaded, generated, nCtx: ctx.nCtx }));
await model.dispose();
