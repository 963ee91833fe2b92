#!/usr/bin/env node
// `npm install` entry: use a matching prebuilt addon when one loads, otherwise materialise the
// vendored llama.cpp and build from source with cmake-js. `--force` always builds from source;
// `--check` only says which addon would be used (exit 0) or that a source build is needed (exit 1).
// `--configure-only` runs CMake's configure step and stops (a quick check of options and compiler).
//
// A build folder configured earlier with another compiler or generator (CMake cannot change either
// in place: a checkout first built before clang was installed, say) is configured afresh, and an
// addon built there with another compiler than this install would use is rebuilt
// (scripts/build-folder.mjs).
//
// Environment:
//   HERMES3_BUILD_FROM_SOURCE=1   ignore prebuilds
//   HERMES3_CUDA=1                build the CUDA backend (needs the CUDA toolkit with cuBLAS)
//   HERMES3_METAL=0|1             Metal backend (default: on for macOS)
//   HERMES3_VULKAN=1              build the Vulkan backend (needs libvulkan-dev, glslc, spirv-headers)
//   HERMES3_NATIVE=0              do not tune the CPU code for this machine
//   HERMES3_BUILD_REFERENCE=0     skip the C API reference program the parity tests use
//   HERMES3_BUILD_BENCH=1         also build llama-bench and llama-batched-bench, the benchmark
//                                 anchors (build/Release/)
//   HERMES3_BACKEND_DL=1          backends as run-time loaded libraries, every x64 CPU variant
//                                 (what prebuilds use; needs HERMES3_NATIVE=0)
//   HERMES3_SANITIZE=LIST         build the addon and llama.cpp with -fsanitize=LIST (e.g.
//                                 address,undefined; see scripts/sanitize.sh)
//   HERMES3_CMAKE_ARGS="..."      extra -D flags passed to CMake
//   HERMES3_BUILD_DIR=DIR         the CMake build folder (default build/; the addon lands in DIR/Release)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseCompiler, resetBuildFolder, staleBuildFolder } from './build-folder.mjs';
import { materialise } from './vendor-llama.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// the benchmark anchors and the GPU backends (prebuilds are CPU-only) exist only in a source build
const truthy = (name) => /^(1|on|true|yes)$/i.test(process.env[name] ?? '');
const force =
  process.argv.includes('--force') || process.env.HERMES3_BUILD_FROM_SOURCE === '1' || truthy('HERMES3_BUILD_BENCH') || truthy('HERMES3_CUDA') || truthy('HERMES3_VULKAN');
const checkOnly = process.argv.includes('--check');
const configureOnly = process.argv.includes('--configure-only');

function log(msg) {
  process.stderr.write(`[hermes3-native] ${msg}\n`);
}

function tryExisting() {
  try {
    const load = require('node-gyp-build');
    const path = load.resolve(root);
    require(path);
    return path;
  } catch (err) {
    return { error: err };
  }
}

/** An addon from a source build (build/Release) whose folder names another compiler than a build now would use. */
function staleSourceBuild(addon) {
  if (relative(join(root, 'build'), addon).startsWith('..')) return undefined; // a prebuild
  const stale = staleBuildFolder(join(root, 'build'));
  return stale?.kind === 'compiler' ? stale : undefined;
}

if (checkOnly || !force) {
  const found = tryExisting();
  const stale = typeof found === 'string' ? staleSourceBuild(found) : undefined;
  if (typeof found === 'string' && !stale) {
    log(`using ${found.replace(root + '/', '')}`);
    process.exit(0);
  }
  if (stale) {
    const where = found.replace(root + '/', '');
    const why = `${where} is a source build, and its build folder ${stale.message}`;
    if (checkOnly) {
      log(`${why}; installing would rebuild it (set CC and CXX to keep the compiler it was built with)`);
      process.exit(1);
    }
    log(`${why}: rebuilding it (set CC and CXX to keep the compiler it was built with)`);
  } else if (checkOnly) {
    log(`no usable prebuilt addon (${found.error.message.split('\n')[0]}); installing would build from source`);
    process.exit(1);
  } else {
    log(`no usable prebuilt addon (${found.error.message.split('\n')[0]}); building from source`);
  }
}

try {
  materialise();
} catch (err) {
  log(`could not materialise vendor/llama.cpp: ${err.message}`);
  process.exit(1);
}

// Every option is passed on every configure, so a value left in CMakeCache.txt by an earlier
// build (a portable prebuild, say) never leaks into the next one.
const option = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback ? 'ON' : 'OFF';
  return /^(1|on|true|yes)$/i.test(v) ? 'ON' : 'OFF';
};
const defines = [
  `--CDHERMES3_CUDA=${option('HERMES3_CUDA', false)}`,
  `--CDHERMES3_METAL=${option('HERMES3_METAL', process.platform === 'darwin')}`,
  `--CDHERMES3_VULKAN=${option('HERMES3_VULKAN', false)}`,
  `--CDHERMES3_NATIVE=${option('HERMES3_NATIVE', true)}`,
  `--CDHERMES3_BUILD_REFERENCE=${option('HERMES3_BUILD_REFERENCE', true)}`,
  `--CDHERMES3_BACKEND_DL=${option('HERMES3_BACKEND_DL', false)}`,
  `--CDHERMES3_BUILD_BENCH=${option('HERMES3_BUILD_BENCH', false)}`,
];
const sanitize = (process.env.HERMES3_SANITIZE ?? '').trim();
if (!/^[a-z,-]*$/.test(sanitize)) {
  log(`HERMES3_SANITIZE=${sanitize} is not a list of sanitizers: use names as for -fsanitize=, e.g. HERMES3_SANITIZE=address,undefined`);
  process.exit(1);
}
defines.push(`--CDHERMES3_SANITIZE=${sanitize}`);
for (const arg of (process.env.HERMES3_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean)) {
  defines.push(arg.startsWith('-D') ? `--CD${arg.slice(2)}` : arg);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const parallel = String(Math.max(1, (await import('node:os')).availableParallelism()));
const started = Date.now();
// ccache keys on paths relative to the project, so clones in other folders share the cache
const env = { ...process.env, CCACHE_BASEDIR: root, CCACHE_NOHASHDIR: 'true' };
const buildDir = process.env.HERMES3_BUILD_DIR || 'build';
const buildPath = resolve(root, buildDir);
const cmake = (args) => spawnSync(process.execPath, [cmakeJs, ...args, '--out', buildDir], { cwd: root, stdio: 'inherit', env });
// CMake keeps a folder's compiler and generator whatever it is told later: a folder configured
// with others than this build would use starts its configuration afresh
const stale = staleBuildFolder(buildPath);
if (stale) {
  log(`reconfiguring ${buildDir} from scratch: ${stale.message}`);
  resetBuildFolder(buildPath);
}
// configure every time, so changed options take effect in an existing build folder
let result = cmake(['configure', ...defines]);
const configured = result.status === 0;
if (configured && !configureOnly) result = cmake(['build', '--parallel', parallel]);
if (result.status !== 0) {
  const compiler = chooseCompiler();
  const step = configured ? 'build' : 'configure step';
  log(`the native ${step} failed (build folder: ${buildPath}); CMake's message above says why.`);
  if (result.error) log(`could not run cmake-js: ${result.error.message}`);
  if (compiler.from === 'default' && process.arch === 'x64' && process.platform !== 'win32') {
    log('No clang was found on PATH, so this build uses the default compiler (GCC 12 and older miscompile AMX code, which the prebuild needs).');
    log('To build with clang: install it (Debian/Ubuntu: apt-get install clang-16) and run this again; the build folder is reconfigured for it.');
  } else if (compiler.from === 'env' || compiler.from === 'cmake-args') {
    log(`This build uses the compiler named by ${compiler.from === 'env' ? 'CC/CXX' : 'HERMES3_CMAKE_ARGS'} (${compiler.c ?? '-'} / ${compiler.cxx ?? '-'}): unset it to let the build pick clang, or name another.`);
  }
  log('It needs cmake (>= 3.19), a C++17 compiler (clang preferred) and, for speed, ccache and ninja. On Debian/Ubuntu: apt-get install cmake clang-16 ccache ninja-build');
  if (configured) log(`If the build folder itself is broken, remove it (rm -rf ${buildPath}) and run this again.`);
  process.exit(result.status ?? 1);
}
log(configureOnly ? `configured ${buildDir}` : `native build finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
