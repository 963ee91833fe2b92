/** deploy/hermes3.service: `systemd-analyze verify` accepts it without a warning, and its settings fit the server. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serverSchema } from '../../src/server/options.js';
import { root } from '../fixtures.js';

const unitPath = join(root, 'deploy', 'hermes3.service');
const unit = readFileSync(unitPath, 'utf8');

/** [Section] -> key -> every value it is given, in order. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`not a unit file line: ${raw}`);
    current.set(kv[1], [...(current.get(kv[1]) ?? []), kv[2]]);
  }
  return sections;
}

const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
const analyze = which('systemd-analyze');
if (!analyze) console.warn('systemd unit check skipped: systemd-analyze is not installed (Linux with systemd has it)');

describe('deploy/hermes3.service', () => {
  const service = parseUnit(unit).get('Service')!;
  const one = (key: string) => service.get(key)?.at(-1);

  it.skipIf(!analyze)('passes systemd-analyze verify with no warning', () => {
    // verify checks that ExecStart's program exists: point it at one that does, keep the rest
    const dir = mkdtempSync(join(tmpdir(), 'hermes3-unit-'));
    try {
      const copy = join(dir, 'hermes3.service');
      writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      const r = spawnSync(analyze, ['verify', copy], { encoding: 'utf8', timeout: 30_000 });
      const output = `${r.stdout}${r.stderr}`;
      const aboutUnit = output.split('\n').filter((l) => l.includes('hermes3.service'));
      expect({ status: r.status, aboutUnit }, `systemd-analyze verify said:\n${output}`).toEqual({ status: 0, aboutUnit: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  if (!analyze) it.skip('systemd-analyze verify: not installed here', () => {});

  it('runs hermes3 serve with the config as a dedicated user', () => {
    expect(one('ExecStart')).toMatch(/^\/\S+\/hermes3 serve --config \/etc\/hermes3\/hermes3\.json$/);
    expect(one('User')).toBe('hermes3');
    expect(one('Type')).toBe('exec');
    expect(one('EnvironmentFile')).toBe('-/etc/hermes3/hermes3.env');
    expect(parseUnit(unit).get('Install')!.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('restarts on failure but not on a usage error, and stops within the grace period', () => {
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartPreventExitStatus')).toBe('2');
    expect(one('KillSignal')).toBe('SIGTERM');
    const stopMs = Number(/^(\d+)s?$/.exec(one('TimeoutStopSec')!)![1]) * 1000;
    const example = JSON.parse(readFileSync(join(root, 'deploy', 'hermes3.json'), 'utf8')) as { graceMs?: number };
    const defaultGrace = serverSchema.shape.graceMs.parse(undefined);
    expect(stopMs).toBeGreaterThan(Math.max(defaultGrace, example.graceMs ?? 0) + 5_000);
  });

  it('is sandboxed without taking away the GPU, the JIT or the models folder', () => {
    for (const [key, value] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes' })) {
      expect(one(key), key).toBe(value);
    }
    const models = /^HERMES3_MODELS=(.+)$/.exec(service.get('Environment')!.find((e) => e.startsWith('HERMES3_MODELS='))!)![1];
    expect(service.get('ReadWritePaths')!.some((p) => models === p || models.startsWith(p + '/'))).toBe(true);
    // these would hide /dev/nvidia* and /dev/dri, or stop V8 from compiling
    for (const key of ['PrivateDevices', 'ProtectClock', 'DeviceAllow', 'MemoryDenyWriteExecute', 'SystemCallFilter']) expect(service.has(key), key).toBe(false);
  });

  it('keeps the key out of the unit', () => {
    expect(unit).not.toMatch(/^Environment=.*API_KEY/m);
    expect(unit).not.toMatch(/--api-key/);
  });
});

