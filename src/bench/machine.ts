/** Which machine made a run: CPU model, cores, the CPU variant the addon uses, and how busy it was. */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { physicalCores } from '../engine/threads.js';

export interface Machine {
  cpu: string;
  physicalCores: number;
  logicalCores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  /** the CPU variant hermes3-native's addon runs (getBackendInfo) */
  cpuVariant?: string;
  /** the 1-minute load average when the run started and when it ended */
  loadAverage: { start: number; end?: number };
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown CPU';
}

export async function describeMachine(): Promise<Machine> {
  let cpuVariant: string | undefined;
  try {
    cpuVariant = (await import('../index.js')).getBackendInfo().cpu.variant;
  } catch {
    // no addon: the hermes3 peer will say why
  }
  return {
    cpuVariant,
    cpu: cpuModel(),
    physicalCores: physicalCores(),
    logicalCores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    loadAverage: { start: loadavg()[0] },
  };
}

export const currentLoad = (): number => loadavg()[0];
