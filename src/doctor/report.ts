/** The doctor's findings as a readable report (pure formatting). */
import type { Finding, FindingStatus } from './types.js';

const LABELS: Record<FindingStatus, string> = { ok: 'ok  ', info: 'info', warn: 'WARN', fail: 'FAIL' };
const INDENT = '        ';

/** Wraps `text` at `width` columns, every line after the first indented by `indent`. */
export function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width - indent.length) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n' + indent);
}

/** One finding: the status and title, then the detail and the fix, indented. */
export function formatFinding(f: Finding, width = 100): string {
  const out = [`  ${LABELS[f.status]}  ${f.title} [${f.id}]`, INDENT + wrap(f.detail, width, INDENT)];
  if (f.fix) out.push(INDENT + wrap(`fix: ${f.fix}`, width, INDENT + '     '));
  return out.join('\n');
}

/** The count of findings by status, e.g. "7 ok, 1 warn, 1 fail". */
export function summarize(findings: readonly Finding[]): string {
  const counts = (['ok', 'info', 'warn', 'fail'] as const).map((s) => [s, findings.filter((f) => f.status === s).length] as const).filter(([, n]) => n > 0);
  return counts.map(([s, n]) => `${n} ${s}`).join(', ') || 'nothing checked';
}

export function formatReport(findings: readonly Finding[], width = 100): string {
  return `${findings.map((f) => formatFinding(f, width)).join('\n\n')}\n\n${summarize(findings)}\n`;
}
