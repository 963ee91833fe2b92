/** `hermes3 plan --hosts 4x80GiB,2x24GiB`: does a model fit across hosts and GPUs, and how. */
import { basename } from 'node:path';
import { OptionsError } from '../errors.js';
import { parseDeviceList, planCluster, type ClusterDevicePlan, type ClusterPlan } from '../gguf/cluster.js';
import { SHAPES, type ShapeName } from '../gguf/shapes.js';
import { FILE_TYPES, type FileTypeName } from '../gguf/types.js';
import type { KvCacheType } from '../engine/options.js';

const GiB = 1024 ** 3;
const num = (n: number | undefined) => (n === undefined ? '-' : (n / GiB).toFixed(1));

export interface ClusterCommand {
  hosts: string;
  model?: string;
  shapes: string[];
  quants: string[];
  contexts: number[];
  kv: KvCacheType;
  /** undefined: every layer */
  nGpuLayers?: number;
  json?: boolean;
}

export async function clusterCommand(c: ClusterCommand, out: NodeJS.WritableStream): Promise<void> {
  const devices = parseDeviceList(c.hosts, '--hosts');
  const plans: ClusterPlan[] = [];
  const common = { kvCacheType: c.kv, nGpuLayers: c.nGpuLayers, devices };
  if (c.model) {
    for (const nCtx of c.contexts) plans.push(await planCluster({ modelPath: c.model, nCtx, ...common }));
  } else {
    for (const s of c.shapes) if (!(s in SHAPES)) throw new OptionsError(`Invalid --shape: expected some of ${Object.keys(SHAPES).join(', ')}, received '${s}'`);
    for (const q of c.quants) if (!(q in FILE_TYPES)) throw new OptionsError(`Invalid --quant: expected some of ${Object.keys(FILE_TYPES).join(', ')}, received '${q}'`);
    for (const shape of c.shapes)
      for (const quant of c.quants) for (const nCtx of c.contexts) plans.push(await planCluster({ shape: shape as ShapeName, quant: quant as FileTypeName, nCtx, ...common }));
  }
  if (c.json) {
    out.write(JSON.stringify(plans, null, 2) + '\n');
    return;
  }
  out.write(plans.map(clusterTable).join('\n'));
}

/** One plan as a table of its devices, with the verdict under it (GiB). */
export function clusterTable(p: ClusterPlan): string {
  const model = p.model in SHAPES ? p.model.toUpperCase() : basename(p.model);
  const gpus = p.devices.slice(1);
  const lines = [
    `${[model, p.quant].filter(Boolean).join(' ')} at ${p.nCtx} tokens (${p.kvCacheType} KV cache): ${p.nGpuLayers} of ${p.nLayer + 1} layers on ${gpus.length} GPU${gpus.length > 1 ? 's' : ''} (${num(gpus.reduce((n, d) => n + d.memoryBytes!, 0))} GiB); memory in GiB`,
    '',
  ];
  const layers = (d: ClusterDevicePlan) =>
    [d.tokenEmbeddings ? 'token embeddings' : '', d.blocks ? (d.blocks.count > 1 ? `blocks ${d.blocks.first}-${d.blocks.last}` : `block ${d.blocks.first}`) : '', d.outputLayer ? 'output' : '']
      .filter(Boolean)
      .join(', ') || '-';
  const status = (d: ClusterDevicePlan) => (d.fits === undefined ? 'not checked' : d.fits ? 'fits' : 'DOES NOT FIT');
  const head = ['device', 'memory', 'layers', 'weights', 'KV cache', 'compute', 'total', 'usable', ''];
  const rows = p.devices.map((d) => [
    d.sharesHostMemory ? `${d.name}*` : d.name,
    num(d.memoryBytes),
    layers(d),
    num(d.weightsBytes),
    num(d.kvCacheBytes),
    num(d.computeBytes + d.outputBytes),
    num(d.totalBytes),
    num(d.usableBytes),
    status(d),
  ]);
  rows.push(['all', num(p.memoryBytes), '', num(p.weightsBytes), num(p.kvCacheBytes), num(p.computeBytes), num(p.totalBytes), '', '']);
  const table = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  // text columns to the left, figures to the right
  const left = new Set([0, 2, 8]);
  for (const r of table) lines.push(r.map((cell, i) => (left.has(i) ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd());
  lines.push('');
  if (p.hostPool) {
    const h = p.hostPool;
    lines.push(`* shares the main host's RAM: ${h.devices.join(' and ')} together ${num(h.needBytes)} of ${num(h.usableBytes)} usable (${h.fits ? 'fits' : 'DOES NOT FIT'})`);
  }
  if (p.devices[0].memoryBytes === undefined) lines.push("the main host's RAM was not given (cpu:SIZE in --hosts): the CPU's part is not checked");
  lines.push(p.verdict, '');
  return lines.join('\n');
}
