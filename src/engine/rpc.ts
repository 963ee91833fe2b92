/**
 * llama.cpp's RPC backend: rpc-servers on other hosts (or other processes) whose devices a model
 * uses like local GPUs. Each endpoint is checked with a TCP connection first, so a host that is
 * down or refuses gives an RpcError naming it before anything is sent (ggml-rpc itself would
 * end the process).
 */
import { connect } from 'node:net';
import { RpcError, fromNative } from '../errors.js';
import { getAddon } from '../native/index.js';
import type { DeviceInfo } from './backends.js';

const ENDPOINT = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/;

/** host and port of `host:port` (IPv6 in brackets). */
export function parseEndpoint(endpoint: string): { host: string; port: number } {
  const m = ENDPOINT.exec(endpoint);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new RpcError(`Invalid rpc-server ${JSON.stringify(endpoint)}: expected HOST:PORT, e.g. 10.0.0.2:50052`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** Opens and closes a TCP connection to each endpoint; an RpcError names the first that fails. */
export async function checkRpcServers(endpoints: readonly string[], timeoutMs = 3000): Promise<void> {
  await Promise.all(
    endpoints.map(
      (endpoint) =>
        new Promise<void>((resolve, reject) => {
          const { host, port } = parseEndpoint(endpoint);
          const socket = connect({ host, port });
          const fail = (why: string) => {
            socket.destroy();
            reject(new RpcError(`the rpc-server at ${endpoint} ${why}: start it there (hermes3 rpc-server --host HOST --port ${port}), or check the address and the network (an SSH tunnel or WireGuard for remote hosts)`));
          };
          socket.setTimeout(timeoutMs, () => fail(`did not answer within ${timeoutMs} ms`));
          socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ECONNREFUSED' ? 'refused the connection' : `cannot be reached (${err.code ?? err.message})`));
          socket.once('connect', () => {
            socket.end();
            resolve();
          });
        }),
    ),
  );
}

/** The devices of the rpc-servers, as devices of type 'gpu' whose backend is RPC, in the order given. */
export async function rpcDevices(endpoints: readonly string[]): Promise<DeviceInfo[]> {
  await checkRpcServers(endpoints);
  const out: DeviceInfo[] = [];
  for (const endpoint of endpoints) {
    try {
      const devices = await getAddon().rpcDevices(endpoint);
      for (const d of devices) out.push({ name: d.name, description: `${d.description} (rpc-server ${endpoint})`, type: 'gpu', backend: 'RPC', freeBytes: d.freeBytes, totalBytes: d.totalBytes });
    } catch (err) {
      throw fromNative(err, `the rpc-server at ${endpoint}`);
    }
  }
  return out;
}

export interface RpcServerOptions {
  host: string;
  port: number;
  /** folder for ggml-rpc's tensor cache: weights a client sent before are not sent again */
  cacheDir?: string;
  threads: number;
  /** the device to serve (default: the first GPU, else the CPU) */
  device?: string;
  /** the most memory offered to clients, in bytes (default: what the device has) */
  memoryBytes?: number;
}

/** Serves this process's device to rpc clients, in a native thread, until the process ends. */
export function startRpcServer(o: RpcServerOptions): void {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  try {
    getAddon().rpcStartServer(`${host}:${o.port}`, o.cacheDir ?? null, o.threads, o.device ?? null, o.memoryBytes ?? 0);
  } catch (err) {
    throw fromNative(err, 'cannot start the rpc-server');
  }
}
