#!/usr/bin/env node
// Materialises vendor/llama.cpp/ from the pinned artifact in vendor/llama.cpp.pin.json.
// The llama.cpp source travels inside a registry package as a git bundle; this script fetches
// that tarball with npm, verifies its integrity hash and the bundle's commit, then keeps only
// the parts the build, the tests and the published package need. It does nothing when the
// tree is already at the pinned commit.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pin = JSON.parse(readFileSync(join(root, 'vendor', 'llama.cpp.pin.json'), 'utf8'));
const target = join(root, 'vendor', 'llama.cpp');
const marker = join(target, '.pinned-commit');

// Model files kept from models/: the Llama 3 vocabulary with its tokenizer test vectors, and
// the chat templates.
const KEEP_MODELS = [/^ggml-vocab-llama-bpe\.gguf(\.inp|\.out)?$/, /^templates$/];

function log(msg) {
  process.stderr.write(`[hermes3-native] ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts }).trim();
}

function sri(file) {
  return 'sha512-' + createHash('sha512').update(readFileSync(file)).digest('base64');
}

function fetchTarball(work) {
  const local = process.env.HERMES3_LLAMA_TARBALL;
  if (local) {
    log(`using ${local} (HERMES3_LLAMA_TARBALL)`);
    return local;
  }
  const spec = `${pin.package}@${pin.version}`;
  log(`fetching ${spec} from the npm registry`);
  const out = run('npm', ['pack', spec, '--json', '--pack-destination', work], { cwd: work });
  const [info] = JSON.parse(out);
  return join(work, info.filename);
}

export function materialise() {
  // the marker records the commit, what was kept and the patches, so a changed pin re-materialises
  const patches = (pin.patches ?? []).map((p) => join(root, 'vendor', p));
  const stamp = `${pin.commit} ${createHash('sha256')
    .update(JSON.stringify([pin.prune, pin.keep ?? []]))
    .update(patches.map((p) => readFileSync(p, 'utf8')).join('\n'))
    .digest('hex')
    .slice(0, 12)}`;
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === stamp) return false;
  const work = mkdtempSync(join(tmpdir(), 'hermes3-vendor-'));
  try {
    const tarball = fetchTarball(work);
    const integrity = sri(tarball);
    if (integrity !== pin.integrity) {
      throw new Error(`integrity mismatch for ${tarball}: expected ${pin.integrity}, got ${integrity}`);
    }
    run('tar', ['-xzf', tarball, '-C', work, pin.bundlePath]);
    const bundle = join(work, pin.bundlePath);
    const checkout = join(work, 'llama.cpp');
    run('git', ['clone', '--quiet', '--no-checkout', bundle, checkout]);
    run('git', ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', pin.commit], { cwd: checkout });
    const head = run('git', ['rev-parse', 'HEAD'], { cwd: checkout });
    if (head !== pin.commit) throw new Error(`bundle HEAD is ${head}, expected ${pin.commit}`);
    // our patches: where llama.cpp would end the host process, it reports an error instead
    for (const patch of patches) run('git', ['apply', '--whitespace=nowarn', patch], { cwd: checkout });
    rmSync(join(checkout, '.git'), { recursive: true, force: true });
    for (const dir of pin.prune) rmSync(join(checkout, dir), { recursive: true, force: true });
    // tools/: only what the pin keeps
    const keep = new Set(pin.keep ?? []);
    for (const name of readdirSync(join(checkout, 'tools'))) {
      if (!keep.has(`tools/${name}`)) rmSync(join(checkout, 'tools', name), { recursive: true, force: true });
    }
    const models = join(checkout, 'models');
    for (const name of readdirSync(models)) {
      if (!KEEP_MODELS.some((re) => re.test(name))) rmSync(join(models, name), { recursive: true, force: true });
    }
    writeFileSync(join(checkout, '.pinned-commit'), stamp + '\n');
    rmSync(target, { recursive: true, force: true });
    renameSync(checkout, target);
    log(`vendor/llama.cpp is at ${pin.commit}`);
    return true;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    materialise();
  } catch (err) {
    log(`could not materialise vendor/llama.cpp: ${err.message}`);
    log('the npm registry must be reachable, or set HERMES3_LLAMA_TARBALL to a local copy of the tarball');
    process.exit(1);
  }
}
