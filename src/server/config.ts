/**
 * The config file of `hermes3 serve --config FILE`: one JSON object naming the model and the
 * server's settings, the part an Ollama Modelfile and its service settings play. Limits come
 * from the server's and the sampler's own schemas, so a value the file accepts is one
 * createServer() accepts. The API key never sits in the file: `apiKeyEnv` names the environment
 * variable that holds it.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { samplingSchema } from '../engine/options.js';
import { int, parseOptions } from '../engine/validate.js';
import { OptionsError } from '../errors.js';
import { serverSchema, type ServerOptions } from './options.js';

const server = serverSchema.shape;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `hf:owner/repo:QUANT` and other `scheme:` references; two letters at least, so `C:\...` stays a path */
const REFERENCE = /^[a-z][a-z0-9+.-]+:/i;

export const samplingDefaultsSchema = z
  .strictObject(
    {
      temperature: samplingSchema.temperature.unwrap().optional().describe('0 picks the most likely token (greedy)'),
      topP: samplingSchema.topP.unwrap().optional(),
      topK: samplingSchema.topK.unwrap().optional(),
      minP: samplingSchema.minP.unwrap().optional(),
      repeatPenalty: samplingSchema.repeatPenalty.unwrap().optional(),
      presencePenalty: samplingSchema.presencePenalty.unwrap().optional(),
      frequencyPenalty: samplingSchema.frequencyPenalty.unwrap().optional(),
      seed: samplingSchema.seed.describe('a fixed seed makes sampled replies repeatable'),
    },
    { error: 'expected an object of sampling options' },
  )
  .describe('sampling defaults, applied when a request does not set them');

export const serveConfigSchema = z
  .strictObject(
    {
      $schema: z.string({ error: 'expected the URL or path of the JSON Schema' }).optional().describe('the JSON Schema of this file, for editors'),
      model: z
        .string({ error: 'expected the path of a GGUF file or a reference like hf:owner/repo:QUANT' })
        .min(1, { error: 'expected the path of a GGUF file or a reference like hf:owner/repo:QUANT' })
        .describe('a GGUF file (a relative path is relative to this file) or a reference like hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M'),
      host: z.string({ error: 'expected an address or host name' }).min(1, { error: 'expected an address or host name' }).optional().describe('address to bind (default 127.0.0.1)'),
      port: int(0, 65535).optional().describe('port (default 8080; 0 takes a free port)'),
      ctx: server.ctx.unwrap().optional().describe('context length of each request slot in tokens (default 4096)'),
      gpuLayers: z
        .union([int(0, 100_000), z.literal('max'), z.literal('auto')], { error: "expected an integer >= 0, 'max' or 'auto'" })
        .optional()
        .describe("layers to offload to the GPU: a number, 'max' or 'auto' (default: as many as fit)"),
      parallel: server.parallel.unwrap().optional().describe('requests generating at once (default 4)'),
      threads: server.threads.describe('CPU threads (default: physical cores)'),
      maxQueue: server.maxQueue.unwrap().optional().describe('requests waiting beyond parallel; more get 503 (default 64)'),
      maxTokens: server.maxTokens.unwrap().optional().describe('most tokens one reply may have (default 4096)'),
      bodyLimit: server.bodyLimit.unwrap().optional().describe('largest request body in bytes (default 4194304)'),
      cors: server.cors.describe("origins allowed to call from a browser; '*' allows all (default: none)"),
      name: server.modelName.describe("the model's name in the APIs (default: the file name without .gguf)"),
      apiKeyEnv: z
        .string({ error: 'expected the name of an environment variable' })
        .regex(ENV_NAME, { error: 'expected the name of an environment variable (letters, digits and _), not the key itself' })
        .optional()
        .describe('the NAME of the environment variable holding the API key (the key itself never goes in this file)'),
      systemPrompt: z.string({ error: 'expected a string' }).optional().describe('the system prompt of requests that have no system message'),
      sampling: samplingDefaultsSchema.optional(),
      graceMs: server.graceMs.unwrap().optional().describe('on SIGTERM, how long running requests may finish in ms (default 10000)'),
      lora: z
        .array(
          z.strictObject({
            path: z.string({ error: 'expected the path of a LoRA adapter GGUF file' }).min(1, { error: 'expected the path of a LoRA adapter GGUF file' }).describe('a LoRA adapter GGUF (a relative path is relative to this file)'),
            scale: z.number({ error: 'expected a number' }).min(-100).max(100).default(1).describe('how strongly it applies (default 1)'),
          }),
          { error: 'expected a list of { path, scale }' },
        )
        .optional()
        .describe('LoRA adapters applied to the model (and so to every request); --lora flags replace them'),
      embeddings: server.embeddings
        .unwrap()
        .optional()
        .describe('/v1/embeddings and /api/embed: false turns them off; ctx is the longest input in tokens (default 2048), pooling mean, cls, last or none (default: the model\'s, else mean)'),
    },
    { error: 'expected a JSON object of options' },
  )
  .meta({ title: 'hermes3 serve config', description: 'The config file of `hermes3 serve --config FILE`; command-line flags override it.' });

/** What the file holds. */
export type ServeConfigFile = z.input<typeof serveConfigSchema>;
export type SamplingDefaults = z.output<typeof samplingDefaultsSchema>;
/** The file as loaded: `model` resolved, the key read from `apiKeyEnv`. */
export type ServeConfig = z.output<typeof serveConfigSchema> & {
  /** the config file's absolute path */
  file: string;
  /** the value of the variable `apiKeyEnv` names */
  apiKey?: string;
};

/** Validates a parsed config file; `file` names it in errors and anchors relative model paths. */
export function parseServeConfig(value: unknown, file: string, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const where = `config file ${file}`;
  const first = serveConfigSchema.safeParse(value ?? {});
  // the usual message shows the value received: not for a misplaced key
  if (!first.success && first.error.issues[0].path[0] === 'apiKeyEnv') {
    throw new OptionsError(`Invalid option apiKeyEnv for ${where}: ${first.error.issues[0].message}`);
  }
  const config = parseOptions(serveConfigSchema, value, where);
  const model = REFERENCE.test(config.model) || isAbsolute(config.model) ? config.model : resolve(dirname(file), config.model);
  const lora = config.lora?.map((a) => ({ ...a, path: resolve(dirname(file), a.path) }));
  let apiKey: string | undefined;
  if (config.apiKeyEnv !== undefined) {
    apiKey = env[config.apiKeyEnv];
    if (!apiKey) {
      throw new OptionsError(
        `Invalid option apiKeyEnv for ${where}: the environment variable ${config.apiKeyEnv} is ${apiKey === '' ? 'empty' : 'not set'}; set ${config.apiKeyEnv} to the API key (for a systemd service, in its EnvironmentFile)`,
      );
    }
  }
  return { ...config, model, ...(lora === undefined ? {} : { lora }), file, ...(apiKey === undefined ? {} : { apiKey }) };
}

/** Reads and validates a config file (JSON). Errors are OptionsErrors naming the field and the file. */
export async function loadServeConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ServeConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a folder' : e.message;
    throw new OptionsError(`cannot read the config file ${file}: ${why}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new OptionsError(`the config file ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseServeConfig(value, file, env);
}

/** createServer()'s options that a config file sets, plus the defaults for requests. */
export type ConfigServerOptions = Omit<ServerOptions, 'model'> & { systemPrompt?: string; sampling?: SamplingDefaults };

export interface ConfigServeOptions {
  /** an absolute GGUF path or a reference such as hf:owner/repo:QUANT */
  modelSpec: string;
  /** for server.listen(); a key is present only when the file sets it */
  listen: { host?: string; port?: number };
  /** createServer()'s options except `model`; a key is present only when the file sets it */
  server: ConfigServerOptions;
  /** loadModel()'s nGpuLayers; undefined when the file does not say */
  gpuLayers?: number | 'max' | 'auto';
  /** loadModel()'s lora, paths resolved; undefined when the file does not say */
  lora?: Array<{ path: string; scale: number }>;
}

/**
 * The config as the options of loadModel(), createServer() and listen(). Keys the file leaves
 * out are absent (not undefined), so `{ ...fromConfig.server, ...fromFlags }` lets flags win.
 */
export function configToServeOptions(config: ServeConfig): ConfigServeOptions {
  const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  const cors = config.cors === undefined ? undefined : Array.isArray(config.cors) && config.cors.includes('*') ? '*' : config.cors;
  return {
    modelSpec: config.model,
    listen: defined({ host: config.host, port: config.port }),
    server: defined<ConfigServerOptions>({
      modelName: config.name,
      parallel: config.parallel,
      ctx: config.ctx,
      threads: config.threads,
      maxQueue: config.maxQueue,
      maxTokens: config.maxTokens,
      bodyLimit: config.bodyLimit,
      graceMs: config.graceMs,
      cors,
      apiKey: config.apiKey,
      systemPrompt: config.systemPrompt,
      sampling: config.sampling === undefined ? undefined : defined(config.sampling),
      embeddings: config.embeddings,
    }),
    ...(config.gpuLayers === undefined ? {} : { gpuLayers: config.gpuLayers }),
    ...(config.lora === undefined ? {} : { lora: config.lora }),
  };
}

/** The config file's JSON Schema (docs/hermes3-config.schema.json), as scripts/config-schema.mjs writes it. */
export function serveConfigJsonSchemaText(): string {
  return JSON.stringify(z.toJSONSchema(serveConfigSchema, { target: 'draft-2020-12', io: 'input' }), null, 2) + '\n';
}
