// How the package finds its addon: `npm install` (scripts/install.mjs) takes a prebuild that loads
// and skips compiling, says so when a prebuild is missing or broken, and the runtime loader names
// what it tried and how to fix it. Each case runs in a copy of the package in a temporary folder.
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireFile, root, runNode } from '../fixtures.js';

const platformDir = `${process.platform}-${process.arch}`;
const built = join(root, 'build', 'Release', 'hermes3.node');

function node(cwd: string, args: string[], env: Record<string, string> = {}) {
  // the copy's own addon, whatever this run's HERMES3_ADDON_PATH says
  const { HERMES3_ADDON_PATH: _ignored, ...inherited } = process.env;
  return runNode(args, { cwd, env: { ...inherited, ...env } });
}

/** Loads the copy's addon through the public API; prints the devices or the error's name, code and message. */
const PROBE = `
import('./dist/index.js')
  .then((m) => console.log(JSON.stringify({ devices: m.getBackendInfo().devices.map((d) => d.name) })))
  .catch((e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })));`;

async function probe(pkg: string, env: Record<string, string> = {}) {
  const r = await node(pkg, ['--input-type=module', '-e', PROBE], env);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { devices?: string[]; name?: string; code?: string; message?: string };
}

describe('finding the addon', () => {
  let base: string;
  let n = 0;
  /** A copy of the installed package without build/ or vendor/: what a user's node_modules holds. */
  function packageCopy(prebuild: 'working' | 'broken' | 'none'): string {
    const pkg = join(base, `pkg-${n++}`);
    mkdirSync(join(pkg, 'scripts'), { recursive: true });
    mkdirSync(join(pkg, 'vendor'));
    copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
    copyFileSync(join(root, 'vendor', 'llama.cpp.pin.json'), join(pkg, 'vendor', 'llama.cpp.pin.json'));
    cpSync(join(root, 'vendor', 'patches'), join(pkg, 'vendor', 'patches'), { recursive: true });
    for (const f of ['install.mjs', 'vendor-llama.mjs', 'build-folder.mjs']) copyFileSync(join(root, 'scripts', f), join(pkg, 'scripts', f));
    cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');
    if (prebuild !== 'none') {
      const dir = join(pkg, 'prebuilds', platformDir);
      mkdirSync(dir, { recursive: true });
      if (prebuild === 'working') copyFileSync(built, join(dir, 'hermes3-native.node'));
      else writeFileSync(join(dir, 'hermes3-native.node'), 'not a shared library\n');
    }
    return pkg;
  }

  beforeAll(() => {
    requireFile(built, 'build the addon first (npm install)');
    requireFile(join(root, 'dist', 'index.js'), 'run npm run compile');
    base = mkdtempSync(join(tmpdir(), 'hermes3-install-'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('installs from a prebuild that loads, without compiling, and uses it at run time', async () => {
    const pkg = packageCopy('working');
    const r = await node(pkg, ['scripts/install.mjs']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`using prebuilds/${platformDir}/hermes3-native.node`);
    expect(existsSync(join(pkg, 'build'))).toBe(false);
    expect(existsSync(join(pkg, 'vendor', 'llama.cpp'))).toBe(false);
    const loaded = await probe(pkg);
    expect(loaded.devices).toContain('CPU');
  });

  it('says that a broken prebuild means a source build, and why', async () => {
    const pkg = packageCopy('broken');
    const r = await node(pkg, ['scripts/install.mjs', '--check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no usable prebuilt addon \(.*(invalid ELF header|file too short|not a valid).*\); installing would build from source/);
    const failed = await probe(pkg);
    expect(failed).toMatchObject({ name: 'NativeError', code: 'ERR_ADDON_LOAD' });
    expect(failed.message).toContain(`Tried: ${join(pkg, 'prebuilds', platformDir, 'hermes3-native.node')}`);
    expect(failed.message).toContain("To fix: in your app's folder run `npm install-scripts approve hermes3-native`");
    expect(failed.message).toContain('then `npm rebuild hermes3-native`');
  });

  it('says where it looked when there is no addon at all', async () => {
    const pkg = packageCopy('none');
    const r = await node(pkg, ['scripts/install.mjs', '--check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no usable prebuilt addon \(No native build was found.*\); installing would build from source/);
    const failed = await probe(pkg);
    expect(failed).toMatchObject({ name: 'NativeError', code: 'ERR_ADDON_LOAD' });
    expect(failed.message).toContain(`Tried: prebuilds/${platformDir}/ and build/Release/ under ${pkg}`);
    expect(failed.message).toContain(`for ${platformDir} (Node ${process.versions.node}, N-API ${process.versions.napi})`);
  });

  it('names an explicit HERMES3_ADDON_PATH that does not load', async () => {
    const pkg = packageCopy('working');
    const bogus = join(pkg, 'elsewhere.node');
    const failed = await probe(pkg, { HERMES3_ADDON_PATH: bogus });
    expect(failed).toMatchObject({ name: 'NativeError', code: 'ERR_ADDON_LOAD' });
    expect(failed.message).toContain(`Tried: ${bogus}. Cause:`);
  });
});
