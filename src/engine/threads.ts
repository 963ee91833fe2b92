import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

let cached: number | undefined;

/**
 * Physical cores: llama.cpp's token loop is memory-bound and slows down with more threads than
 * cores (its own default of 4 ran 30x slower on a 2-core machine).
 */
export function physicalCores(): number {
  if (cached !== undefined) return cached;
  const logical = availableParallelism();
  cached = logical;
  if (process.platform === 'linux') {
    try {
      const cores = new Set<string>();
      let physical = '0';
      for (const line of readFileSync('/proc/cpuinfo', 'utf8').split('\n')) {
        const [k, v] = line.split(':').map((s) => s?.trim());
        if (k === 'physical id') physical = v;
        else if (k === 'core id') cores.add(`${physical}:${v}`);
      }
      if (cores.size > 0) cached = Math.min(cores.size, logical);
    } catch {
      // keep the logical count
    }
  }
  return cached;
}
