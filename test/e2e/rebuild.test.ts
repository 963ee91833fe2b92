// A build folder configured with another compiler or generator than a build would use now (a
// checkout first built before clang was installed, then `npm run prebuild` with clang): CMake keeps
// a folder's compiler, so scripts/install.mjs notices the change (scripts/build-folder.mjs) and
// configures the folder afresh. The decision is tested on fake build folders and a fake PATH, and
// once end to end with two configure-only runs (seconds; nothing is compiled).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root, runNode } from '../fixtures.js';

interface Compiler {
  c?: string;
  cxx?: string;
  from: 'cmake-args' | 'env' | 'clang' | 'default';
}
interface BuildFolder {
  findProgram(name: string, env?: NodeJS.ProcessEnv): string | undefined;
  chooseCompiler(env?: NodeJS.ProcessEnv): Compiler;
  chooseGenerator(env?: NodeJS.ProcessEnv): string | undefined;
  readBuildFolder(dir: string): { c?: string; cxx?: string; generator?: string } | undefined;
  staleBuildFolder(dir: string, env?: NodeJS.ProcessEnv): { kind: 'compiler' | 'generator'; message: string } | undefined;
  resetBuildFolder(dir: string): void;
}

let bf: BuildFolder;
let base: string;
let n = 0;

beforeAll(async () => {
  bf = (await import(pathToFileURL(join(root, 'scripts', 'build-folder.mjs')).href)) as BuildFolder;
  base = mkdtempSync(join(tmpdir(), 'hermes3-rebuild-'));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A folder of fake executables, for PATH. */
function bin(...names: string[]): string {
  const dir = join(base, `bin-${n++}`);
  mkdirSync(dir);
  for (const name of names) {
    writeFileSync(join(dir, name), '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

/** A build folder as CMake leaves it: the generator in CMakeCache.txt, the compilers in CMakeFiles/<version>/. */
function buildFolder(c: string, cxx: string, generator = 'Ninja'): string {
  const dir = join(base, `build-${n++}`);
  mkdirSync(join(dir, 'CMakeFiles', '3.25.1'), { recursive: true });
  writeFileSync(
    join(dir, 'CMakeCache.txt'),
    `# This is the CMakeCache file.\nCMAKE_GENERATOR:INTERNAL=${generator}\nCMAKE_C_COMPILER:FILEPATH=${c}\nCMAKE_CXX_COMPILER:FILEPATH=${cxx}\nHERMES3_BACKEND_DL:BOOL=ON\n`,
  );
  writeFileSync(join(dir, 'CMakeFiles', '3.25.1', 'CMakeCCompiler.cmake'), `set(CMAKE_C_COMPILER "${c}")\nset(CMAKE_C_COMPILER_ID "GNU")\n`);
  writeFileSync(join(dir, 'CMakeFiles', '3.25.1', 'CMakeCXXCompiler.cmake'), `set(CMAKE_CXX_COMPILER "${cxx}")\n`);
  return dir;
}

describe.skipIf(process.platform === 'win32')('which compiler and generator a build uses now', () => {
  it("picks clang from PATH as cmake/prefer-clang.cmake does, unless CC/CXX or HERMES3_CMAKE_ARGS name one", () => {
    const withClang = bin('gcc', 'g++', 'clang-17', 'clang++-17', 'clang', 'clang++');
    expect(bf.chooseCompiler({ PATH: withClang })).toEqual({ c: join(withClang, 'clang-17'), cxx: join(withClang, 'clang++-17'), from: 'clang' });
    expect(bf.chooseCompiler({ PATH: withClang, CC: 'gcc', CXX: 'g++' })).toEqual({ c: 'gcc', cxx: 'g++', from: 'env' });
    expect(bf.chooseCompiler({ PATH: withClang, HERMES3_CMAKE_ARGS: '-DFOO=1 -DCMAKE_C_COMPILER=/opt/cc -DCMAKE_CXX_COMPILER:FILEPATH=/opt/c++' })).toEqual({
      c: '/opt/cc',
      cxx: '/opt/c++',
      from: 'cmake-args',
    });
    expect(bf.chooseCompiler({ PATH: withClang, HERMES3_CMAKE_ARGS: '-DHERMES3_PREFER_CLANG=OFF' }).from).toBe('default');
    // clang without clang++ (a partial install) is not used
    expect(bf.chooseCompiler({ PATH: bin('gcc', 'g++', 'clang-16') })).toEqual({ c: undefined, cxx: undefined, from: 'default' });
  });

  it('picks the generator cmake-js picks: Ninja when it is on PATH', () => {
    expect(bf.chooseGenerator({ PATH: bin('ninja') })).toBe('Ninja');
    expect(bf.chooseGenerator({ PATH: bin('make') })).toBe('Unix Makefiles');
  });

  it('reads what a build folder was configured with', () => {
    expect(bf.readBuildFolder(join(base, 'never-configured'))).toBeUndefined();
    expect(bf.readBuildFolder(buildFolder('/usr/bin/gcc', '/usr/bin/g++', 'Unix Makefiles'))).toEqual({
      c: '/usr/bin/gcc',
      cxx: '/usr/bin/g++',
      generator: 'Unix Makefiles',
    });
  });
});

describe.skipIf(process.platform === 'win32')('a build folder configured with another compiler', () => {
  it('is stale once clang is installed, when it was configured with GCC (the prebuild after a first build without clang)', () => {
    const before = bin('gcc', 'g++', 'ninja');
    const after = bin('clang-16', 'clang++-16');
    const gcc = join(before, 'gcc');
    const folder = buildFolder(gcc, join(before, 'g++'));
    // before clang is installed: CMake's own choice stands
    expect(bf.staleBuildFolder(folder, { PATH: before })).toBeUndefined();
    const stale = bf.staleBuildFolder(folder, { PATH: `${after}:${before}` });
    expect(stale).toEqual({
      kind: 'compiler',
      message: `it was configured with the C compiler ${gcc}, and this build uses ${join(after, 'clang-16')} (the clang found on PATH)`,
    });
    // CC/CXX naming the folder's compiler keep it, by name or by path
    expect(bf.staleBuildFolder(folder, { PATH: `${after}:${before}`, CC: 'gcc', CXX: 'g++' })).toBeUndefined();
    expect(bf.staleBuildFolder(folder, { PATH: `${after}:${before}`, CC: gcc, CXX: join(before, 'g++') })).toBeUndefined();
  });

  it('is not stale when it names the compiler a build picks now, through a link or not', () => {
    const tools = bin('clang-16', 'clang++-16', 'ninja');
    const links = join(base, `links-${n++}`);
    mkdirSync(links);
    symlinkSync(join(tools, 'clang-16'), join(links, 'clang'));
    symlinkSync(join(tools, 'clang++-16'), join(links, 'clang++'));
    expect(bf.staleBuildFolder(buildFolder(join(tools, 'clang-16'), join(tools, 'clang++-16')), { PATH: tools })).toBeUndefined();
    expect(bf.staleBuildFolder(buildFolder(join(links, 'clang'), join(links, 'clang++')), { PATH: tools })).toBeUndefined();
  });

  it('is stale when its compiler is gone, or CC/CXX name another', () => {
    const tools = bin('gcc', 'g++', 'ninja');
    const gone = buildFolder('/nonexistent/clang-16', '/nonexistent/clang++-16');
    expect(bf.staleBuildFolder(gone, { PATH: tools })?.message).toBe('its C compiler /nonexistent/clang-16 no longer exists');
    const folder = buildFolder(join(tools, 'gcc'), join(tools, 'g++'));
    const other = bin('gcc-13', 'g++-13');
    expect(bf.staleBuildFolder(folder, { PATH: `${tools}:${other}`, CC: 'gcc-13', CXX: 'g++-13' })?.message).toBe(
      `it was configured with the C compiler ${join(tools, 'gcc')}, and this build uses gcc-13 (as CC says)`,
    );
  });

  it('is stale when it was made for another generator', () => {
    const tools = bin('gcc', 'g++', 'ninja');
    const folder = buildFolder(join(tools, 'gcc'), join(tools, 'g++'), 'Unix Makefiles');
    expect(bf.staleBuildFolder(folder, { PATH: tools })).toEqual({
      kind: 'generator',
      message: 'it was configured for the Unix Makefiles generator, and this build uses Ninja',
    });
  });

  it('forgets its configuration and keeps its outputs when reset', () => {
    const tools = bin('gcc', 'g++');
    const folder = buildFolder(join(tools, 'gcc'), join(tools, 'g++'));
    mkdirSync(join(folder, 'Release'));
    writeFileSync(join(folder, 'Release', 'hermes3.node'), '');
    bf.resetBuildFolder(folder);
    expect(existsSync(join(folder, 'CMakeCache.txt'))).toBe(false);
    expect(existsSync(join(folder, 'CMakeFiles'))).toBe(false);
    expect(existsSync(join(folder, 'Release', 'hermes3.node'))).toBe(true);
    expect(bf.readBuildFolder(folder)).toBeUndefined();
  });
});

/** The environment of an install run without this run's build settings. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(CC|CXX|HERMES3_.*)$/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

const built = join(root, 'build', 'Release', 'hermes3.node');

describe.runIf(process.platform === 'linux' && existsSync(built))('npm install over a source build made with another compiler', () => {
  it('rebuilds the addon rather than keeping it', async () => {
    // a package whose build/ holds a working addon from a folder configured with GCC, and clang on PATH
    const pkg = join(base, `pkg-${n++}`);
    mkdirSync(join(pkg, 'scripts'), { recursive: true });
    copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
    for (const f of ['install.mjs', 'vendor-llama.mjs', 'build-folder.mjs']) copyFileSync(join(root, 'scripts', f), join(pkg, 'scripts', f));
    cpSync(join(root, 'vendor', 'llama.cpp.pin.json'), join(pkg, 'vendor', 'llama.cpp.pin.json'));
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');
    const tools = bin('gcc', 'g++', 'clang-16', 'clang++-16', 'ninja');
    const folder = buildFolder(join(tools, 'gcc'), join(tools, 'g++'));
    cpSync(folder, join(pkg, 'build'), { recursive: true });
    mkdirSync(join(pkg, 'build', 'Release'));
    copyFileSync(built, join(pkg, 'build', 'Release', 'hermes3.node'));
    const env = cleanEnv({ PATH: `${tools}:${process.env.PATH}` });
    const r = await runNode(['scripts/install.mjs', '--check'], { cwd: pkg, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `build/Release/hermes3.node is a source build, and its build folder it was configured with the C compiler ${join(tools, 'gcc')}, and this build uses ${join(tools, 'clang-16')} (the clang found on PATH); installing would rebuild it`,
    );
    // with CC/CXX naming the folder's compiler, the addon is kept
    const kept = await runNode(['scripts/install.mjs', '--check'], { cwd: pkg, env: { ...env, CC: 'gcc', CXX: 'g++' } });
    expect(kept.code).toBe(0);
    expect(kept.stderr).toContain('using build/Release/hermes3.node');
  });
});

const clang = () => ['clang-16', 'clang-17', 'clang-18', 'clang-19', 'clang-20', 'clang'].some((c) => bf.findProgram(c));
const configurable = process.platform === 'linux' && process.arch === 'x64' && existsSync(join(root, 'vendor', 'llama.cpp', 'CMakeLists.txt'));

describe.runIf(configurable)('the prebuild configured in a folder first configured with GCC 12', () => {
  it('says what to do while CC names GCC, and configures with clang once the build may pick it', async (ctx) => {
    if (!clang() || !bf.findProgram('gcc')) ctx.skip();
    // GCC 12 and older cannot build the prebuild's AMX variant; a newer GCC configures it
    const oldGcc = Number(execFileSync('gcc', ['-dumpversion'], { encoding: 'utf8' }).split('.')[0]) < 13;
    const dir = join(base, `configure-${n++}`);
    // what scripts/prebuild-gyp.mjs asks for, configure-only
    const prebuild = { HERMES3_BUILD_DIR: dir, HERMES3_NATIVE: '0', HERMES3_BUILD_REFERENCE: '0', HERMES3_BACKEND_DL: '1' };
    const first = await runNode(['scripts/install.mjs', '--force', '--configure-only'], { cwd: root, env: cleanEnv({ ...prebuild, CC: 'gcc', CXX: 'g++' }) });
    if (oldGcc) {
      expect(first.code).not.toBe(0);
      const out = (first.stdout + first.stderr).replace(/\s+/g, ' ');
      expect(out).toContain("HERMES3_BACKEND_DL builds ggml's AMX variant, which GCC");
      expect(out).toContain('set CC=clang-16 CXX=clang++-16, or unset them to let the build pick clang');
      expect(out).toContain('the native configure step failed');
    }
    expect(bf.readBuildFolder(dir)?.c).toMatch(/gcc/);

    // clang is there and CC/CXX are not set: the folder is configured afresh, with clang
    const want = bf.chooseCompiler(cleanEnv({}));
    expect(want.from).toBe('clang');
    const second = await runNode(['scripts/install.mjs', '--force', '--configure-only'], { cwd: root, env: cleanEnv(prebuild) });
    expect(second.stderr).toContain(`reconfiguring ${dir} from scratch: it was configured with the C compiler`);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(`configured ${dir}`);
    expect(bf.readBuildFolder(dir)?.c).toBe(want.c);
    expect(bf.staleBuildFolder(dir, cleanEnv({}))).toBeUndefined();
    // configured, not built
    expect(existsSync(join(dir, 'Release', 'hermes3.node'))).toBe(false);
  });
});
