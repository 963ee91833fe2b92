import { connect, createServer } from 'node:net';
import type { Command } from 'commander';
import { physicalCores } from '../engine/threads.js';
import { startRpcServer } from '../engine/rpc.js';
import { OptionsError, RpcError } from '../errors.js';
import { intArg, type CliIO, type Values } from './args.js';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function register(program: Command, io: CliIO): void {
  program
    .command('rpc-server')
    .summary("serve this machine's CPU or GPU to other hosts over llama.cpp's RPC protocol")
    .description(
      "Runs llama.cpp's rpc-server (ggml-rpc) in this process: a model loaded elsewhere with\nrpcServers: ['HOST:PORT'] (or --rpc) places layers on this machine's device and computes them here.\n\nggml-rpc has NO authentication and NO encryption: anyone who can connect can use the device\nand send it data. It binds 127.0.0.1 unless told otherwise, and refuses any other address without\n--allow-remote. Expose it only on a trusted network: an SSH tunnel or a WireGuard link between the\nhosts (see the README).",
    )
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <n>', 'port (0 takes a free port)', '50052')
    .option('--mem <MiB>', 'the most memory to offer clients, in MiB (default: what the device has)')
    .option('--device <name>', 'the device to serve (default: the first GPU, else the CPU; hermes3 doctor lists them)')
    .option('--cache <dir>', "a folder for ggml-rpc's tensor cache: weights a client sent before are not sent again")
    .option('--threads <n>', 'CPU threads when serving the CPU (default: physical cores)')
    .option('--allow-remote', 'bind an address other than loopback (only on a trusted network)')
    .addHelpText('after', '\nExamples:\n  hermes3 rpc-server --port 50052\n  hermes3 rpc-server --port 50053 --mem 4096 --device CUDA0\n  ssh -N -L 50052:127.0.0.1:50052 gpu-host    # on the main host: reach gpu-host\'s server through SSH')
    .action((values: Values) => rpcServerCommand(values, io.out, io.signal));
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function rpcServerCommand(values: Values, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const host = values.host as string;
  if (!LOOPBACK.test(host) && values.allowRemote !== true) {
    throw new OptionsError(`refusing to bind ${host}: ggml-rpc has no authentication, so anyone who reaches it can use this machine. Bind 127.0.0.1 and use an SSH tunnel or WireGuard, or pass --allow-remote on a trusted network`);
  }
  let port = intArg(values.port, 'port', 0)!;
  if (port > 65535) throw new OptionsError(`Invalid --port: expected 0 to 65535, received '${String(values.port)}'`);
  if (port === 0) port = await freePort(host);
  else if (await accepts(host, port)) throw new OptionsError(`port ${port} on ${host} is in use: choose another --port (0 takes a free one)`);
  startRpcServer({ host, port, cacheDir: values.cache as string | undefined, threads: intArg(values.threads, 'threads', 1) ?? physicalCores(), device: values.device as string | undefined, memoryBytes: (intArg(values.mem, 'mem', 1) ?? 0) * 1024 * 1024 });
  // the native server binds in its thread: say so once it accepts connections
  let up = false;
  for (let i = 0; i < 200 && !up; i++) {
    up = await accepts(host, port);
    if (!up) await new Promise((r) => setTimeout(r, 25));
  }
  if (!up) throw new RpcError(`the rpc-server did not start accepting connections on ${host}:${port} within 5 s (see the messages above)`);
  out.write(`listening on ${host.includes(':') ? `[${host}]` : host}:${port}\n`);
  // the server runs in a native thread, which does not keep Node's event loop alive
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
    process.once('SIGTERM', () => resolve());
  });
  clearInterval(keepAlive);
  // the server thread serves until the process ends
  process.exit(0);
}
