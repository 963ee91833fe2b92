/**
 * hermes3-native: run Hermes 3 (Llama 3.1) GGUF models inside Node.js.
 *
 * ```ts
 * import { loadModel } from 'hermes3-native';
 * const model = await loadModel({ modelPath: 'Hermes-3-Llama-3.1-8B.Q4_K_M.gguf' });
 * const ctx = await model.createContext({ nCtx: 4096 });
 * for await (const chunk of ctx.sequence().generate(prompt, { maxTokens: 128 })) process.stdout.write(chunk.text);
 * ```
 */
export { loadModel, setLogger, Model, type ModelInfo } from './engine/model.js';
export { Context } from './engine/context.js';
export { EmbeddingContext, type EmbeddingInput, type EmbeddingResult } from './engine/embedding.js';
export type { EmbeddingContextOptions, EmbedOptions, Pooling } from './engine/embedding-options.js';
export { LoraAdapter } from './engine/lora.js';
export { inspectLora, type LoraFileInfo } from './gguf/lora.js';
export { Sequence, type Chunk, type FinishReason, type GenerationTimings } from './engine/sequence.js';
export { quantize, type QuantizeOptions } from './engine/quantize.js';
export type { LoadModelOptions, ContextOptions, ContextRange, GenerateOptions, Logger, LogLevel, KvCacheType, ThreadPriority } from './engine/options.js';
export { formatChat, renderChat, type FormatOptions } from './chat/format.js';
export {
  normalizeMessages,
  normalizeTools,
  type ChatMessageInput,
  type ToolSpecInput,
  type OpenAIChatMessage,
  type OpenAIToolSpec,
  type OpenAIToolCall,
  type OpenAITextPart,
  type OpenAIContent,
} from './chat/normalize.js';
export {
  Chat,
  type ChatOptions,
  type SendOptions,
  type ChatEvent,
  type ChatResult,
  type ChatUsage,
  type ChatFormatter,
  type ChatSaveResult,
  type ChatSaveOptions,
  type ChatLoadResult,
} from './chat/session.js';
export { tokenizeParts } from './chat/tokenize.js';
export { defineTool, toolCallGrammar, toToolSpec, type Tool, type ToolContext } from './tools/define.js';
export { parseToolCalls, ToolCallStream, type ParsedToolCall, type ParsedOutput, type ToolStreamEvent } from './tools/parse.js';
export { schemaToGrammar } from './tools/grammar.js';
export type { ChatMessage, ChatRole, ToolCall, ToolSpec, PromptPart } from './chat/messages.js';
export { readGgufHeader, parseGguf, type GgufHeader, type GgufTensorInfo } from './gguf/reader.js';
export { inspectGguf, type GgufInspection } from './gguf/inspect.js';
export { planMemory, type MemoryPlan, type DevicePlan, type PlanOptions } from './gguf/plan.js';
export {
  Hermes3Error,
  OptionsError,
  GgufFormatError,
  ModelFileError,
  ModelLoadError,
  InsufficientMemoryError,
  ContextOverflowError,
  AbortError,
  DisposedError,
  BusyError,
  NativeError,
  SchemaValidationError,
  RpcError,
  ChatFileError,
} from './errors.js';

export { getBackendInfo, type BackendInfo, type DeviceInfo } from './engine/backends.js';
export { startRpcServer, type RpcServerOptions } from './engine/rpc.js';
import { getAddon, type NativeSystemInfo } from './native/index.js';
/** Build and CPU facts: the llama.cpp commit, the CPU features compiled in, GPU offload support. */
export function getSystemInfo(): NativeSystemInfo {
  return getAddon().systemInfo();
}

export type { Hermes3Server, ServerOptions } from './server/index.js';
/**
 * An HTTP server for a loaded model: OpenAI's API under /v1, Ollama's under /api, a chat page
 * at /. The server's modules (fastify) load on first use, so apps that only embed the model
 * do not pay for them.
 */
export async function createServer(options: import('./server/index.js').ServerOptions): Promise<import('./server/index.js').Hermes3Server> {
  const server = await import('./server/index.js');
  return server.createServer(options);
}

export { doctor, gatherFacts, type DoctorOptions, type Finding, type FindingStatus, type MachineFacts } from './doctor/index.js';
export { pullModel, resolveModelPath, DEFAULT_MODEL_REF, type PullOptions, type PullResult, type ResolveModelPathOptions } from './models/pull.js';
export { listModels, removeModel, type PulledModel } from './models/cache.js';
export { recommendQuant, HERMES3_REPOS, BUILTIN_QUANTS, type RecommendOptions, type QuantRecommendation, type QuantCandidate, type Hermes3Shape } from './models/recommend.js';
export type { PullProgress } from './models/progress.js';
export type { PullRecord, PulledFile } from './models/records.js';
export { DownloadError, IntegrityError, ModelNotFoundError, DiskFullError, DownloadNotConfirmedError } from './errors.js';
export {
  planCluster,
  parseDeviceList,
  type ClusterOptions,
  type ClusterDevice,
  type ClusterPlan,
  type ClusterDevicePlan,
  type ClusterSuggestion,
} from './gguf/cluster.js';
