/**
 * llama.cpp's RPC backend on loopback, as several hosts: two `hermes3 rpc-server` processes on
 * 127.0.0.1 take the layers of a synthetic model. F16 weights: the local CPU does not repack
 * them either, so local and remote run the same ggml CPU code and greedy tokens must be equal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcError, getBackendInfo, loadModel, planMemory, type Model } from '../../src/index.js';
import { FIXTURES, cliPath, runNode } from '../fixtures.js';

interface RpcServer {
  child: ChildProcess;
  endpoint: string;
}

function rpcServer(port = 0, extra: string[] = []): Promise<RpcServer> {
  const child = spawn(process.execPath, [cliPath, 'rpc-server', '--port', String(port), '--threads', '1', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`rpc-server did not start: ${out}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      // llama.cpp's own lines share stdout (C stdio, buffered): the line may follow them directly
      const m = /listening on (\S+:\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, endpoint: m[1] });
      }
    });
    child.once('exit', (code) => reject(new Error(`rpc-server exited with ${code}: ${out}`)));
  });
}

async function greedy(model: Model, tokens = 24): Promise<number[]> {
  const ctx = await model.createContext({ nCtx: 512 });
  const out: number[] = [];
  try {
    for await (const c of ctx.sequence().generate('Hello there, how are', { temperature: 0, maxTokens: tokens })) out.push(...c.tokens);
  } finally {
    await ctx.dispose();
  }
  return out;
}

const exited = (child: ChildProcess) => new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));

describe('RPC on loopback', () => {
  let a: RpcServer;
  let b: RpcServer;
  beforeAll(async () => {
    [a, b] = await Promise.all([rpcServer(), rpcServer()]);
  });
  afterAll(async () => {
    for (const s of [a, b]) s?.child.kill('SIGKILL');
  });

  it('lists the servers as devices, places the layers on them, and generates what a local run does', async () => {
    const info = await getBackendInfo({ rpcServers: [a.endpoint, b.endpoint] });
    const rpc = info.devices.filter((d) => d.backend === 'RPC');
    expect(rpc).toHaveLength(2);
    expect(rpc[0].description).toContain(a.endpoint);
    expect(rpc[1].description).toContain(b.endpoint);
    for (const d of rpc) expect(d.totalBytes).toBeGreaterThan(0);
    expect(info.devices.some((d) => d.type === 'cpu')).toBe(true);

    const local = await loadModel({ modelPath: FIXTURES.f16, nGpuLayers: 0 });
    const expected = await greedy(local);
    await local.dispose();
    // nGpuLayers 'auto' (the default): fitted with the servers' free memory, read over RPC
    const remote = await loadModel({ modelPath: FIXTURES.f16, rpcServers: [a.endpoint, b.endpoint] });
    try {
      // 2 blocks and the output layer, spread over the two servers
      expect(remote.nGpuLayers).toBe(remote.info.nLayer + 1);
      expect(await greedy(remote)).toEqual(expected);
    } finally {
      await remote.dispose();
    }
  });

  it("puts the layers on the servers where the plan says, by llama.cpp's own allocations", async () => {
    const lines: string[] = [];
    const model = await loadModel({ modelPath: FIXTURES.f16, rpcServers: [a.endpoint, b.endpoint], logger: (_l, m) => lines.push(m), logLevel: 'info' });
    const ctx = await model.createContext({ nCtx: 2048 });
    try {
      const log = lines.join('');
      // e.g. "load_tensors: RPC0[127.0.0.1:41525] model buffer size =    62.63 MiB"
      const allocated = (kind: string, where: string) => {
        const m = new RegExp(`\\s${where.replace(/[[\]().]/g, '\\$&')}\\s+${kind} buffer size =\\s*([\\d.]+) MiB`).exec(log);
        return m ? Number(m[1]) : 0;
      };
      const plan = await planMemory({ modelPath: FIXTURES.f16, nCtx: 2048, nGpuLayers: model.nGpuLayers, tensorSplit: model.tensorSplit ? [...model.tensorSplit] : undefined, gpu: true });
      const gpus = plan.devices.filter((d) => d.device === 'GPU');
      expect(gpus).toHaveLength(2);
      const MiB = 1024 * 1024;
      // the servers together hold what the plan puts on its two GPUs (which server takes a layer at
      // the split's boundary depends on their free memory, read at load time)
      const sum = (f: (d: (typeof gpus)[number]) => number) => gpus.reduce((n, d) => n + f(d), 0) / MiB;
      const real = (kind: string) => allocated(kind, `RPC0[${a.endpoint}]`) + allocated(kind, `RPC0[${b.endpoint}]`);
      expect(real('model')).toBeGreaterThan(60);
      expect(Math.abs(sum((d) => d.weightsBytes) - real('model')), 'weights on the servers').toBeLessThan(0.04);
      expect(Math.abs(sum((d) => d.kvCacheBytes) - real('KV')), 'KV cache on the servers').toBeLessThan(0.02);
      const cpu = plan.devices.find((d) => d.device === 'CPU')!;
      expect(Math.abs(cpu.weightsBytes / MiB - allocated('model', 'CPU_Mapped')), 'weights on the CPU').toBeLessThan(0.02);
    } finally {
      await model.dispose();
    }
  });

  it('names a server that is down before loading anything', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const err = await loadModel({ modelPath: FIXTURES.f16, rpcServers: [a.endpoint, `127.0.0.1:${port}`], nGpuLayers: 'max' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as Error).message).toContain(`the rpc-server at 127.0.0.1:${port} refused the connection`);
    await expect(loadModel({ modelPath: FIXTURES.f16, rpcServers: ['no-port'] })).rejects.toThrow(/expected HOST:PORT/);
  });

  it('survives a server killed mid-generation: a typed error, later requests fail cleanly, a new load works once it is back', async () => {
    const model = await loadModel({ modelPath: FIXTURES.f16, rpcServers: [a.endpoint, b.endpoint], nGpuLayers: 'max' });
    const ctx = await model.createContext({ nCtx: 2048 });
    const seq = ctx.sequence();
    let generated = 0;
    const err = await (async () => {
      for await (const c of seq.generate('Hello', { temperature: 0, maxTokens: 1500 })) {
        generated += c.tokens.length;
        if (generated >= 16 && b.child.exitCode === null && !b.child.killed) {
          b.child.kill('SIGKILL');
          await exited(b.child);
        }
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as Error).message).toMatch(/Remote RPC server crashed.*load it again once the rpc-server is back/);
    expect(generated).toBeLessThan(1500);
    await expect(seq.generate('Again', { maxTokens: 4 }).next()).rejects.toBeInstanceOf(RpcError);
    await model.dispose();

    // the server back on its port: a new model loads and generates
    b = await rpcServer(Number(b.endpoint.split(':')[1]));
    const again = await loadModel({ modelPath: FIXTURES.f16, rpcServers: [a.endpoint, b.endpoint], nGpuLayers: 'max' });
    try {
      expect((await greedy(again, 8)).length).toBe(8);
    } finally {
      await again.dispose();
    }
  });

  it('offers at most --mem MiB, less what clients hold', async () => {
    const small = await rpcServer(0, ['--mem', '1024']);
    try {
      const [dev] = (await getBackendInfo({ rpcServers: [small.endpoint] })).devices;
      expect(dev.backend).toBe('RPC');
      expect(dev.totalBytes).toBe(1024 * 1024 * 1024);
      expect(dev.freeBytes).toBe(1024 * 1024 * 1024);
      const model = await loadModel({ modelPath: FIXTURES.f16, rpcServers: [small.endpoint], nGpuLayers: 'max' });
      const [after] = (await getBackendInfo({ rpcServers: [small.endpoint] })).devices;
      expect(after.freeBytes).toBeLessThan(1024 * 1024 * 1024);
      await model.dispose();
    } finally {
      small.child.kill('SIGKILL');
    }
  });

  it('refuses to bind a non-loopback address without --allow-remote', async () => {
    const r = await runNode([cliPath, 'rpc-server', '--host', '0.0.0.0', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ggml-rpc has no authentication');
    const help = await runNode([cliPath, 'rpc-server', '--help']);
    expect(help.stdout).toContain('NO authentication');
  });
});
