#!/usr/bin/env node
// prebuildify drives node-gyp; this stands in for it (scripts/prebuild.mjs passes it as nodeGyp)
// and runs the cmake-js build instead: portable (no host tuning), backends as run-time loaded
// libraries with every x64 CPU variant, and without the test-only reference program. It builds
// in <prebuildify's cwd>/build (build/prebuild/build), apart from the source build in build/.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv[2] !== 'rebuild') {
  process.stderr.write(`prebuild-gyp: only 'rebuild' is supported (got: ${process.argv.slice(2).join(' ')})\n`);
  process.exit(2);
}
const result = spawnSync(process.execPath, [join(root, 'scripts', 'install.mjs'), '--force'], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    HERMES3_BUILD_DIR: join(process.cwd(), 'build'),
    HERMES3_NATIVE: '0',
    HERMES3_BUILD_REFERENCE: '0',
    HERMES3_BUILD_BENCH: '0',
    HERMES3_BACKEND_DL: process.env.HERMES3_BACKEND_DL ?? '1',
  },
});
if (result.status !== 0) process.exit(result.status ?? 1);

// prebuildify then copies build/Release/hermes3.node (under its cwd) and every shared library beside it (the
// SONAMEs the addon links, libggml-cpu-*.so variants the loader picks from, and unversioned
// names that backend libraries built elsewhere link against) into prebuilds/<platform>-<arch>/,
// which `npm run prebuild` empties first.
