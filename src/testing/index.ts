/** Test and benchmark helpers: synthetic Hermes 3 models, and a local stand-in for the Hugging Face Hub. */
export { writeSyntheticModel, HERMES_TOKENS, HERMES_CHAT_TEMPLATE, VOCAB_PATH, type SyntheticModelOptions } from './synthetic.js';
export { SHAPES, type ShapeName, type ModelShape } from '../gguf/shapes.js';
export { FakeHub, type FakeFile, type FakeRepo, type LoggedRequest } from './fake-hub.js';
export { writeSyntheticLora, DEFAULT_LORA_TARGETS, type SyntheticLoraOptions } from './lora.js';
