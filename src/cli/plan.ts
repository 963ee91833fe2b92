import { OptionsError } from '../errors.js';
import { planMemory, type MemoryPlan } from '../gguf/plan.js';
import { SHAPES, type ShapeName } from '../gguf/shapes.js';
import { FILE_TYPES, type FileTypeName } from '../gguf/types.js';
import { KV_CACHE_TYPES, type KvCacheType } from '../engine/options.js';
import type { Command } from 'commander';
import type { CliIO, Values } from './args.js';
import { clusterCommand } from './plan-cluster.js';

const GiB = 1024 ** 3;
const list = (v: string | undefined, fallback: string[]) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : fallback);

export function register(program: Command, io: CliIO): void {
  program
    .command('plan')
    .summary('compute the memory a model, quantization and context need')
    .description(
      'Computes the memory llama.cpp will allocate (weights, KV cache, compute buffers) for each model\nsize, quantization and context length: the usual VRAM table of the guides, computed.',
    )
    .option('--model <file>', 'plan a GGUF file (its real tensor table) instead of shapes')
    .option('--shape <list>', 'model shapes (default 8b,70b,405b)')
    .option('--quant <list>', 'file types (default F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,IQ4_XS)')
    .option('--ctx <list>', 'context lengths (default 4096,8192,32768,131072; 8k works too)')
    .option('--kv <type>', `KV cache type: ${Object.keys(KV_CACHE_TYPES).join(', ')}`, 'f16')
    .option('--gpu-layers <n|max>', 'layers on the GPU (max: all, as for a VRAM table; 0: CPU only)', 'max')
    .option(
      '--hosts <devices>',
      "plan across GPUs and hosts (llama.cpp's RPC backend), in llama.cpp's order (rpc-server devices first, the main host's last): NxSIZE is N GPUs of SIZE (GiB, GB, MiB, MB), cpu:SIZE the main host's RAM, igpu:SIZE a GPU sharing it (Apple Silicon), NAME:NxSIZE names a host's GPUs; with it --quant defaults to Q4_K_M and --ctx to 8k",
    )
    .option('--json', 'print the plans as JSON')
    .addHelpText('after', '\nExamples:\n  hermes3 plan --shape 8b --quant Q4_K_M,Q8_0 --ctx 8k,32k --kv q8_0\n  hermes3 plan --shape 405b --hosts 4x80GiB,2x24GiB,cpu:64GiB --quant Q4_K_M,Q8_0')
    .action((values: Values) => planCommand(values, io.out));
}

export async function planCommand(options: Values, out: NodeJS.WritableStream): Promise<void> {
  const values = options as { model?: string; shape?: string; quant?: string; ctx?: string; kv: string; gpuLayers: string; hosts?: string; json?: boolean };
  const kv = values.kv as KvCacheType;
  if (!(kv in KV_CACHE_TYPES)) throw new OptionsError(`Invalid --kv: expected one of ${Object.keys(KV_CACHE_TYPES).join(', ')}, received '${values.kv}'`);
  const contexts = list(values.ctx, values.hosts ? ['8192'] : ['4096', '8192', '32768', '131072']).map((c) => {
    const n = /k$/i.test(c) ? Number(c.slice(0, -1)) * 1024 : Number(c);
    if (!Number.isInteger(n) || n < 1) throw new OptionsError(`Invalid --ctx: expected context lengths, received '${c}'`);
    return n;
  });
  const gpu = values.gpuLayers === 'max' ? 100000 : Number(values.gpuLayers);
  if (!Number.isInteger(gpu) || gpu < 0) throw new OptionsError(`Invalid --gpu-layers: expected an integer >= 0 or 'max', received '${values.gpuLayers}'`);
  if (values.hosts) {
    const cluster = { shapes: list(values.shape, ['8b', '70b', '405b']), quants: list(values.quant, ['Q4_K_M']), contexts, kv, nGpuLayers: gpu >= 100000 ? undefined : gpu };
    return clusterCommand({ hosts: values.hosts, model: values.model, json: values.json, ...cluster }, out);
  }

  const rows: Array<{ label: string; quant: string; plans: MemoryPlan[] }> = [];
  if (values.model) {
    rows.push({ label: values.model, quant: '', plans: await Promise.all(contexts.map((nCtx) => planMemory({ modelPath: values.model, nCtx, kvCacheType: kv, nGpuLayers: gpu }))) });
  } else {
    const shapes = list(values.shape, ['8b', '70b', '405b']);
    const quants = list(values.quant, ['F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'IQ4_XS']);
    for (const s of shapes) if (!(s in SHAPES)) throw new OptionsError(`Invalid --shape: expected some of ${Object.keys(SHAPES).join(', ')}, received '${s}'`);
    for (const q of quants) if (!(q in FILE_TYPES)) throw new OptionsError(`Invalid --quant: expected some of ${Object.keys(FILE_TYPES).join(', ')}, received '${q}'`);
    for (const shape of shapes) {
      for (const quant of quants) {
        const plans = await Promise.all(contexts.map((nCtx) => planMemory({ shape: shape as ShapeName, quant: quant as FileTypeName, nCtx, kvCacheType: kv, nGpuLayers: gpu })));
        rows.push({ label: shape.toUpperCase(), quant, plans });
      }
    }
  }
  if (values.json) {
    out.write(JSON.stringify(rows.map((r) => ({ model: r.label, quant: r.quant || undefined, plans: r.plans })), null, 2) + '\n');
    return;
  }
  const where = gpu === 0 ? 'in RAM (CPU only)' : gpu >= 100000 ? 'on one GPU, all layers offloaded' : `with ${gpu} layers on the GPU (GPU share shown)`;
  const head = ['model', 'quant', 'weights', ...contexts.map((c) => (c % 1024 === 0 ? `${c / 1024}k` : String(c)))];
  // the device the table is about: the GPU once anything is offloaded (the token embeddings stay in RAM)
  const device = (p: MemoryPlan) => (gpu === 0 ? p : (p.devices.find((d) => d.device === 'GPU') ?? p));
  const cell = (p: MemoryPlan) => (device(p).totalBytes / GiB).toFixed(1);
  const table = [head, ...rows.map((r) => [r.label, r.quant, (device(r.plans[0]).weightsBytes / GiB).toFixed(1), ...r.plans.map(cell)])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  out.write(`Memory ${where}: weights + KV cache (${kv}) + compute buffers, GiB\n\n`);
  for (const row of table) out.write(row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n');
}
