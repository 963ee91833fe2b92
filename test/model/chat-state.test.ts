/**
 * Long conversations kept cheap: chat files saved incrementally, loaded in a fresh model, and
 * read safely when cut short, damaged or foreign; sequence state ranges restored at their
 * positions.
 */
import { copyFileSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusyError, ChatFileError, loadModel, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';

const greedy = { temperature: 0 } as const;
const scratch = mkdtempSync(join(tmpdir(), 'hermes3-chat-state-'));

describe('chat files', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
  });
  afterAll(() => model.dispose());

  /** a chat of three turns saved after the first (whole) and after the third (appended) */
  async function savedTwice(name: string) {
    const path = join(scratch, name);
    const chat = model.chat({ systemPrompt: 'Be terse.', ...greedy, maxTokens: 12 });
    await chat.ask(`Remember the number 42. ${'Here is some context to keep. '.repeat(40)}`);
    const first = await chat.save(path);
    const atFirst = chat.history;
    const firstBytes = readFileSync(path);
    await chat.ask('And the colour blue, 青.');
    await chat.ask('Now both?');
    const second = await chat.save(path);
    return { path, chat, first, second, atFirst, firstBytes };
  }

  it('appends only the new turns on a second save, and a fresh model resumes with the same greedy continuation', async () => {
    const { path, chat, first, second } = await savedTwice('appended.chat');
    expect(first.mode).toBe('full');
    expect(second.mode).toBe('append');
    expect(second.fileBytes).toBe(first.fileBytes + second.bytesWritten);
    expect(statSync(path).size).toBe(second.fileBytes);
    expect(second.tokensWritten).toBe(second.tokens - first.tokens);
    // the file grows by the new tokens' KV cells, not by the whole state again
    const perToken = first.bytesWritten / first.tokens;
    expect(second.bytesWritten).toBeLessThan(perToken * second.tokensWritten * 1.5 + 4096);
    expect(second.tokensWritten).toBeLessThan(first.tokens / 2);
    expect(second.bytesWritten).toBeLessThan(first.bytesWritten / 2);
    const history = chat.history;
    const expected = await chat.ask('What did I ask you to remember?');

    const fresh = await loadModel({ modelPath: FIXTURES.f16 });
    try {
      const resumed = fresh.chat({ ...greedy, maxTokens: 12 });
      const loaded = await resumed.load(path);
      expect(loaded).toEqual({ tokens: second.tokens, messages: 6, saves: 2, tornBytes: 0 });
      expect(resumed.systemPrompt).toBe('Be terse.');
      expect(resumed.history).toEqual(history);
      const r = await resumed.ask('What did I ask you to remember?');
      expect(r.text).toBe(expected.text);
      expect(r.usage.cachedTokens).toBe(expected.usage.cachedTokens);
      await resumed.dispose();
    } finally {
      await fresh.dispose();
    }
    await chat.dispose();
  });

  it('writes a state larger than maxRecordBytes in several records, and a save cut between them adds no messages', async () => {
    const path = join(scratch, 'records.chat');
    const chat = model.chat({ systemPrompt: 'Be terse.', ...greedy, maxTokens: 12 });
    await chat.ask(`Remember the number 42. ${'Here is some context to keep. '.repeat(40)}`);
    await expect(chat.save(path, { maxRecordBytes: 100 })).rejects.toThrow('Invalid option maxRecordBytes for save: expected an integer between 4096 and 4294967296, received 100 (number)');
    const first = await chat.save(path, { maxRecordBytes: 16384 });
    const atFirst = chat.history;
    await chat.ask(`And these too: ${'more words to keep, '.repeat(20)}`);
    const second = await chat.save(path, { maxRecordBytes: 16384 });
    expect(second.mode).toBe('append');
    const expected = await chat.ask('What number?');

    const b = model.chat({ ...greedy, maxTokens: 12 });
    const loaded = await b.load(path);
    // about 16 KiB of cells per record (the first one sized by an upper bound per token)
    expect(loaded.saves).toBeGreaterThan(Math.floor(second.fileBytes / (2 * 16384)));
    expect(loaded.tokens).toBe(second.tokens);
    const r = await b.ask('What number?');
    expect(r.text).toBe(expected.text);
    expect(r.usage.cachedTokens).toBe(expected.usage.cachedTokens);

    // cut after the second save's first record: the first save's messages, and more cells cached
    const whole = readFileSync(path);
    const frameEnd = (at: number) => at + 24 + whole.readUInt32LE(at + 4) + Number(whole.readBigUInt64LE(at + 8));
    const cut = join(scratch, 'records-cut.chat');
    writeFileSync(cut, whole.subarray(0, frameEnd(frameEnd(first.fileBytes)) + 10));
    const c = model.chat({ ...greedy, maxTokens: 12 });
    const partial = await c.load(cut);
    expect(partial.tornBytes).toBe(10);
    expect(partial.tokens).toBeGreaterThan(first.tokens);
    expect(c.history).toEqual(atFirst);
    expect((await c.ask('Go on.')).usage.cachedTokens).toBeGreaterThan(0);
    await Promise.all([chat.dispose(), b.dispose(), c.dispose()]);
  });

  it('keeps appending after a load, and writes the file whole again when most of it no longer counts', async () => {
    const { path, chat } = await savedTwice('reloaded.chat');
    const b = model.chat({ ...greedy, maxTokens: 12 });
    const loading = b.load(path);
    // a turn, a save or another load waits for the load
    expect(() => b.send('Too soon')).toThrow(BusyError);
    await expect(b.save(path)).rejects.toThrow(/the chat is answering, saving or loading; wait for it/);
    await loading;
    await b.ask('One more.');
    const third = await b.save(path);
    expect(third.mode).toBe('append');
    const again = await b.save(path);
    expect(again).toMatchObject({ mode: 'append', tokensWritten: 0 });
    // a new history keeps almost none of the saved tokens
    b.setHistory([{ role: 'user', content: 'Something else entirely.' }]);
    await b.ask('Go on.');
    const rewritten = await b.save(path);
    expect(rewritten.mode).toBe('full');
    expect(statSync(path).size).toBe(rewritten.fileBytes);
    const c = model.chat({ ...greedy, maxTokens: 12 });
    expect((await c.load(path)).saves).toBe(1);
    expect(c.history).toEqual(b.history);
    await Promise.all([chat.dispose(), b.dispose(), c.dispose()]);
  });

  it('writes the file whole when another chat appended to it meanwhile, so neither save cuts the other', async () => {
    const { path, chat } = await savedTwice('two-writers.chat');
    const b = model.chat({ ...greedy, maxTokens: 12 });
    await b.load(path);
    await chat.ask('A says more.');
    expect((await chat.save(path)).mode).toBe('append');
    await b.ask('B says more.');
    expect((await b.save(path)).mode).toBe('full');
    await chat.ask('A again.');
    expect((await chat.save(path)).mode).toBe('full');
    const c = model.chat({ ...greedy, maxTokens: 12 });
    expect(await c.load(path)).toMatchObject({ saves: 1, tornBytes: 0 });
    expect(c.history).toEqual(chat.history);
    await Promise.all([chat.dispose(), b.dispose(), c.dispose()]);
  });

  it('saves after every turn of a chat that drops its oldest turns, and loads to the same continuation', async () => {
    const path = join(scratch, 'dropping.chat');
    const chat = model.chat({ systemPrompt: 'Be terse.', nCtx: 256, ...greedy, maxTokens: 16 });
    let dropped = 0;
    const modes = new Set<string>();
    for (let i = 0; i < 10; i++) {
      for await (const ev of chat.send(`Turn ${i}: tell me something about the number ${i * 7}, please.`)) {
        if (ev.type === 'done') dropped += ev.droppedMessages ?? 0;
      }
      modes.add((await chat.save(path)).mode);
    }
    expect(dropped).toBeGreaterThan(0);
    expect([...modes].sort()).toEqual(['append', 'full']);
    const b = model.chat({ nCtx: 256, ...greedy, maxTokens: 16 });
    await b.load(path);
    expect(b.history).toEqual(chat.history);
    const expected = await chat.ask('And the last one?');
    const r = await b.ask('And the last one?');
    expect(r.text).toBe(expected.text);
    expect(r.usage.cachedTokens).toBe(expected.usage.cachedTokens);
    await Promise.all([chat.dispose(), b.dispose()]);
  });

  it('writes the whole state when the context has no free sequence to save a range through', async () => {
    const ctx = await model.createContext({ nCtx: 1024, nSeqMax: 1 });
    const path = join(scratch, 'one-slot.chat');
    const chat = model.chat({ context: ctx, ...greedy, maxTokens: 6 });
    await chat.ask('Hi');
    expect((await chat.save(path)).mode).toBe('full');
    await chat.ask('Again');
    expect((await chat.save(path)).mode).toBe('full');
    const b = model.chat({ ...greedy, maxTokens: 6 });
    await b.load(path);
    expect(b.history).toEqual(chat.history);
    // a file with appended saves needs that free slot to load
    const { path: appended, chat: saver } = await savedTwice('needs-a-slot.chat');
    const mine = chat.history;
    const err = await chat.load(appended).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatFileError);
    expect((err as Error).message).toMatch(/cannot restore save 2 of .*: give the context one more in nSeqMax \(and kvUnified: true\), or load the file in a chat of its own/);
    expect(chat.history).toEqual(mine);
    expect((await chat.ask('Still there?')).finishReason).toBeDefined();
    await Promise.all([chat.dispose(), b.dispose(), saver.dispose()]);
    await ctx.dispose();
  });

  it('writes the whole state from a context whose sequences do not share a KV cache', async () => {
    const ctx = await model.createContext({ nCtx: 1024, nSeqMax: 2, kvUnified: false });
    const path = join(scratch, 'split-cache.chat');
    const chat = model.chat({ context: ctx, ...greedy, maxTokens: 6 });
    await chat.ask('Hi');
    expect((await chat.save(path)).mode).toBe('full');
    await chat.ask('Again');
    expect((await chat.save(path)).mode).toBe('full');
    // llama.cpp's state of a sequence names the cache's streams: it loads into a context set alike
    const own = model.chat({ ...greedy, maxTokens: 6 });
    await expect(own.load(path)).rejects.toMatchObject({
      code: 'ERR_CHAT_FILE',
      message: expect.stringMatching(/n_stream mismatch; load it into a chat whose context is set like the one that saved it \(.*with kvUnified: false the same nSeqMax\)/),
    });
    const alike = await model.createContext({ nCtx: 1024, nSeqMax: 2, kvUnified: false });
    const b = model.chat({ context: alike, ...greedy, maxTokens: 6 });
    expect(await b.load(path)).toMatchObject({ saves: 1 });
    expect(b.history).toEqual(chat.history);
    const expected = await chat.ask('Once more');
    expect((await b.ask('Once more')).text).toBe(expected.text);
    await Promise.all([chat.dispose(), b.dispose(), own.dispose()]);
    await Promise.all([ctx.dispose(), alike.dispose()]);
  });

  it('loads the previous save from a file cut at any byte of the last save, and refuses one cut inside the first', async () => {
    const { path, chat, first, second, atFirst } = await savedTwice('torn.chat');
    const whole = readFileSync(path);
    const cuts = [first.fileBytes + 1, first.fileBytes + 23, first.fileBytes + 24, first.fileBytes + 200, second.fileBytes - 1];
    for (let k = 1; k < 8; k++) cuts.push(first.fileBytes + Math.floor((second.bytesWritten * k) / 8));
    const b = model.chat({ ...greedy, maxTokens: 12 });
    for (const cut of cuts) {
      const torn = join(scratch, `torn-${cut}.chat`);
      writeFileSync(torn, whole.subarray(0, cut));
      const loaded = await b.load(torn);
      expect(loaded).toMatchObject({ saves: 1, tokens: first.tokens, tornBytes: cut - first.fileBytes });
      expect(b.history).toEqual(atFirst);
    }
    // the next save replaces the torn bytes
    const torn = join(scratch, `torn-${cuts[3]}.chat`);
    await b.load(torn);
    await b.ask('And now?');
    const resave = await b.save(torn);
    expect(resave.mode).toBe('append');
    const c = model.chat({ ...greedy, maxTokens: 12 });
    expect(await c.load(torn)).toMatchObject({ saves: 2, tornBytes: 0 });
    expect(c.history).toEqual(b.history);

    for (const cut of [0, 10, 31, 40, Math.floor(first.fileBytes / 2), first.fileBytes - 1]) {
      const cutFirst = join(scratch, `cut-first-${cut}.chat`);
      writeFileSync(cutFirst, whole.subarray(0, cut));
      const err = await c.load(cutFirst).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChatFileError);
      expect((err as ChatFileError).code).toBe('ERR_CHAT_FILE');
      expect((err as Error).message).toMatch(cut < 31 ? /not a hermes3 chat file/ : /holds no complete save.*save the chat again/);
      // the chat keeps its conversation and goes on
      expect(c.history).toEqual(b.history);
    }
    expect((await c.ask('Still here?')).finishReason).toBeDefined();
    await Promise.all([chat.dispose(), b.dispose(), c.dispose()]);
  });

  it('refuses a file damaged before its last save, and treats a damaged last save as cut short', async () => {
    const { path, chat, first, atFirst } = await savedTwice('damaged.chat');
    const whole = readFileSync(path);
    const inFirst = Buffer.from(whole);
    inFirst[first.fileBytes - 100] ^= 0xff;
    const damaged = join(scratch, 'damaged-first.chat');
    writeFileSync(damaged, inFirst);
    const b = model.chat({ ...greedy, maxTokens: 12 });
    await b.ask('Mine.');
    const mine = b.history;
    const err = await b.load(damaged).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatFileError);
    expect((err as Error).message).toMatch(/is damaged: the record at byte 31 \(save 1\) is not readable \(its checksum does not match its bytes\).*restore the file from a backup/);
    expect(b.history).toEqual(mine);

    const inLast = Buffer.from(whole);
    inLast[inLast.length - 100] ^= 0xff;
    const lastDamaged = join(scratch, 'damaged-last.chat');
    writeFileSync(lastDamaged, inLast);
    expect(await b.load(lastDamaged)).toMatchObject({ saves: 1, tornBytes: whole.length - first.fileBytes });
    expect(b.history).toEqual(atFirst);
    await Promise.all([chat.dispose(), b.dispose()]);
  });

  it('refuses a file saved with another model, a newer version, and a foreign file, keeping the chat as it was', async () => {
    const { path, chat } = await savedTwice('other-model.chat');
    const q8 = await loadModel({ modelPath: FIXTURES.q8 });
    try {
      const b = q8.chat({ ...greedy, maxTokens: 6 });
      await b.ask('Hello');
      const history = b.history;
      const err = await b.load(path).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChatFileError);
      expect(err).toMatchObject({ code: 'ERR_CHAT_FILE_MODEL', path });
      expect((err as Error).message).toMatch(/was saved with another model, .*fileType "F16".*; this chat runs .*fileType "Q8_0".*: load it into a chat of the model \(and adapters\) it was saved with/);
      expect(b.history).toEqual(history);
      expect((await b.ask('Again')).usage.cachedTokens).toBeGreaterThan(0);
      await b.dispose();
    } finally {
      await q8.dispose();
    }
    const newer = join(scratch, 'newer.chat');
    const bytes = readFileSync(path);
    bytes.write('3', 'HERMES3-CHAT '.length, 'latin1');
    writeFileSync(newer, bytes);
    await expect(chat.load(newer)).rejects.toMatchObject({ code: 'ERR_CHAT_FILE_VERSION', message: expect.stringMatching(/version 3, newer than this hermes3-native reads \(2\): upgrade/) });
    const foreign = join(scratch, 'foreign.chat');
    copyFileSync(FIXTURES.q4km, foreign);
    truncateSync(foreign, 4096);
    await expect(chat.load(foreign)).rejects.toMatchObject({ code: 'ERR_CHAT_FILE', message: expect.stringMatching(/is not a hermes3 chat file: it does not start with the chat file marker; pass a file written by chat.save\(\)/) });
    await expect(chat.load(join(scratch, 'missing.chat'))).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND' });
    await chat.dispose();
  });

  it('reads a version 1 file (one whole state)', async () => {
    const a = model.chat({ systemPrompt: 'Be terse.', ...greedy, maxTokens: 8 });
    await a.ask('Remember the number 42.');
    const v2 = join(scratch, 'for-version1.chat');
    await a.save(v2);
    // version 2 with one record: preamble (31 bytes), frame (24), header, state
    const bytes = readFileSync(v2);
    const headerLen = bytes.readUInt32LE(31 + 4);
    const record = JSON.parse(bytes.toString('utf8', 55, 55 + headerLen));
    const { architecture, nParams, nVocab, fileType } = model.info;
    const header = Buffer.from(JSON.stringify({ model: { architecture, nParams, nVocab, fileType }, systemPrompt: record.systemPrompt, messages: record.messages, replies: record.replies, tokens: record.tokens }));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(header.length);
    const path = join(scratch, 'version1.chat');
    writeFileSync(path, Buffer.concat([Buffer.from('HERMES3-CHAT 1\n'), len, header, bytes.subarray(55 + headerLen)]));
    const expected = await a.ask('What number?');
    const b = model.chat({ ...greedy, maxTokens: 8 });
    expect(await b.load(path)).toMatchObject({ saves: 1, tokens: record.tokens.length, tornBytes: 0 });
    expect(b.systemPrompt).toBe('Be terse.');
    const r = await b.ask('What number?');
    expect(r.text).toBe(expected.text);
    expect(r.usage.cachedTokens).toBe(expected.usage.cachedTokens);
    await Promise.all([a.dispose(), b.dispose()]);
  });
});

describe('sequence state ranges', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.f16 });
  });
  afterAll(() => model.dispose());

  it('restores a saved range after a saved prefix at its own positions, and refuses one that does not start where the sequence ends', async () => {
    const prefix = model.tokenize('The quick brown fox jumps over the lazy dog, and then', { addBos: true });
    const rest = model.tokenize(' it runs into the forest where the river bends twice.');
    const a = await model.createContext({ nCtx: 512, nSeqMax: 2 });
    const seq = a.sequence();
    for await (const _ of seq.generate(prefix, { maxTokens: 0 }));
    const base = await seq.saveState();
    for await (const _ of seq.generate(rest, { maxTokens: 0 }));
    const range = await seq.saveStateRange(base.tokens.length);
    expect(range.tokens).toEqual(seq.tokens.slice(base.tokens.length, seq.cachedTokens));
    let expected = '';
    for await (const c of seq.generate([], { ...greedy, maxTokens: 10 })) expected += c.text;

    const b = await model.createContext({ nCtx: 512, nSeqMax: 2 });
    const other = b.sequence();
    await other.restoreState(base);
    const err = await other.appendState({ ...range, from: base.tokens.length - 3 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_STATE', message: expect.stringMatching(/the saved range starts at position \d+ but the sequence holds \d+ positions/) });
    expect(other.cachedTokens).toBe(base.tokens.length - 3);
    await other.restoreState(base);
    await other.appendState(range);
    expect(other.cachedTokens).toBe(base.tokens.length + range.tokens.length);
    let resumed = '';
    let cached = -1;
    for await (const c of other.generate([], { ...greedy, maxTokens: 10 })) {
      resumed += c.text;
      if (c.timings) cached = c.timings.cachedTokens;
    }
    // all but the last token came from the restored cells (the last one is evaluated again for its logits)
    expect(cached).toBe(base.tokens.length + range.tokens.length - 1);
    expect(resumed).toBe(expected);
    await a.dispose();
    await b.dispose();
  });
});
