// The portable prebuild (`npm run prebuild`: backends loaded at run time, every x64 CPU variant)
// against the source build tuned for this machine: it must load the best CPU variant this CPU
// supports and compute the same tokens. CI makes the prebuild before the tests; where none has
// been made, these tests are skipped.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FIXTURES, root } from '../fixtures.js';

const exec = promisify(execFile);
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const prebuild = join(dir, 'hermes3-native.node');
const sourceBuild = join(root, 'build', 'Release', 'hermes3.node');

const PROBE = `
const m = await import('./dist/index.js');
const info = m.getBackendInfo();
const model = await m.loadModel({ modelPath: process.argv[1] });
const ctx = await model.createContext({ nCtx: 512, threads: 2 });
const tokens = [];
for await (const c of ctx.sequence().generate(m.formatChat([{ role: 'user', content: 'Hello there' }]), { temperature: 0, maxTokens: 32 })) tokens.push(...c.tokens);
await model.dispose();
console.log(JSON.stringify({ dynamic: info.dynamic, variant: info.cpu.variant, backends: info.backends.map((b) => b.name), libraries: info.libraries, tokens }));
`;

async function probe(addon: string) {
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', PROBE, FIXTURES.q4km], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, HERMES3_ADDON_PATH: addon },
  });
  return JSON.parse(stdout) as {
    dynamic: boolean;
    variant: string | undefined;
    backends: string[];
    libraries?: Array<{ file: string; status: string; reason?: string }>;
    tokens: number[];
  };
}

describe.runIf(existsSync(prebuild))('the prebuild', () => {
  it('ships the libraries it loads, with every x64 CPU variant', () => {
    const files = readdirSync(dir);
    expect(files).toContain('libllama.so.0');
    expect(files).toContain('libggml-base.so.0');
    if (process.arch === 'x64') {
      const variants = files.filter((f) => /^libggml-cpu-[\w]+\.so$/.test(f));
      expect(variants.length).toBeGreaterThanOrEqual(14);
      expect(variants).toContain('libggml-cpu-sapphirerapids.so');
    }
  });

  it("is built apart from the source build, whose static tools would load the prebuild's ggml libraries", () => {
    // llama-bench and the reference program of a source build load any libggml-*.so beside them at
    // start, and ggml initialised twice aborts them
    const stray = readdirSync(join(root, 'build', 'Release')).filter((f) => /^lib(ggml|llama)/.test(f));
    expect(stray).toEqual([]);
    expect(existsSync(join(root, 'build', 'prebuild', 'build', 'CMakeCache.txt'))).toBe(true);
  });

  it("loads the CPU variant that matches this CPU and computes the source build's tokens", async () => {
    const [portable, tuned] = await Promise.all([probe(prebuild), probe(sourceBuild)]);
    expect(portable.dynamic).toBe(true);
    expect(tuned.dynamic).toBe(false);
    expect(portable.backends).toContain('CPU');
    // the source build is compiled for this CPU's features; the prebuild must have picked the
    // variant with the same features
    expect(portable.variant).toBeDefined();
    expect(portable.variant).toBe(tuned.variant);
    expect(portable.tokens).toHaveLength(32);
    expect(portable.tokens).toEqual(tuned.tokens);
    // which backend library became what
    const libs = portable.libraries!;
    expect(libs.find((l) => l.status === 'cpu')?.file).toBe(`libggml-cpu-${portable.variant}.so`);
    expect(libs.find((l) => l.file === 'libggml-rpc.so')?.status).toBe('loaded');
    expect(libs.filter((l) => l.status === 'failed')).toEqual([]);
    expect(tuned.libraries).toBeUndefined();
  });

  it('says which backend library failed to load, and why', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'hermes3-prebuild-'));
    cpSync(dir, copy, { recursive: true });
    // a CUDA backend that cannot be opened, as one is on a machine without the driver library
    writeFileSync(join(copy, 'libggml-cuda.so'), 'not a shared library\n');
    const portable = await probe(join(copy, 'hermes3-native.node'));
    const cuda = portable.libraries!.find((l) => l.file === 'libggml-cuda.so');
    expect(cuda?.status).toBe('failed');
    expect(cuda?.reason).toMatch(/libggml-cuda\.so: (invalid ELF header|file too short)/);
    expect(portable.backends).not.toContain('CUDA');
    expect(portable.tokens).toHaveLength(32);
  });
});
