import { loadModel } from '../engine/model.js';
import { OptionsError } from '../errors.js';
import { createServer } from '../server/index.js';
import { intArg, parse } from './args.js';

export const serveUsage = `hermes3 serve --model FILE [options]

Serves the model over HTTP: OpenAI's API under /v1, Ollama's under /api, a chat page at /.

  --model FILE         GGUF model file (required)
  --host HOST          address to bind (default 127.0.0.1; 0.0.0.0 or :: exposes the
                       server to the network: set --api-key then)
  --port N             port (default 8080; 0 takes a free port)
  --parallel N         requests generating at once, sharing decode steps (default 4)
  --ctx N              context length of each request slot (default 4096)
  --max-queue N        requests waiting beyond --parallel; more get 503 (default 64)
  --max-tokens N       most tokens one reply may have (default 4096)
  --api-key KEY        require Authorization: Bearer KEY (also read from HERMES3_API_KEY)
  --cors ORIGIN        allow browser calls from ORIGIN (repeatable; * for any)
  --body-limit BYTES   largest request body (default 4194304)
  --name NAME          the model's name in the APIs (default: the file name without .gguf)
  --threads N          CPU threads (default: physical cores)
  --gpu-layers N|max|auto  layers to offload to the GPU (default auto)
  --grace-ms N         on SIGTERM/SIGINT, how long running requests may finish (default 10000)
  --no-web             do not serve the chat page
  --quiet              no request log

Prints "listening on http://HOST:PORT" once it accepts connections.`;

export async function serveCommand(argv: string[], out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const { values } = parse(argv, {
    model: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    parallel: { type: 'string' },
    ctx: { type: 'string' },
    'max-queue': { type: 'string' },
    'max-tokens': { type: 'string' },
    'api-key': { type: 'string' },
    cors: { type: 'string', multiple: true },
    'body-limit': { type: 'string' },
    name: { type: 'string' },
    threads: { type: 'string' },
    'gpu-layers': { type: 'string' },
    'grace-ms': { type: 'string' },
    'no-web': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  } as const);
  if (typeof values.model !== 'string') throw new OptionsError('hermes3 serve needs --model FILE (a GGUF model)');
  const port = intArg(values.port as string, 'port', 0)!;
  if (port > 65535) throw new OptionsError(`Invalid --port: expected 0 to 65535, received '${values.port}'`);
  const gpu = values['gpu-layers'] as string | undefined;
  const nGpuLayers = gpu === undefined || gpu === 'max' || gpu === 'auto' ? (gpu ?? 'auto') : intArg(gpu, 'gpu-layers', 0)!;
  const apiKey = (values['api-key'] as string | undefined) ?? (process.env.HERMES3_API_KEY || undefined);
  const host = values.host as string;
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  if (!apiKey && !/^(127\.|::1$|localhost$|\[::1\]$)/.test(host)) log(`warning: listening on ${host} without --api-key: anyone who can reach it can use the model`);

  const model = await loadModel({ modelPath: values.model, nGpuLayers, signal });
  let server;
  try {
    const cors = values.cors as string[] | undefined;
    server = await createServer({
      model,
      ownsModel: true,
      parallel: intArg(values.parallel as string | undefined, 'parallel', 1),
      ctx: intArg(values.ctx as string | undefined, 'ctx', 64),
      maxQueue: intArg(values['max-queue'] as string | undefined, 'max-queue', 0),
      maxTokens: intArg(values['max-tokens'] as string | undefined, 'max-tokens', 1),
      bodyLimit: intArg(values['body-limit'] as string | undefined, 'body-limit', 1024),
      graceMs: intArg(values['grace-ms'] as string | undefined, 'grace-ms', 0),
      threads: intArg(values.threads as string | undefined, 'threads', 1),
      modelName: values.name as string | undefined,
      apiKey,
      cors: cors === undefined ? undefined : cors.includes('*') ? '*' : cors,
      webPage: !values['no-web'],
      log: values.quiet ? undefined : log,
    });
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
