#!/usr/bin/env node
// `npm install` entry: use a matching prebuilt addon when one loads, otherwise materialise the
// vendored llama.cpp and build from source with cmake-js. `--force` always builds from source.
//
// Environment:
//   HERMES3_BUILD_FROM_SOURCE=1   ignore prebuilds
//   HERMES3_CUDA=1                build the CUDA backend (needs the CUDA toolkit with cuBLAS)
//   HERMES3_METAL=0|1             Metal backend (default: on for macOS)
//   HERMES3_NATIVE=0              do not tune the CPU code for this machine
//   HERMES3_CMAKE_ARGS="..."      extra -D flags passed to CMake
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { materialise } from './vendor-llama.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const force = process.argv.includes('--force') || process.env.HERMES3_BUILD_FROM_SOURCE === '1';

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

if (!force) {
  const found = tryExisting();
  if (typeof found === 'string') {
    log(`using ${found.replace(root + '/', '')}`);
    process.exit(0);
  }
  log(`no usable prebuilt addon (${found.error.message.split('\n')[0]}); building from source`);
}

try {
  materialise();
} catch (err) {
  log(`could not materialise vendor/llama.cpp: ${err.message}`);
  process.exit(1);
}

const defines = [];
const flag = (name, env) => {
  if (process.env[env] === '1' || process.env[env] === 'ON') defines.push(`--CD${name}=ON`);
  if (process.env[env] === '0' || process.env[env] === 'OFF') defines.push(`--CD${name}=OFF`);
};
flag('HERMES3_CUDA', 'HERMES3_CUDA');
flag('HERMES3_METAL', 'HERMES3_METAL');
flag('HERMES3_NATIVE', 'HERMES3_NATIVE');
for (const arg of (process.env.HERMES3_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean)) {
  defines.push(arg.startsWith('-D') ? `--CD${arg.slice(2)}` : arg);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const parallel = String(Math.max(1, (await import('node:os')).availableParallelism()));
const started = Date.now();
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', '--parallel', parallel, ...defines], {
  cwd: root,
  stdio: 'inherit',
  // ccache keys on relative paths below the project, so clones in other folders share the cache
  env: { ...process.env, CCACHE_BASEDIR: root, CCACHE_NOHASHDIR: 'true' },
});
if (result.status !== 0) {
  log('the native build failed. It needs cmake (>= 3.19) and a C++17 compiler; clang is preferred on x64 (GCC 12 miscompiles AMX code).');
  log('On Debian/Ubuntu: apt-get install cmake clang-16 ccache');
  process.exit(result.status ?? 1);
}
log(`native build finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
