#!/usr/bin/env node
// `npm run prebuild`: the portable prebuild in prebuilds/<platform>-<arch>/, made by prebuildify
// over the cmake-js build (scripts/prebuild-gyp.mjs). It builds in a folder of its own,
// build/prebuild/: prebuildify takes the addon and every shared library it finds in
// <its cwd>/build/Release, and the source build's build/Release must never hold the prebuild's
// libggml-*.so, which the source build's static tools (llama-bench) would load at start.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const prebuildify = require('prebuildify');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const cwd = join(root, 'build', 'prebuild');

rmSync(join(root, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true, force: true });
mkdirSync(cwd, { recursive: true });
prebuildify(
  { cwd, out: root, name: pkg.name, napi: true, strip: true, targets: [], nodeGyp: join(root, 'scripts', 'prebuild-gyp.mjs') },
  (err) => {
    if (err) {
      process.stderr.write(
        `prebuild failed: ${err.message ?? err}\n` +
          `The build's own messages above say why and what to do; it builds in ${join(cwd, 'build')}, through scripts/install.mjs, which configures that folder afresh when the compiler changed.\n`,
      );
      process.exit(1);
    }
  },
);
