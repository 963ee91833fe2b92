/** Test and benchmark helpers: synthetic Hermes 3 models. */
export { writeSyntheticModel, HERMES_TOKENS, HERMES_CHAT_TEMPLATE, VOCAB_PATH, type SyntheticModelOptions } from './synthetic.js';
export { SHAPES, type ShapeName, type ModelShape } from '../gguf/shapes.js';
