/**
 * The exact command that rebuilds the addon with other options (scripts/install.mjs's
 * environment variables). install.mjs passes every option on every configure, so the options
 * the current build was made with are repeated: rebuilding for AVX-512 must not drop CUDA.
 */
import type { MachineFacts } from './types.js';

// install.mjs's options and the CMake cache entries that record them
const OPTIONS = ['HERMES3_CUDA', 'HERMES3_METAL', 'HERMES3_VULKAN', 'HERMES3_NATIVE', 'HERMES3_BACKEND_DL', 'HERMES3_BUILD_BENCH'] as const;
export type BuildOption = (typeof OPTIONS)[number];

const on = (v: string | undefined) => v !== undefined && /^(1|on|true|yes)$/i.test(v);

/**
 * `HERMES3_CUDA=1 npm run build:native` in a checkout of the package (vendor/llama.cpp present),
 * `HERMES3_BUILD_FROM_SOURCE=1 HERMES3_CUDA=1 npm rebuild hermes3-native` in an app (without
 * HERMES3_BUILD_FROM_SOURCE, install.mjs keeps a prebuild that loads).
 */
export function rebuildCommand(facts: Pick<MachineFacts, 'sourceCheckout' | 'build' | 'platform'>, wanted: Partial<Record<BuildOption, boolean>>): string {
  const cache = facts.build?.cache ?? {};
  const settings: Partial<Record<BuildOption, boolean>> = {};
  for (const name of OPTIONS) {
    const current = cache[name];
    if (current === undefined) continue;
    // only what differs from install.mjs's defaults needs saying
    const fallback = name === 'HERMES3_NATIVE' || (name === 'HERMES3_METAL' && facts.platform === 'darwin');
    if (on(current) !== fallback) settings[name] = on(current);
  }
  Object.assign(settings, wanted);
  // run-time loaded backends need portable CPU code (install.mjs's rule)
  if (settings.HERMES3_NATIVE && settings.HERMES3_BACKEND_DL) delete settings.HERMES3_BACKEND_DL;
  const env = Object.entries(settings)
    .filter(([name, value]) => value !== (name === 'HERMES3_NATIVE' || (name === 'HERMES3_METAL' && facts.platform === 'darwin')) || name in wanted)
    .map(([name, value]) => `${name}=${value ? 1 : 0}`);
  return facts.sourceCheckout ? [...env, 'npm run build:native'].join(' ') : ['HERMES3_BUILD_FROM_SOURCE=1', ...env, 'npm rebuild hermes3-native'].join(' ');
}
