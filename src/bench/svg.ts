/**
 * The run as an SVG chart: one group of bars per figure, one bar per peer, each group scaled to
 * its largest value and labelled with the medians. Arrows say whether more or less is better.
 */
import { basename } from 'node:path';
import { figureSpec, PEERS } from './figures.js';
import { machineLine } from './report.js';
import type { BenchResult } from './run.js';

const COLORS: Record<string, string> = { hermes3: '#2f6fdf', 'llama-bench': '#8a8a8a', 'batched-bench': '#5a5a5a', 'node-llama-cpp': '#e0892b' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function formatSvg(r: BenchResult): string {
  const peers = PEERS.filter((p) => r.peers[p]);
  const groups = r.figures
    .map((f) => ({ f, spec: figureSpec(f), bars: peers.map((p) => ({ p, v: r.peers[p]!.median[f] })).filter((b) => b.v !== undefined && Number.isFinite(b.v)) }))
    .filter((g) => g.bars.length > 0);
  const width = 960;
  const labelW = 370;
  const barMax = width - labelW - 90;
  const barH = 13;
  const top = 86;
  let y = top;
  const body: string[] = [];
  for (const g of groups) {
    const max = Math.max(...g.bars.map((b) => b.v));
    body.push(`<text x="${labelW - 10}" y="${y + 11}" text-anchor="end" class="fig">${esc(g.spec.label)} (${esc(g.spec.unit)} ${g.spec.higherIsBetter ? '↑' : '↓'})</text>`);
    for (const b of g.bars) {
      const w = max > 0 ? Math.max(1, (b.v / max) * barMax) : 1;
      const v = b.v >= 100 ? b.v.toFixed(0) : b.v >= 10 ? b.v.toFixed(1) : b.v.toFixed(2);
      body.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${COLORS[b.p]}"/>`);
      body.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 10}" class="val">${v}</text>`);
      y += barH;
    }
    y += 10;
  }
  const legend = peers.map((p, i) => `<rect x="${labelW + i * 150}" y="58" width="12" height="12" fill="${COLORS[p]}"/><text x="${labelW + i * 150 + 16}" y="68" class="val">${p}</text>`);
  const title = `hermes3 bench: ${basename(r.model)}, ${r.options.threads} threads, median of ${r.options.reps}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" viewBox="0 0 ${width} ${y + 10}" font-family="sans-serif">`,
    '<style>.fig{font-size:12px;fill:#222}.val{font-size:11px;fill:#333}.title{font-size:15px;font-weight:bold;fill:#111}.sub{font-size:11px;fill:#555}</style>',
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" class="title">${esc(title)}</text>`,
    `<text x="12" y="40" class="sub">${esc(machineLine(r))}</text>`,
    ...legend,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
