#!/usr/bin/env node
// prebuildify drives node-gyp; this stands in for it (PREBUILD_NODE_GYP) and runs the cmake-js
// build instead: portable (no host tuning), backends as run-time loaded libraries with every x64
// CPU variant, and without the test-only reference program. prebuildify takes
// build/Release/hermes3.node into prebuilds/<platform>-<arch>/; the shared libraries it needs
// (found through $ORIGIN) are copied there here.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
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
  env: { ...process.env, HERMES3_NATIVE: '0', HERMES3_BUILD_REFERENCE: '0', HERMES3_BACKEND_DL: process.env.HERMES3_BACKEND_DL ?? '1' },
});
if (result.status !== 0) process.exit(result.status ?? 1);

const release = join(root, 'build', 'Release');
const target = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
// the libraries under the names the loader asks for: SONAMEs (libllama.so.0) and backend modules
const wanted = /^lib[\w-]+\.(so\.\d+|dylib|dll)$|^libggml-(?!base)[\w-]+\.so$|^[\w-]+\.dll$/;
for (const name of readdirSync(release)) {
  if (wanted.test(name)) copyFileSync(join(release, name), join(target, name));
}
