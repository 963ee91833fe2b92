import { writeFileSync } from 'node:fs';
import { Hermes3Error, OptionsError } from '../errors.js';
import { PEERS } from '../bench/figures.js';
import { BENCH_QUANTS, defaultCacheDir, parseBenchArgs } from '../bench/options.js';
import { formatReport } from '../bench/report.js';
import { runBench } from '../bench/run.js';
import { formatSvg } from '../bench/svg.js';
import { parse } from './args.js';

export const benchUsage = `hermes3 bench [--model FILE | --shape 1b|8b|70b --quant Q4_K_M] [options]

Measures hermes3-native beside llama.cpp's llama-bench and llama-batched-bench (built from the same
vendored tree and flags) and node-llama-cpp (the release that ships the same llama.cpp, installed on
demand into the cache folder), on one model file and thread count, in one run: repetitions are
interleaved, each measurement runs in a process of its own, and the table shows medians and ratios.

  --model FILE         benchmark a GGUF file
  --shape NAME         synthetic model shape, written once into the cache (default 1b)
  --quant TYPE         synthetic model file type: ${BENCH_QUANTS.join(', ')} (default Q4_K_M)
  --threads N          CPU threads for every peer (default: physical cores)
  --gpu-layers N       layers every peer offloads to the GPU (default 0)
  --concurrency LIST   concurrent sequences for the aggregate speed (default 1,2,4,8)
  --reps N             repetitions (default 3)
  --only LIST          peers to run, of ${PEERS.join(', ')} (default: all)
  --speculative        also measure speculative decoding: the shape's F16 model as target, its
                       Q4_K_M quantization as draft, nDraft 2, 4, 8, 16, and n-gram lookup
  --json FILE          write every sample, median and the machine as JSON
  --svg FILE           draw the medians as an SVG chart
  --cache DIR          synthetic models and node-llama-cpp (default ${defaultCacheDir()})
  --anchors DIR        the folder with llama-bench and llama-batched-bench (default build/Release;
                       \`npm run bench:anchor\` builds them)
  --timeout S          limit for one measurement process, seconds (default 1800)`;

export async function benchCommand(argv: string[], out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' },
    shape: { type: 'string' },
    quant: { type: 'string' },
    threads: { type: 'string' },
    'gpu-layers': { type: 'string' },
    concurrency: { type: 'string' },
    reps: { type: 'string' },
    only: { type: 'string' },
    speculative: { type: 'boolean', default: false },
    json: { type: 'string' },
    svg: { type: 'string' },
    cache: { type: 'string' },
    anchors: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (positionals.length) throw new OptionsError(`Unexpected argument '${positionals[0]}': hermes3 bench takes only options`);
  const options = parseBenchArgs(values);
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const result = await runBench(options, log, signal);
  out.write(formatReport(result));
  if (options.jsonPath) writeFileSync(options.jsonPath, JSON.stringify(result, null, 2) + '\n');
  if (options.svgPath) writeFileSync(options.svgPath, formatSvg(result));
  const failed = Object.entries(result.peers).filter(([, r]) => r.status === 'failed');
  if (failed.length) {
    const rest = failed.length === Object.keys(result.peers).length ? 'no figures were measured' : "the other peers' figures are complete";
    throw new Hermes3Error('ERR_BENCH_PEER_FAILED', `${failed.map(([name]) => name).join(', ')} failed (the reason is under the table); ${rest}`);
  }
}
