/** GGUF value types (gguf.h). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufArray;
/** An array value keeps its element type so it can be written back unchanged. */
export interface GgufArray {
  type: GgufValueType;
  values: GgufScalar[];
  /** the element count, known without decoding the values (set by the reader) */
  readonly length?: number;
}

export interface GgufTypedValue {
  type: GgufValueType;
  value: GgufValue;
}

/** ggml tensor types that the writer and the planner need: block size and bytes per block. */
export const GGML_TYPES: Record<string, { id: number; blockSize: number; typeSize: number }> = {
  F32: { id: 0, blockSize: 1, typeSize: 4 },
  F16: { id: 1, blockSize: 1, typeSize: 2 },
  Q4_0: { id: 2, blockSize: 32, typeSize: 18 },
  Q4_1: { id: 3, blockSize: 32, typeSize: 20 },
  Q5_0: { id: 6, blockSize: 32, typeSize: 22 },
  Q5_1: { id: 7, blockSize: 32, typeSize: 24 },
  Q8_0: { id: 8, blockSize: 32, typeSize: 34 },
  Q2_K: { id: 10, blockSize: 256, typeSize: 84 },
  Q3_K: { id: 11, blockSize: 256, typeSize: 110 },
  Q4_K: { id: 12, blockSize: 256, typeSize: 144 },
  Q5_K: { id: 13, blockSize: 256, typeSize: 176 },
  Q6_K: { id: 14, blockSize: 256, typeSize: 210 },
  Q8_K: { id: 15, blockSize: 256, typeSize: 292 },
  IQ4_NL: { id: 20, blockSize: 32, typeSize: 18 },
  IQ4_XS: { id: 23, blockSize: 256, typeSize: 136 },
  BF16: { id: 30, blockSize: 1, typeSize: 2 },
};

export const GGML_TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(GGML_TYPES).map(([name, t]) => [t.id, name]),
);

/** llama_ftype values (llama.h) for the file types the package names. */
export const FILE_TYPES = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 7,
  Q2_K: 10,
  Q3_K_M: 12,
  Q4_K_S: 14,
  Q4_K_M: 15,
  Q5_K_S: 16,
  Q5_K_M: 17,
  Q6_K: 18,
  IQ4_XS: 30,
  BF16: 32,
} as const;
export type FileTypeName = keyof typeof FILE_TYPES;

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;
