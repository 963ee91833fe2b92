/**
 * Saving a chat and loading it again (the file format is in persist.ts). The first save to a
 * path writes the whole conversation and its KV cache; each later save of the same chat to that
 * path appends what changed since: the messages after the ones still saved, and the KV cells of
 * the tokens after the longest prefix still saved. The whole file is written again when the
 * saved tokens that no longer count outweigh half of those that do, when the file was replaced
 * or appended to by another writer meanwhile, or when the context cannot save a range (no free
 * sequence slot, or a KV cache that is not unified).
 */
import { basename, resolve } from 'node:path';
import { z } from 'zod';
import { BusyError, ChatFileError, NativeError } from '../errors.js';
import type { Context } from '../engine/context.js';
import type { Model } from '../engine/model.js';
import { commonPrefix, type Sequence } from '../engine/sequence.js';
import { int } from '../engine/validate.js';
import type { ChatMessage } from './messages.js';
import { normalizeMessages } from './normalize.js';
import { ChatFileReader, appendChatRecords, writeChatFile, type ChatRecord, type ModelIdentity, type RecordSource } from './persist.js';

export const saveSchema = z.strictObject({
  /**
   * the most bytes of KV cache state in one record of the file: a larger state is written in
   * several, so no single buffer passes Node's Buffer limit (4 GiB on Node 20) and loading
   * holds one record at a time
   */
  maxRecordBytes: int(4096, 2 ** 32).default(2 ** 30),
});
export type SaveOptions = z.input<typeof saveSchema>;

/** What a chat keeps between turns, and what a file restores. */
export interface ChatSnapshot {
  systemPrompt: string | undefined;
  messages: ChatMessage[];
  replies: Map<number, number[]>;
}

export interface ChatSaveResult {
  /** 'full': the file was written whole; 'append': the changes since the last save were appended */
  mode: 'full' | 'append';
  /** bytes written by this save */
  bytesWritten: number;
  /** the file's length afterwards */
  fileBytes: number;
  /** tokens whose KV cache the file holds */
  tokens: number;
  /** tokens whose KV cells this save wrote */
  tokensWritten: number;
}

export interface ChatLoadResult {
  /** tokens restored into the KV cache */
  tokens: number;
  messages: number;
  /** records read: the first save, then each appended change (a large state takes several) */
  saves: number;
  /**
   * bytes after the last complete record, left out: a save that did not finish (the process
   * stopped while writing). The state of the save before it was loaded; the next save to the
   * file replaces those bytes.
   */
  tornBytes: number;
}

interface Saved {
  path: string;
  fileId: Buffer;
  /** end of the last record */
  bytes: number;
  tokens: number[];
  messages: ChatMessage[];
  replies: Map<number, number[]>;
  systemPrompt: string | undefined;
  /** tokens held in the file that the last state no longer holds */
  deadTokens: number;
  /** bytes after `bytes` may be a save that did not finish (a failed append, or a torn file loaded) */
  torn: boolean;
}

/**
 * Identity of a model for chat files: a state is only meaningful to the model that made it, with
 * the LoRA adapters its context applied (file name and scale; absent without adapters).
 */
export function modelIdentity(model: Model, context?: Context): ModelIdentity {
  const { architecture, name, nParams, sizeBytes, nLayer, nEmbd, nHeadKv, nVocab, fileType } = model.info;
  const id: ModelIdentity = { architecture, name, nParams, sizeBytes, nLayer, nEmbd, nHeadKv, nVocab, fileType };
  const lora = context?.lora.map(({ adapter, scale }) => `${basename(adapter.path)}@${scale}`).join(',');
  if (lora) id.lora = lora;
  return id;
}

export class ChatSaver {
  private saved: Saved | undefined;
  /** bytes of state per token, measured by the last range saved (first: an upper bound, f32 cells) */
  private bytesPerToken: number;

  constructor(private readonly model: Model) {
    const { nLayer, nHeadKv, nEmbd, nHead } = model.info;
    this.bytesPerToken = 2 * nLayer * nHeadKv * Math.ceil(nEmbd / Math.max(1, nHead)) * 4 + 64;
  }

  async save(path: string, seq: Sequence, snap: ChatSnapshot, options: z.output<typeof saveSchema>): Promise<ChatSaveResult> {
    const abs = resolve(path);
    const tokens = seq.tokens.slice(0, seq.cachedTokens);
    const last = this.saved;
    if (last && last.path === abs) {
      const keepTokens = commonPrefix(last.tokens, tokens);
      const deadTokens = last.deadTokens + last.tokens.length - keepTokens;
      if (deadTokens <= tokens.length / 2) {
        const appended = await this.append(last, seq, snap, tokens, keepTokens, deadTokens, options.maxRecordBytes);
        if (appended) return appended;
      }
    }
    const records =
      (await this.records(seq, snap, tokens, 'base', 0, 0, options.maxRecordBytes)) ??
      // no range can be saved here: the whole state in one record
      (await this.records(seq, snap, tokens, 'base', 0, 0, Infinity))!;
    const { fileId, bytes } = await writeChatFile(abs, records);
    this.remember({ path: abs, fileId, bytes, tokens, deadTokens: 0, torn: false, ...snap });
    return { mode: 'full', bytesWritten: bytes, fileBytes: bytes, tokens: tokens.length, tokensWritten: tokens.length };
  }

  /** Restores `path` into `seq`; the caller takes the snapshot. On failure the file is left out of later saves. */
  async load(path: string, seq: Sequence): Promise<{ snap: ChatSnapshot; result: ChatLoadResult }> {
    const abs = resolve(path);
    const reader = await ChatFileReader.open(abs);
    this.saved = undefined;
    try {
      const first = await reader.next();
      if (!first) throw new ChatFileError('ERR_CHAT_FILE', `${path} is not a hermes3 chat file: it holds no conversation; pass a file written by chat.save()`, { path });
      this.checkModel(path, first.record.model!, reader.version, seq.context);
      let messages: ChatMessage[] = [];
      let replies = new Map<number, number[]>();
      let systemPrompt: string | undefined;
      let deadTokens = 0;
      let saves = 0;
      for (let next: typeof first | undefined = first; next; next = await reader.next()) {
        const { record, state } = next;
        const keepTokens = record.kind === 'base' ? 0 : record.keepTokens;
        const keepMessages = record.kind === 'base' ? 0 : record.keepMessages;
        if (keepMessages > messages.length || keepTokens > seq.cachedTokens) {
          throw new ChatFileError('ERR_CHAT_FILE', `${path} is damaged: save ${saves + 1} builds on more than the saves before it hold; restore the file from a backup, or start a new chat`, { path });
        }
        let added: ChatMessage[];
        try {
          added = normalizeMessages(record.messages, 'messages');
        } catch (err) {
          throw new ChatFileError('ERR_CHAT_FILE', `${path} is damaged: save ${saves + 1} holds a message that is not one (${(err as Error).message}); restore the file from a backup, or start a new chat`, { path, cause: err });
        }
        if (record.kind === 'delta') deadTokens += seq.cachedTokens - keepTokens;
        try {
          if (record.kind === 'base') await seq.restoreState({ tokens: record.tokens, state });
          else await seq.appendState({ from: keepTokens, tokens: record.tokens, state });
        } catch (err) {
          const fix =
            err instanceof BusyError || (err instanceof NativeError && err.code === 'ERR_STATE' && /unified/.test(err.message))
              ? 'a file with appended saves loads through a free sequence slot of a unified KV cache: give the context one more in nSeqMax (and kvUnified: true), or load the file in a chat of its own'
              : `load it into a chat whose context is set like the one that saved it (nCtx at least ${keepTokens + record.tokens.length}, the same KV cache type, and with kvUnified: false the same nSeqMax)`;
          throw new ChatFileError('ERR_CHAT_FILE', `cannot restore save ${saves + 1} of ${path} into this chat's context: ${(err as Error).message}; ${fix}`, { path, cause: err });
        }
        messages = [...messages.slice(0, keepMessages), ...added];
        replies = new Map([...replies].filter(([i]) => i < keepMessages));
        for (const [i, ids] of record.replies) if (i < messages.length) replies.set(i, ids);
        systemPrompt = record.systemPrompt ?? undefined;
        saves++;
      }
      const snap: ChatSnapshot = { systemPrompt, messages, replies };
      const tokens = seq.tokens.slice(0, seq.cachedTokens);
      if (reader.fileId) this.remember({ path: abs, fileId: reader.fileId, bytes: reader.end, tokens, deadTokens, torn: reader.tornBytes > 0, ...snap });
      return { snap, result: { tokens: tokens.length, messages: messages.length, saves, tornBytes: reader.tornBytes } };
    } finally {
      await reader.close();
    }
  }

  private async append(
    last: Saved,
    seq: Sequence,
    snap: ChatSnapshot,
    tokens: number[],
    keepTokens: number,
    deadTokens: number,
    maxRecordBytes: number,
  ): Promise<ChatSaveResult | undefined> {
    let keepMessages = 0;
    const n = Math.min(last.messages.length, snap.messages.length);
    while (keepMessages < n && last.messages[keepMessages] === snap.messages[keepMessages] && last.replies.get(keepMessages) === snap.replies.get(keepMessages)) {
      keepMessages++;
    }
    const records = await this.records(seq, snap, tokens, 'delta', keepTokens, keepMessages, maxRecordBytes, last);
    if (!records) return undefined;
    let bytes: number | undefined;
    try {
      bytes = await appendChatRecords(last.path, last.fileId, last.bytes, last.torn, records);
    } catch (err) {
      last.torn = true;
      throw err;
    }
    if (bytes === undefined) return undefined;
    const bytesWritten = bytes - last.bytes;
    this.remember({ ...last, bytes, tokens, deadTokens, torn: false, ...snap });
    return { mode: 'append', bytesWritten, fileBytes: bytes, tokens: tokens.length, tokensWritten: tokens.length - keepTokens };
  }

  /**
   * The records of a save: the KV cells of tokens [keepTokens, end) in records of at most about
   * maxRecordBytes each, the messages after the first keepMessages in the last one; the records
   * before it keep the conversation of the save before (`last`), so a save cut short between its
   * records loads as that conversation with more of the cache. Undefined when this context
   * cannot save a range (no free sequence slot, or sequences that do not share cells) and one is
   * needed.
   */
  private async records(
    seq: Sequence,
    snap: ChatSnapshot,
    tokens: number[],
    kind: 'base' | 'delta',
    keepTokens: number,
    keepMessages: number,
    maxRecordBytes: number,
    last?: Saved,
  ): Promise<RecordSource | undefined> {
    const step = () => Math.max(1, Math.floor(maxRecordBytes / this.bytesPerToken));
    let from = keepTokens;
    let to = Math.min(tokens.length, from + step());
    let state: Buffer;
    if (kind === 'base' && to === tokens.length) state = (await seq.saveState()).state;
    else {
      try {
        state = (await seq.saveStateRange(from, to)).state;
      } catch (err) {
        if (err instanceof BusyError || (err instanceof NativeError && err.code === 'ERR_STATE')) return undefined;
        throw err;
      }
    }
    const model = kind === 'base' ? modelIdentity(this.model, seq.context) : undefined;
    const systemPrompt = snap.systemPrompt ?? null;
    const messages = snap.messages.slice(keepMessages);
    const replies = [...snap.replies].filter(([i]) => i >= keepMessages);
    const measure = (bytes: number, n: number) => {
      if (n > 0) this.bytesPerToken = Math.max(1, bytes / n);
    };
    return (async function* () {
      for (let first = true; ; first = false) {
        measure(state.length, to - from);
        const done = to === tokens.length;
        const record: ChatRecord = {
          kind: first ? kind : 'delta',
          model: first ? model : undefined,
          systemPrompt: done || !last ? systemPrompt : (last.systemPrompt ?? null),
          keepMessages: done || !last ? keepMessages : last.messages.length,
          messages: done ? messages : [],
          replies: done ? replies : [],
          keepTokens: from,
          tokens: tokens.slice(from, to),
        };
        yield { record, state };
        if (done) return;
        from = to;
        to = Math.min(tokens.length, from + step());
        state = (await seq.saveStateRange(from, to)).state;
      }
    })();
  }

  private remember(saved: Saved): void {
    // the chat changes its arrays in place: keep copies
    this.saved = { ...saved, messages: saved.messages.slice(), replies: new Map(saved.replies) };
  }

  private checkModel(path: string, saved: ModelIdentity, version: number, context: Context): void {
    const mine = modelIdentity(this.model, context);
    // version 1 files name fewer properties of the model; adapters are named only when there are some
    const keys = version === 1 ? ['architecture', 'nParams', 'nVocab', 'fileType'] : [...new Set([...Object.keys(mine), ...(saved?.lora !== undefined ? ['lora'] : [])])];
    const differs = keys.filter((k) => saved?.[k] !== mine[k]);
    if (differs.length > 0) {
      const show = (m: ModelIdentity | undefined) => `${m?.name || m?.architecture} (${differs.map((k) => `${k} ${k === 'lora' && m?.[k] === undefined ? 'none' : JSON.stringify(m?.[k])}`).join(', ')})`;
      const what = differs.every((k) => k === 'lora') ? 'other LoRA adapters' : 'another model';
      throw new ChatFileError(
        'ERR_CHAT_FILE_MODEL',
        `${path} was saved with ${what}, ${show(saved)}; this chat runs ${show(mine)}: load it into a chat of the model (and adapters) it was saved with`,
        { path },
      );
    }
  }
}
