// Writes the synthetic fixture models once per run (kept in .cache/ between runs, keyed by the
// writer's inputs through the file name and seed).
import { existsSync } from 'node:fs';
import { writeSyntheticModel } from '../src/testing/index.js';
import { FIXTURES } from './fixtures.js';

export default async function setup(): Promise<void> {
  if (!existsSync(FIXTURES.f16)) await writeSyntheticModel({ path: FIXTURES.f16, shape: 'tiny', seed: 7 });
  if (!existsSync(FIXTURES.q8)) await writeSyntheticModel({ path: FIXTURES.q8, shape: 'tiny', quant: 'Q8_0', seed: 7 });
  if (!existsSync(FIXTURES.q4km)) await writeSyntheticModel({ path: FIXTURES.q4km, shape: 'tiny', quant: 'Q4_K_M', seed: 7 });
}
