#!/usr/bin/env node
// `npm install` entry: use a matching prebuilt addon when one loads, otherwise materialise the
// vendored llama.cpp and build from source with cmake-js. `--force` always builds from source;
// `--check` only says which addon would be used (exit 0) or that a source build is needed (exit 1).
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
//   HERMES3_CMAKE_ARGS="..."      extra -D flags passed to CMake
//   HERMES3_BUILD_DIR=DIR         the CMake build folder (default build/; the addon lands in DIR/Release)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { materialise } from './vendor-llama.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// the benchmark anchors and the GPU backends (prebuilds are CPU-only) exist only in a source build
const truthy = (name) => /^(1|on|true|yes)$/i.test(process.env[name] ?? '');
const force =
  process.argv.includes('--force') || process.env.HERMES3_BUILD_FROM_SOURCE === '1' || truthy('HERMES3_BUILD_BENCH') || truthy('HERMES3_CUDA') || truthy('HERMES3_VULKAN');
const checkOnly = process.argv.includes('--check');

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

if (checkOnly || !force) {
  const found = tryExisting();
  if (typeof found === 'string') {
    log(`using ${found.replace(root + '/', '')}`);
    process.exit(0);
  }
  if (checkOnly) {
    log(`no usable prebuilt addon (${found.error.message.split('\n')[0]}); installing would build from source`);
    process.exit(1);
  }
  log(`no usable prebuilt addon (${found.error.message.split('\n')[0]}); building from source`);
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
for (const arg of (process.env.HERMES3_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean)) {
  defines.push(arg.startsWith('-D') ? `--CD${arg.slice(2)}` : arg);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const parallel = String(Math.max(1, (await import('node:os')).availableParallelism()));
const started = Date.now();
// ccache keys on paths relative to the project, so clones in other folders share the cache
const env = { ...process.env, CCACHE_BASEDIR: root, CCACHE_NOHASHDIR: 'true' };
const buildDir = process.env.HERMES3_BUILD_DIR || 'build';
const cmake = (args) => spawnSync(process.execPath, [cmakeJs, ...args, '--out', buildDir], { cwd: root, stdio: 'inherit', env });
// configure every time, so changed options take effect in an existing build folder
let result = cmake(['configure', ...defines]);
if (result.status === 0) result = cmake(['build', '--parallel', parallel]);
if (result.status !== 0) {
  log('the native build failed. It needs cmake (>= 3.19) and a C++17 compiler; clang is preferred on x64 (GCC 12 miscompiles AMX code).');
  log('On Debian/Ubuntu: apt-get install cmake clang-16 ccache');
  process.exit(result.status ?? 1);
}
log(`native build finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
