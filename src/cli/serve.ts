import type { Command } from 'commander';
import { OptionsError } from '../errors.js';
import { POOLING_IDS, type Pooling } from '../engine/embedding-options.js';
import { createServer } from '../server/index.js';
import { DEFAULT_MODEL_REF } from '../models/pull.js';
import { configToServeOptions, loadServeConfig } from '../server/config.js';
import { gpuLayersArg, intArg, loadWithProgress, loraArgs, loraOption, resolveModelSpec, type CliIO, type Values } from './args.js';

export function register(program: Command, io: CliIO): void {
  const cmd = program
    .command('serve')
    .summary("serve a model over HTTP: OpenAI's and Ollama's APIs and a chat page")
    .description("Serves the model over HTTP: OpenAI's API under /v1, Ollama's under /api, a chat page at /.\nPrints \"listening on http://HOST:PORT\" once it accepts connections; SIGTERM or SIGINT stops it\ngracefully.")
    .option('--model <file|ref>', `GGUF model file, or a reference (hf:OWNER/REPO:QUANT, a URL) from the cache or pulled (default ${DEFAULT_MODEL_REF})`)
    .option('-y, --yes', 'download the model without asking when it is not in the cache')
    .option('--config <file>', 'a JSON config file (docs/service.md); flags given beside it win')
    .option('--host <host>', 'address to bind (default 127.0.0.1; 0.0.0.0 or :: exposes the server to the network: set --api-key then)')
    .option('--port <n>', 'port (default 8080; 0 takes a free port)')
    .option('--parallel <n>', 'requests generating at once, sharing decode steps (default 4)')
    .option('--ctx <n>', 'context length of each request slot (default 4096)')
    .option('--max-queue <n>', 'requests waiting beyond --parallel; more get 503 (default 64)')
    .option('--max-tokens <n>', 'most tokens one reply may have (default 4096)')
    .option('--api-key <key>', 'require Authorization: Bearer KEY (also read from HERMES3_API_KEY)')
    .option('--cors <origin>', 'allow browser calls from ORIGIN (repeatable; * for any)', (v: string, all: string[] = []) => [...all, v])
    .option('--body-limit <bytes>', 'largest request body (default 4194304)')
    .option('--name <name>', "the model's name in the APIs (default: the file name without .gguf)")
    .option('--threads <n>', 'CPU threads (default: physical cores)')
    .option('--gpu-layers <n|max|auto>', 'layers to offload to the GPU (default auto)')
    .option('--grace-ms <n>', 'on SIGTERM/SIGINT, how long running requests may finish (default 10000)')
    .option('--no-web', 'do not serve the chat page')
    .option('--embedding-ctx <n>', 'longest input of /v1/embeddings and /api/embed in tokens (default 2048)')
    .option('--pooling <type>', 'how embeddings pool token vectors: mean, cls, last or none (default: the model\'s, else mean)')
    .option('--no-embeddings', 'do not serve /v1/embeddings and /api/embed')
    .option('--quiet', 'no request log');
  loraOption(cmd)
    .addHelpText('after', '\nExamples:\n  hermes3 serve --model Hermes-3-Llama-3.1-8B.Q4_K_M.gguf\n  hermes3 serve --config /etc/hermes3/hermes3.json --port 9090\n  HERMES3_API_KEY=secret hermes3 serve --model model.gguf --host 0.0.0.0 --parallel 8 --ctx 8192')
    .action((values: Values) => serveCommand(values, io.out, io.signal));
}

/** createServer's options from the flags that were given (undefined where a flag is absent). */
function flagOptions(values: Values) {
  const cors = values.cors as string[] | undefined;
  const flags = {
    parallel: intArg(values.parallel, 'parallel', 1),
    ctx: intArg(values.ctx, 'ctx', 64),
    maxQueue: intArg(values.maxQueue, 'max-queue', 0),
    maxTokens: intArg(values.maxTokens, 'max-tokens', 1),
    bodyLimit: intArg(values.bodyLimit, 'body-limit', 1024),
    graceMs: intArg(values.graceMs, 'grace-ms', 0),
    threads: intArg(values.threads, 'threads', 1),
    modelName: values.name as string | undefined,
    apiKey: values.apiKey as string | undefined,
    cors: cors === undefined ? undefined : cors.includes('*') ? '*' : cors,
  };
  const picked = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as Partial<typeof flags> & { embeddings?: false | { ctx?: number; pooling?: Pooling } };
  if (values.embeddings === false) picked.embeddings = false;
  else if (values.embeddingCtx !== undefined || values.pooling !== undefined) {
    const pooling = values.pooling as string | undefined;
    if (pooling !== undefined && !Object.hasOwn(POOLING_IDS, pooling)) throw new OptionsError(`Invalid --pooling: expected mean, cls, last or none, received '${pooling}'`);
    picked.embeddings = { ctx: intArg(values.embeddingCtx, 'embedding-ctx', 16), pooling: pooling as Pooling | undefined };
  }
  return picked;
}

export async function serveCommand(values: Values, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const config = typeof values.config === 'string' ? configToServeOptions(await loadServeConfig(values.config)) : undefined;
  const modelSpec = (values.model as string | undefined) ?? config?.modelSpec;
  const port = intArg(values.port, 'port', 0) ?? config?.listen.port ?? 8080;
  if (port > 65535) throw new OptionsError(`Invalid --port: expected 0 to 65535, received '${String(values.port)}'`);
  const nGpuLayers = values.gpuLayers !== undefined ? gpuLayersArg(values.gpuLayers) : (config?.gpuLayers ?? 'auto');
  const lora = loraArgs(values.lora) ?? config?.lora;
  const options = { ...config?.server, ...flagOptions(values) };
  const apiKey = options.apiKey ?? (process.env.HERMES3_API_KEY || undefined);
  const host = (values.host as string | undefined) ?? config?.listen.host ?? '127.0.0.1';
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  if (!apiKey && !/^(127\.|::1$|localhost$|\[::1\]$)/.test(host)) log(`warning: listening on ${host} without --api-key: anyone who can reach it can use the model`);

  const modelPath = await resolveModelSpec(modelSpec, values, signal);
  // the adapters apply to every context of the model: the server's too
  const model = await loadWithProgress(modelPath, nGpuLayers, signal, values.quiet === true, lora);
  let server;
  try {
    server = await createServer({ ...options, model, ownsModel: true, apiKey, webPage: values.web !== false, log: values.quiet ? undefined : log });
  } catch (err) {
    await model.dispose();
    throw err;
  }
  const url = await server.listen({ host, port }).catch(async (err: NodeJS.ErrnoException) => {
    await server.close();
    if (err.code === 'EADDRINUSE') throw new OptionsError(`port ${port} on ${host} is in use: choose another --port (0 takes a free one)`);
    if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') throw new OptionsError(`cannot bind ${host}: not an address of this machine`);
    throw err;
  });
  out.write(`listening on ${url}\n`);

  // SIGINT reaches us through `signal` (the CLI's handler); SIGTERM the same way
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', stop, { once: true });
    process.once('SIGTERM', stop);
  });
  log('shutting down: finishing running requests');
  await server.close();
  log('stopped');
}
