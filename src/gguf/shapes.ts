/** Llama 3.x shapes: Hermes 3's three sizes, plus the small shapes the tests and benchmarks use. */
export interface ModelShape {
  name: string;
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nVocab: number;
  nCtxTrain: number;
  ropeTheta: number;
  tiedEmbeddings: boolean;
}

const LLAMA3_VOCAB = 128256;

export const SHAPES = {
  /** for tests: two layers, the real vocabulary (which dominates its size) */
  tiny: { name: 'tiny', nLayer: 2, nEmbd: 256, nFf: 512, nHead: 4, nHeadKv: 2, headDim: 64, nVocab: LLAMA3_VOCAB, nCtxTrain: 131072, ropeTheta: 500000, tiedEmbeddings: true },
  /** Llama 3.2 1B */
  '1b': { name: '1b', nLayer: 16, nEmbd: 2048, nFf: 8192, nHead: 32, nHeadKv: 8, headDim: 64, nVocab: LLAMA3_VOCAB, nCtxTrain: 131072, ropeTheta: 500000, tiedEmbeddings: true },
  /** Hermes 3 / Llama 3.1 8B */
  '8b': { name: '8b', nLayer: 32, nEmbd: 4096, nFf: 14336, nHead: 32, nHeadKv: 8, headDim: 128, nVocab: LLAMA3_VOCAB, nCtxTrain: 131072, ropeTheta: 500000, tiedEmbeddings: false },
  /** Hermes 3 / Llama 3.1 70B */
  '70b': { name: '70b', nLayer: 80, nEmbd: 8192, nFf: 28672, nHead: 64, nHeadKv: 8, headDim: 128, nVocab: LLAMA3_VOCAB, nCtxTrain: 131072, ropeTheta: 500000, tiedEmbeddings: false },
  /** Hermes 3 / Llama 3.1 405B */
  '405b': { name: '405b', nLayer: 126, nEmbd: 16384, nFf: 53248, nHead: 128, nHeadKv: 8, headDim: 128, nVocab: LLAMA3_VOCAB, nCtxTrain: 131072, ropeTheta: 500000, tiedEmbeddings: false },
} as const satisfies Record<string, ModelShape>;

export type ShapeName = keyof typeof SHAPES;

/** Llama 3 rope scaling (factor 8, low 1, high 4, original context 8192) as per-dimension frequency factors. */
export function llama3RopeFactors(headDim: number, theta: number): Float32Array {
  const factor = 8, low = 1, high = 4, original = 8192;
  const lowWavelen = original / low;
  const highWavelen = original / high;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / Math.pow(theta, (2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (original / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/** Parameter count of a shape (weights of every tensor llama.cpp loads, rope factors excluded). */
export function shapeParams(s: ModelShape): number {
  const q = s.nEmbd * s.nHead * s.headDim;
  const kv = 2 * s.nEmbd * s.nHeadKv * s.headDim;
  const o = s.nHead * s.headDim * s.nEmbd;
  const ffn = 3 * s.nEmbd * s.nFf;
  const perLayer = q + kv + o + ffn + 2 * s.nEmbd;
  const embeddings = s.nVocab * s.nEmbd * (s.tiedEmbeddings ? 1 : 2);
  return s.nLayer * perLayer + embeddings + s.nEmbd;
}
