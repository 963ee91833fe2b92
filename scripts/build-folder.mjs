// What a CMake build folder was configured with, against what scripts/install.mjs would configure
// now. CMake fixes the compiler and the generator when a build folder is first configured and
// never changes them in place: a folder first configured with GCC (clang was not installed yet)
// keeps GCC after clang is installed, and a folder made for one generator refuses another. The
// install notices that and starts the folder's configuration afresh (its CMakeCache.txt and
// CMakeFiles/), which loses nothing, since it passes every option on every configure.
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

// the compilers cmake/prefer-clang.cmake looks for, in its order
const CLANG_NAMES = ['clang-16', 'clang-17', 'clang-18', 'clang-19', 'clang-20', 'clang'];
const CLANGXX_NAMES = ['clang++-16', 'clang++-17', 'clang++-18', 'clang++-19', 'clang++-20', 'clang++'];

/** The absolute path of an executable: a path as given, or a name looked up on PATH. */
export function findProgram(name, env = process.env) {
  if (!name) return undefined;
  const isFile = (p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/') || (process.platform === 'win32' && name.includes('\\'))) return isFile(name) ? name : undefined;
  const exts = process.platform === 'win32' ? ['', '.exe', '.cmd'] : [''];
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const p = join(dir, name + ext);
      if (isFile(p)) return p;
    }
  }
  return undefined;
}

/** -DNAME=VALUE from HERMES3_CMAKE_ARGS, if given there. */
function cmakeArg(env, name) {
  for (const arg of (env.HERMES3_CMAKE_ARGS ?? '').split(/\s+/)) {
    const m = new RegExp(`^-D${name}(?::\\w+)?=(.*)$`).exec(arg);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * The compilers a configure would use now, as CMakeLists.txt decides on a fresh folder:
 * `from` says why: 'cmake-args' (-DCMAKE_C_COMPILER in HERMES3_CMAKE_ARGS), 'env' (CC/CXX),
 * 'clang' (cmake/prefer-clang.cmake's pick from PATH) or 'default' (CMake's own search: cc/c++).
 */
export function chooseCompiler(env = process.env) {
  const c = cmakeArg(env, 'CMAKE_C_COMPILER');
  const cxx = cmakeArg(env, 'CMAKE_CXX_COMPILER');
  if (c || cxx) return { c, cxx, from: 'cmake-args' };
  if (env.CC || env.CXX) return { c: env.CC || undefined, cxx: env.CXX || undefined, from: 'env' };
  const preferClang = cmakeArg(env, 'HERMES3_PREFER_CLANG');
  if (!preferClang || !/^(0|off|false|no)$/i.test(preferClang)) {
    const clang = CLANG_NAMES.map((n) => findProgram(n, env)).find(Boolean);
    const clangxx = CLANGXX_NAMES.map((n) => findProgram(n, env)).find(Boolean);
    if (clang && clangxx) return { c: clang, cxx: clangxx, from: 'clang' };
  }
  return { c: undefined, cxx: undefined, from: 'default' };
}

/** The generator cmake-js picks on this platform (its toolset.js): Ninja when on PATH, else Unix Makefiles. */
export function chooseGenerator(env = process.env) {
  if (process.platform === 'win32') return undefined; // Visual Studio: cmake-js's own search
  return findProgram('ninja', env) ? 'Ninja' : 'Unix Makefiles';
}

/** What a build folder was configured with, or undefined when it has not been configured. */
export function readBuildFolder(dir) {
  const cacheFile = join(dir, 'CMakeCache.txt');
  if (!existsSync(cacheFile)) return undefined;
  const cache = {};
  for (const line of readFileSync(cacheFile, 'utf8').split('\n')) {
    const m = /^([A-Za-z_][\w.+-]*):(\w+)=(.*)$/.exec(line);
    if (m) cache[m[1]] = m[3];
  }
  // the compiler CMake settled on, which cmake/prefer-clang.cmake sets as a variable (not in the
  // cache): CMakeFiles/<cmake version>/CMake{C,CXX}Compiler.cmake records it either way
  const recorded = { c: cache.CMAKE_C_COMPILER, cxx: cache.CMAKE_CXX_COMPILER };
  const files = join(dir, 'CMakeFiles');
  if (existsSync(files)) {
    for (const version of readdirSync(files).filter((d) => /^\d+\.\d+/.test(d))) {
      for (const [key, file, variable] of [
        ['c', 'CMakeCCompiler.cmake', 'CMAKE_C_COMPILER'],
        ['cxx', 'CMakeCXXCompiler.cmake', 'CMAKE_CXX_COMPILER'],
      ]) {
        const p = join(files, version, file);
        if (!existsSync(p)) continue;
        const m = new RegExp(`^set\\(${variable} "([^"]*)"\\)`, 'm').exec(readFileSync(p, 'utf8'));
        if (m) recorded[key] = m[1];
      }
    }
  }
  return { c: recorded.c || undefined, cxx: recorded.cxx || undefined, generator: cache.CMAKE_GENERATOR || undefined };
}

/** Whether two compiler names or paths are the same program (clang and clang-16 may be). */
function sameProgram(a, b, env) {
  if (a === b) return true;
  // "ccache gcc" and other commands with arguments: only an identical string is known to be the same
  if (/\s/.test(a) || /\s/.test(b)) return false;
  const resolve = (p) => {
    const found = isAbsolute(p) ? (existsSync(p) ? p : undefined) : findProgram(p, env);
    try {
      return found && realpathSync(found);
    } catch {
      return found;
    }
  };
  const [ra, rb] = [resolve(a), resolve(b)];
  return ra !== undefined && ra === rb;
}

/**
 * Why a configured build folder cannot be configured as wanted in place, or undefined when it can.
 * `kind` is 'compiler' or 'generator'; `message` says what changed.
 */
export function staleBuildFolder(dir, env = process.env) {
  const was = readBuildFolder(dir);
  if (!was) return undefined;
  const generator = chooseGenerator(env);
  if (generator && was.generator && was.generator !== generator) {
    return { kind: 'generator', message: `it was configured for the ${was.generator} generator, and this build uses ${generator}` };
  }
  const now = chooseCompiler(env);
  for (const lang of ['c', 'cxx']) {
    const before = was[lang];
    if (!before) continue;
    const wanted = now[lang];
    const name = lang === 'c' ? 'C' : 'C++';
    if (!wanted) {
      // CMake's own choice: keep what it found, unless that compiler is gone
      if (!/\s/.test(before) && !(isAbsolute(before) ? existsSync(before) : findProgram(before, env))) return { kind: 'compiler', message: `its ${name} compiler ${before} no longer exists` };
      continue;
    }
    if (!sameProgram(before, wanted, env)) {
      const why = { 'cmake-args': 'as HERMES3_CMAKE_ARGS says', env: `as ${lang === 'c' ? 'CC' : 'CXX'} says`, clang: 'the clang found on PATH' }[now.from];
      return { kind: 'compiler', message: `it was configured with the ${name} compiler ${before}, and this build uses ${wanted} (${why})` };
    }
  }
  return undefined;
}

/** Forgets a build folder's configuration (CMakeCache.txt and CMakeFiles/); object files stay and are rebuilt as needed. */
export function resetBuildFolder(dir) {
  rmSync(join(dir, 'CMakeCache.txt'), { force: true });
  rmSync(join(dir, 'CMakeFiles'), { recursive: true, force: true });
}
