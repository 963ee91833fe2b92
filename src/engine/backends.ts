/** What this build and machine offer: backends, devices and their memory, CPU features. */
import { freemem, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { getAddon } from '../native/index.js';

export interface DeviceInfo {
  name: string;
  description: string;
  type: 'cpu' | 'gpu' | 'igpu' | 'accel' | 'unknown';
  backend: string;
  freeBytes: number;
  totalBytes: number;
}

export interface BackendInfo {
  backends: Array<{ name: string; features: Record<string, string> }>;
  devices: DeviceInfo[];
  /** the CPU code in use: the features it was compiled for */
  cpu: { features: string[] };
}

/** Memory the system can give without swapping (MemAvailable on Linux). */
export function availableRam(): number {
  if (process.platform === 'linux') {
    try {
      const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
      if (m) return Number(m[1]) * 1024;
    } catch {
      // fall back below
    }
  }
  return freemem();
}

/** Backends, devices with their free and total memory, and the CPU features compiled in. */
export function getBackendInfo(): BackendInfo {
  const raw = getAddon().backendInfo();
  const devices = raw.devices.map((d) =>
    // ggml reports all of RAM as free for the CPU; what matters is what the system can spare
    d.type === 'cpu' ? { ...d, freeBytes: availableRam(), totalBytes: totalmem() } : d,
  ) as DeviceInfo[];
  const cpu = raw.backends.find((b) => b.name === 'CPU');
  const features = Object.entries(cpu?.features ?? {})
    .filter(([, v]) => v === '1')
    .map(([k]) => k);
  return { backends: raw.backends, devices, cpu: { features } };
}
