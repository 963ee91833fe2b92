/**
 * The chat file. Version 2: a 31-byte preamble (`HERMES3-CHAT 2\n` and a random 16-byte file id),
 * then records. Each record is a 24-byte frame (`HREC`, header length u32, state length u64,
 * CRC-32 u32 of the frame's first 16 bytes, the header and the state, and 4 zero bytes), a JSON
 * header and a KV cache state in llama.cpp's sequence format. The first record (`base`) names
 * the model; each later one (`delta`) keeps the first `keepTokens` tokens and `keepMessages`
 * messages of the state before it and adds its own. A save writes one record, or several when
 * its state is large; a record cut short at the end of the file (a save that did not finish) is
 * left out on reading, so the state before it loads. Version 1 (a magic line, a header and one
 * state) is still read.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { ChatFileError, Hermes3Error } from '../errors.js';
import type { ChatMessage } from './messages.js';

const MAGIC = 'HERMES3-CHAT ';
const VERSION = 2;
const PREAMBLE = Buffer.from(`${MAGIC}${VERSION}\n`);
const ID_BYTES = 16;
export const FIRST_RECORD = PREAMBLE.length + ID_BYTES;
const TAG = Buffer.from('HREC');
const FRAME = 24;
/** a record header larger than this is a damaged length, not a conversation */
const MAX_HEADER = 1 << 30;

export interface ModelIdentity {
  architecture: string;
  nParams: number;
  nVocab: number;
  fileType: string;
  [key: string]: string | number;
}

export interface ChatRecord {
  kind: 'base' | 'delta';
  /** the model the state belongs to (base only) */
  model?: ModelIdentity;
  systemPrompt: string | null;
  keepMessages: number;
  messages: ChatMessage[];
  /** token ids the model generated for assistant messages, by index into the whole history */
  replies: Array<[number, number[]]>;
  keepTokens: number;
  /** token ids of the cells in the state, from position keepTokens on */
  tokens: number[];
}

const crcTable = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (zlib's where this Node has it: it is several times faster) */
function crc32(data: Uint8Array, value = 0): number {
  const native = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
  if (native) return native(data, value);
  let c = ~value;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function frame(header: Buffer, state: Uint8Array): Buffer {
  const f = Buffer.alloc(FRAME);
  TAG.copy(f, 0);
  f.writeUInt32LE(header.length, 4);
  f.writeBigUInt64LE(BigInt(state.length), 8);
  f.writeUInt32LE(crc32(state, crc32(header, crc32(f.subarray(0, 16)))), 16);
  return f;
}

const writeError = (path: string, err: unknown) =>
  err instanceof Hermes3Error
    ? err
    : new ChatFileError('ERR_FILE_WRITE', `cannot write the chat file ${path}: ${(err as Error).message}; free some disk space or choose another path, then save again (the chat is unchanged)`, { path, cause: err });

/** A record and its state, as a save produces them one after the other. */
export type RecordSource = AsyncIterable<{ record: ChatRecord; state: Uint8Array }>;

async function writeRecords(fh: FileHandle, at: number, records: RecordSource): Promise<number> {
  for await (const { record, state } of records) {
    const header = Buffer.from(JSON.stringify(record));
    await fh.writev([frame(header, state), header, state], at);
    at += FRAME + header.length + state.length;
  }
  return at;
}

/**
 * Writes a file of `records` (a base record first), atomically: a temporary file renamed over
 * `path` once complete.
 */
export async function writeChatFile(path: string, records: RecordSource): Promise<{ fileId: Buffer; bytes: number }> {
  const fileId = randomBytes(ID_BYTES);
  const tmp = `${path}.partial`;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'w');
    await fh.writev([PREAMBLE, fileId], 0);
    const bytes = await writeRecords(fh, FIRST_RECORD, records);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
    return { fileId, bytes };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(path, err);
  }
}

/**
 * Appends delta records at byte `at` (the end of the last record written). Bytes after `at` are
 * dropped when `torn` says they are a save that did not finish; otherwise another writer added
 * them. Resolves with the file's new length, or undefined (before taking any record) when the
 * file is no longer as this writer left it (replaced, shorter than `at`, or longer without a
 * torn save).
 */
export async function appendChatRecords(path: string, fileId: Buffer, at: number, torn: boolean, records: RecordSource): Promise<number | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r+');
  } catch {
    return undefined;
  }
  try {
    const start = Buffer.alloc(FIRST_RECORD);
    const { bytesRead } = await fh.read(start, 0, FIRST_RECORD, 0);
    const size = (await fh.stat()).size;
    if (bytesRead < FIRST_RECORD || !start.subarray(PREAMBLE.length).equals(fileId) || size < at || (size > at && !torn)) return undefined;
    if (size > at) await fh.truncate(at);
    const end = await writeRecords(fh, at, records);
    await fh.datasync();
    return end;
  } catch (err) {
    throw writeError(path, err);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads a chat file record by record; open with ChatFileReader.open. */
export class ChatFileReader {
  /** end of the last complete record */
  end: number;
  /** bytes after the last complete record: a save that did not finish */
  tornBytes = 0;
  private count = 0;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly version: number,
    /** the file's id (version 2) */
    readonly fileId: Buffer | undefined,
  ) {
    this.end = version === 1 ? 0 : FIRST_RECORD;
  }

  static async open(path: string): Promise<ChatFileReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ChatFileError(e.code === 'ENOENT' ? 'ERR_FILE_NOT_FOUND' : 'ERR_FILE_READ', `cannot read the chat file ${path}: ${e.message}`, { path, cause: err });
    }
    try {
      const size = (await fh.stat()).size;
      const head = Buffer.alloc(Math.min(size, FIRST_RECORD));
      await fh.read(head, 0, head.length, 0);
      const line = head.toString('latin1').split('\n')[0];
      if (!line.startsWith(MAGIC) || !/^\d+$/.test(line.slice(MAGIC.length)) || head.length <= line.length) {
        throw notChatFile(path, 'it does not start with the chat file marker');
      }
      const version = Number(line.slice(MAGIC.length));
      if (version > VERSION) {
        throw new ChatFileError('ERR_CHAT_FILE_VERSION', `${path} is a chat file of version ${version}, newer than this hermes3-native reads (${VERSION}): upgrade hermes3-native to load it`, { path });
      }
      if (version === 1) return new ChatFileReader(path, fh, size, 1, undefined);
      if (version !== VERSION || head.length < FIRST_RECORD) throw notChatFile(path, 'its preamble is cut short');
      return new ChatFileReader(path, fh, size, VERSION, head.subarray(PREAMBLE.length));
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** The next complete record, or undefined at the end (or at a torn last record). */
  async next(): Promise<{ record: ChatRecord; state: Buffer } | undefined> {
    if (this.version === 1) return this.count++ === 0 ? this.readVersion1() : undefined;
    const at = this.end;
    const left = this.size - at;
    if (left === 0) return this.count === 0 ? this.torn(at) : undefined;
    const f = await this.read(at, Math.min(FRAME, left));
    const headerLen = f.length === FRAME ? f.readUInt32LE(4) : 0;
    const stateLen = f.length === FRAME ? Number(f.readBigUInt64LE(8)) : 0;
    const recordEnd = at + FRAME + headerLen + stateLen;
    const framed = f.length === FRAME && f.subarray(0, 4).equals(TAG) && f.readUInt32LE(20) === 0 && headerLen <= MAX_HEADER;
    if (!framed || recordEnd > this.size) {
      // a record that runs past the end, or zeros where it should start: a save cut short
      if (f.length < FRAME || recordEnd > this.size || (await this.zerosFrom(at))) return this.torn(at);
      throw this.damaged(at, 'its frame is not a record frame');
    }
    const header = await this.read(at + FRAME, headerLen);
    const state = await this.read(at + FRAME + headerLen, stateLen);
    if (crc32(state, crc32(header, crc32(f.subarray(0, 16)))) !== f.readUInt32LE(16)) {
      if (recordEnd === this.size) return this.torn(at);
      throw this.damaged(at, 'its checksum does not match its bytes');
    }
    let record: ChatRecord;
    try {
      record = JSON.parse(header.toString('utf8'));
    } catch {
      throw this.damaged(at, 'its header is not valid JSON');
    }
    const problem = checkRecord(record, this.count === 0);
    if (problem) throw this.damaged(at, problem);
    this.count++;
    this.end = recordEnd;
    return { record, state };
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  private torn(at: number): undefined {
    if (this.count === 0) {
      throw new ChatFileError('ERR_CHAT_FILE', `${this.path} holds no complete save: its first record was cut short (${this.size - at} bytes), as by a process stopped while saving; there is no earlier state in it to load: save the chat again`, { path: this.path });
    }
    this.tornBytes = this.size - at;
    return undefined;
  }

  private damaged(at: number, why: string): ChatFileError {
    return new ChatFileError(
      'ERR_CHAT_FILE',
      `${this.path} is damaged: the record at byte ${at} (save ${this.count + 1}) is not readable (${why}), and saves after it depend on it; ` +
        'restore the file from a backup, or start a new chat',
      { path: this.path },
    );
  }

  private async read(at: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, at + done);
      if (bytesRead === 0) throw this.damaged(at, 'the file ended while it was read');
      done += bytesRead;
    }
    return buf;
  }

  private async zerosFrom(at: number): Promise<boolean> {
    const rest = await this.read(at, Math.min(this.size - at, 1 << 20));
    return this.size - at <= 1 << 20 && rest.every((b) => b === 0);
  }

  private async readVersion1(): Promise<{ record: ChatRecord; state: Buffer }> {
    const all = await this.read(0, this.size);
    const bad = (why: string) => notChatFile(this.path, why);
    const start = Buffer.byteLength(`${MAGIC}1\n`) + 4;
    if (all.length < start) throw bad('the header is truncated');
    const n = all.readUInt32LE(start - 4);
    if (start + n > all.length) throw bad('the header is truncated');
    let header: { model: ModelIdentity; systemPrompt?: string; messages: ChatMessage[]; replies: Array<[number, number[]]>; tokens: number[] };
    try {
      header = JSON.parse(all.toString('utf8', start, start + n));
    } catch {
      throw bad('the header is not valid JSON');
    }
    const record: ChatRecord = { kind: 'base', model: header.model, systemPrompt: header.systemPrompt ?? null, keepMessages: 0, messages: header.messages, replies: header.replies, keepTokens: 0, tokens: header.tokens };
    const problem = checkRecord(record, true);
    if (problem) throw bad(problem);
    this.end = this.size;
    return { record, state: all.subarray(start + n) };
  }
}

function notChatFile(path: string, why: string): ChatFileError {
  return new ChatFileError('ERR_CHAT_FILE', `${path} is not a hermes3 chat file: ${why}; pass a file written by chat.save()`, { path });
}

const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

/** What is wrong with a record's header, if anything (message shapes are checked on use). */
function checkRecord(r: ChatRecord, first: boolean): string | undefined {
  if (typeof r !== 'object' || r === null) return 'its header is not an object';
  if (r.kind !== (first ? 'base' : 'delta')) return first ? 'it does not start with the whole conversation' : 'a second whole conversation follows the first';
  if (first && (typeof r.model !== 'object' || r.model === null)) return 'it does not name its model';
  if (!isCount(r.keepMessages) || !isCount(r.keepTokens)) return 'its counts are not counts';
  if (!Array.isArray(r.messages) || !Array.isArray(r.tokens) || !Array.isArray(r.replies)) return 'it lacks messages, replies or tokens';
  if (r.systemPrompt !== null && typeof r.systemPrompt !== 'string') return 'its system prompt is not a string';
  if (!r.replies.every((e) => Array.isArray(e) && isCount(e[0]) && Array.isArray(e[1]))) return 'its replies are not [index, token ids] pairs';
  return undefined;
}
