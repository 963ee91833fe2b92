/** The chat file: a magic line, a JSON header (history, token ids) and the KV cache state. */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { GgufFormatError, Hermes3Error } from '../errors.js';
import type { ChatMessage } from './messages.js';

const MAGIC = Buffer.from('HERMES3-CHAT 1\n');

export interface ChatFileHeader {
  model: { architecture: string; nParams: number; nVocab: number; fileType: string };
  systemPrompt: string | undefined;
  messages: ChatMessage[];
  replies: Array<[number, number[]]>;
  /** token ids held in the saved KV cache */
  tokens: number[];
}

export async function writeChatFile(path: string, header: ChatFileHeader, state: Uint8Array): Promise<void> {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const tmp = `${path}.partial`;
  await writeFile(tmp, Buffer.concat([MAGIC, len, json, state]));
  await rename(tmp, path);
}

export async function readChatFile(path: string): Promise<{ header: ChatFileHeader; state: Buffer }> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Hermes3Error(e.code === 'ENOENT' ? 'ERR_FILE_NOT_FOUND' : 'ERR_FILE_READ', `cannot read the chat file ${path}: ${e.message}`);
  }
  const bad = (why: string) => new GgufFormatError(`${path} is not a hermes3 chat file: ${why}`, { path });
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw bad('it does not start with the chat file marker');
  const n = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (start + n > buf.length) throw bad('the header is truncated');
  let header: ChatFileHeader;
  try {
    header = JSON.parse(buf.toString('utf8', start, start + n));
  } catch {
    throw bad('the header is not valid JSON');
  }
  if (!Array.isArray(header.messages) || !Array.isArray(header.tokens) || !Array.isArray(header.replies)) throw bad('the header lacks messages or tokens');
  return { header, state: buf.subarray(start + n) };
}
