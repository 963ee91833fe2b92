import { writeFileSync } from 'node:fs';
import { Hermes3Error } from '../errors.js';
import { PEERS } from '../bench/figures.js';
import { BENCH_QUANTS, defaultCacheDir, parseBenchArgs } from '../bench/options.js';
import { formatReport } from '../bench/report.js';
import { runBench } from '../bench/run.js';
import { formatSvg } from '../bench/svg.js';
import type { Command } from 'commander';
import type { CliIO, Values } from './args.js';

export function register(program: Command, io: CliIO): void {
  program
    .command('bench')
    .summary("measure speed, latency and memory beside llama.cpp's tools and node-llama-cpp")
    .description(
      "Measures hermes3-native beside llama.cpp's llama-bench and llama-batched-bench (built from the same\nvendored tree and flags) and node-llama-cpp (the release that ships the same llama.cpp, installed on\ndemand into the cache folder), on one model file and thread count, in one run: repetitions are\ninterleaved, each measurement runs in a process of its own, and the table shows medians and ratios.",
    )
    .option('--model <file>', 'benchmark a GGUF file')
    .option('--shape <name>', 'synthetic model shape, written once into the cache (default 1b)')
    .option('--quant <type>', `synthetic model file type: ${BENCH_QUANTS.join(', ')} (default Q4_K_M)`)
    .option('--threads <n>', 'CPU threads for every peer (default: physical cores)')
    .option('--gpu-layers <n>', 'layers every peer offloads to the GPU (default 0)')
    .option('--concurrency <list>', 'concurrent sequences for the aggregate speed (default 1,2,4,8)')
    .option('--reps <n>', 'repetitions (default 3)')
    .option('--only <list>', `peers to run, of ${PEERS.join(', ')} (default: all)`)
    .option('--speculative', "also measure speculative decoding: the shape's F16 model as target, its Q4_K_M quantization as draft, nDraft 2, 4, 8, 16, and n-gram lookup")
    .option('--json <file>', 'write every sample, median and the machine as JSON')
    .option('--svg <file>', 'draw the medians as an SVG chart')
    .option('--cache <dir>', `synthetic models and node-llama-cpp (default ${defaultCacheDir()})`)
    .option('--anchors <dir>', 'the folder with llama-bench and llama-batched-bench (default build/Release; `npm run bench:anchor` builds them)')
    .option('--timeout <s>', 'limit for one measurement process, seconds (default 1800)')
    .addHelpText('after', '\nExample:\n  hermes3 bench --shape 1b --quant Q4_K_M --concurrency 1,4 --reps 3 --svg bench.svg')
    .action((values: Values) => benchCommand(values, io.out, io.signal));
}

export async function benchCommand(values: Values, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const options = parseBenchArgs(values as never);
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
