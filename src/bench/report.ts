/** The run as a table of medians and ratios (Markdown, readable in a terminal too). */
import { basename } from 'node:path';
import { figureSpec, PEERS, type PeerName } from './figures.js';
import type { BenchResult } from './run.js';
import { SPEC_BASELINE, SPEC_CONFIGS, specFigure } from './speculative.js';

const fmt = (v: number | undefined, unit?: string): string => {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (unit === 'ms' && v < 10) return v.toFixed(2);
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
};
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? '' : `${(a / b).toFixed(2)}x`);

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

export function machineLine(r: BenchResult): string {
  const m = r.machine;
  const load = m.loadAverage.end === undefined ? m.loadAverage.start.toFixed(2) : `${m.loadAverage.start.toFixed(2)} at the start, ${m.loadAverage.end.toFixed(2)} at the end`;
  return `${m.cpu}, ${m.physicalCores} cores (${m.logicalCores} logical), ${m.memoryGiB} GiB, CPU variant ${m.cpuVariant ?? 'unknown'}, ${m.platform}, Node ${m.node}; load average ${load}`;
}

export function formatReport(r: BenchResult): string {
  const o = r.options;
  const peers = PEERS.filter((p) => r.peers[p]);
  const med = (p: PeerName, f: string) => r.peers[p]?.median[f];
  const lines: string[] = [];
  lines.push(`model ${basename(r.model)}, ${o.threads} threads, median of ${o.reps} interleaved repetition${o.reps === 1 ? '' : 's'}`);
  lines.push(`machine: ${machineLine(r)}`, '');
  const anchorCol = peers.some((p) => p === 'llama-bench' || p === 'batched-bench') && r.peers.hermes3;
  const nlcCol = r.peers['node-llama-cpp'] && r.peers.hermes3;
  const head = ['figure', 'unit', ...peers, ...(anchorCol ? ['hermes3 / llama.cpp'] : []), ...(nlcCol ? ['hermes3 / node-llama-cpp'] : [])];
  lines.push(row(head), row(head.map((_, i) => (i < 2 ? '---' : '---:'))));
  for (const f of r.figures) {
    const spec = figureSpec(f);
    const values = peers.map((p) => med(p, f));
    if (values.every((v) => v === undefined)) continue;
    const cells = [spec.label, `${spec.unit} ${spec.higherIsBetter ? '↑' : '↓'}`, ...values.map((v) => fmt(v, spec.unit))];
    if (anchorCol) cells.push(spec.anchor ? ratio(med('hermes3', f), med(spec.anchor, f)) : '');
    if (nlcCol) cells.push(ratio(med('hermes3', f), med('node-llama-cpp', f)));
    lines.push(row(cells));
  }
  for (const p of peers) if (r.peers[p]!.status === 'failed') lines.push('', `${p}: failed: ${r.peers[p]!.error}`);
  if (r.speculative) lines.push('', ...speculativeReport(r));
  return lines.join('\n') + '\n';
}

function speculativeReport(r: BenchResult): string[] {
  const s = r.speculative!;
  const base = r.peers.hermes3?.median[SPEC_BASELINE];
  const head = `speculative decoding: target ${basename(s.target)} alone ${fmt(base)} tok/s`;
  if (!s.available) return [`${head}; speculative: not available in this build (${s.reason})`];
  const lines = [`${head}; draft ${basename(s.draft)} (the same weights, quantized)`, '', row(['draft', 'nDraft', 'tok/s', 'speed-up', 'acceptance']), row(['---', '---:', '---:', '---:', '---:'])];
  for (const { kind, nDraft } of SPEC_CONFIGS) {
    const names = specFigure(kind, nDraft);
    const speed = r.peers.hermes3?.median[names.speed];
    const acc = r.peers.hermes3?.median[names.acceptance];
    lines.push(row([kind === 'draft' ? 'model' : kind === 'adaptive' ? 'model, adaptive' : 'n-gram', String(nDraft), fmt(speed), ratio(speed, base), acc === undefined ? '–' : acc.toFixed(2)]));
  }
  return lines;
}
