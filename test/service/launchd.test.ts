/** deploy/com.hermes3.serve.plist: a well-formed property list (python3's plistlib reads it) with the keys launchd needs. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serverSchema } from '../../src/server/options.js';
import { root } from '../fixtures.js';

const plistPath = join(root, 'deploy', 'com.hermes3.serve.plist');
const python = spawnSync('python3', ['-c', 'import plistlib'], { encoding: 'utf8' }).status === 0;
if (!python) console.warn('launchd plist check skipped: python3 is not installed');

/** The plist as JSON, through plistlib (a parse error fails the test with python's message). */
function loadPlist(): Record<string, unknown> {
  const script = 'import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))';
  const r = spawnSync('python3', ['-c', script, plistPath], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`plistlib could not read ${plistPath}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe.skipIf(!python)('deploy/com.hermes3.serve.plist', () => {
  it('has a label and runs hermes3 serve with the config', () => {
    const plist = loadPlist();
    expect(plist.Label).toBe('com.hermes3.serve');
    const args = plist.ProgramArguments as string[];
    expect(args).toContain('hermes3');
    expect(args.slice(args.indexOf('hermes3'), args.indexOf('hermes3') + 3)).toEqual(['hermes3', 'serve', '--config']);
    expect(args[args.indexOf('--config') + 1]).toMatch(/^\/.+\/hermes3\.json$/);
    // /usr/bin/env looks hermes3 (and node) up on this PATH
    expect(args[0]).toBe('/usr/bin/env');
    expect((plist.EnvironmentVariables as Record<string, string>).PATH.split(':')).toEqual(expect.arrayContaining(['/opt/homebrew/bin', '/usr/local/bin']));
  });

  it('starts at load, restarts after a failure only, and leaves time for the grace period', () => {
    const plist = loadPlist();
    expect(plist.RunAtLoad).toBe(true);
    expect(plist.KeepAlive).toEqual({ SuccessfulExit: false });
    expect((plist.ExitTimeOut as number) * 1000).toBeGreaterThan(serverSchema.shape.graceMs.parse(undefined) + 5_000);
    expect(plist.StandardOutPath).toMatch(/^\/.+\.log$/);
    expect(plist.StandardErrorPath).toMatch(/^\/.+\.log$/);
  });
});
if (!python) describe.skip('deploy/com.hermes3.serve.plist: python3 is not installed to parse it', () => { it.skip('skipped', () => {}); });
