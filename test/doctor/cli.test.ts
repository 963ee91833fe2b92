// hermes3 doctor as a program: JSON on stdout, exit 0 when nothing fails and 1 when something does.
import { copyFileSync, mkdtempSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, cliPath, requireFile, runNode } from '../fixtures.js';

const cli = (args: string[]) => runNode([requireFile(cliPath, 'run npm run compile'), ...args]);

function truncatedCopy(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'doctor-cli-')), 'cut.gguf');
  copyFileSync(FIXTURES.q8, path);
  truncateSync(path, Math.floor(statSync(path).size / 2));
  return path;
}

describe('hermes3 doctor', () => {
  it('prints the findings as JSON and exits 0 on the healthy model', async () => {
    const r = await cli(['doctor', '--model', FIXTURES.q8, '--json']);
    expect(r.code).toBe(0);
    const findings = JSON.parse(r.stdout) as Array<{ id: string; status: string; title: string; detail: string; fix?: string; data?: Record<string, number> }>;
    for (const f of findings) {
      expect(Object.keys(f)).toEqual(expect.arrayContaining(['id', 'status', 'title', 'detail']));
      if (f.status !== 'ok') expect(f.fix, f.id).toBeTruthy();
    }
    expect(findings.map((f) => f.id)).toEqual(expect.arrayContaining(['backends', 'cpu.variant', 'cpu.compiler', 'model.file', 'chat.template', 'chat.tokens', 'fit', 'speed']));
    expect(findings.find((f) => f.id === 'speed')?.data?.tokensPerSecond).toBeGreaterThan(0);
  });

  it('exits 1 on a truncated model, with the fix in the JSON and in the report', async () => {
    const cut = truncatedCopy();
    const json = await cli(['doctor', '--model', cut, '--json']);
    expect(json.code).toBe(1);
    const file = (JSON.parse(json.stdout) as Array<{ id: string; status: string; fix?: string }>).find((f) => f.id === 'model.file');
    expect(file).toMatchObject({ status: 'fail', fix: expect.stringMatching(/^download it again: hermes3 pull REF/) });
    const text = await cli(['doctor', '--model', cut, '--no-probe']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/FAIL {2}the model file is truncated \[model\.file\]/);
    expect(text.stdout).toContain('fix: download it again');
    expect(text.stdout).toMatch(/\d+ ok, .*1 fail\n$/);
  });

  it('explains usage errors with exit code 2', async () => {
    const r = await cli(['doctor', '--ctx', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Invalid --ctx: expected an integer >= 16, received 'lots'");
    const help = await cli(['doctor', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--no-probe');
  });
});
