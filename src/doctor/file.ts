/**
 * Is the model file whole? Against its pull record (size, and SHA-256 when the record has one:
 * the file is streamed through the hash and the time reported), and always against what its own
 * header and tensor table say its size must be: a truncated download is shorter than the end of
 * its last tensor.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Hermes3Error } from '../errors.js';
import { readGgufHeaderUnchecked } from '../gguf/reader.js';
import { readPullRecord, type PullRecord } from '../models/records.js';
import type { Finding } from './types.js';

const size = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);
const quote = (p: string) => (/^[\w./+-]+$/.test(p) ? p : `'${p.replace(/'/g, "'\\''")}'`);

/** What to run to get a whole copy: the record's reference when the file was pulled. */
function downloadAgain(path: string, record: PullRecord | undefined): string {
  if (record) return `download it again: rm ${quote(path)} && hermes3 pull ${record.ref}`;
  return (
    'download it again: hermes3 pull REF with the reference it came from (e.g. hermes3 pull hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M), ' +
    'or fetch it again from where you got it; a download that stopped early leaves a short file'
  );
}

/** SHA-256 of a file, streamed; with the seconds it took. */
export async function sha256File(path: string): Promise<{ sha256: string; seconds: number }> {
  const started = performance.now();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return { sha256: hash.digest('hex'), seconds: (performance.now() - started) / 1000 };
}

/** The header's view: readable, and at least as long as its tensor table says. */
async function checkAgainstHeader(path: string, record: PullRecord | undefined): Promise<Finding> {
  const id = 'model.file';
  try {
    const { header, fileBytes, dataEnd } = await readGgufHeaderUnchecked(path);
    const last = header.tensors.reduce<(typeof header.tensors)[number] | undefined>((a, t) => (!a || t.offset + t.sizeBytes > a.offset + a.sizeBytes ? t : a), undefined);
    const data = { fileBytes, expectedBytes: dataEnd, tensors: header.tensors.length };
    if (fileBytes < dataEnd) {
      const missing = dataEnd - fileBytes;
      return {
        id,
        status: 'fail',
        title: 'the model file is truncated',
        detail: `${path} has ${fileBytes} bytes, but its tensor table needs ${dataEnd} (${size(dataEnd)}): ${missing} bytes (${((missing / dataEnd) * 100).toFixed(1)}%) are missing${last ? `; the last tensor, ${last.name}, ends at byte ${dataEnd}` : ''}. llama.cpp refuses such a file.`,
        fix: downloadAgain(path, record),
        data,
      };
    }
    if (fileBytes > dataEnd + header.alignment) {
      return {
        id,
        status: 'info',
        title: 'the model file has bytes after its last tensor',
        detail: `${path} has ${fileBytes} bytes; its tensors end at byte ${dataEnd}, so ${fileBytes - dataEnd} bytes follow them. llama.cpp ignores them.`,
        fix: `nothing needed if the model loads and answers sensibly; otherwise ${downloadAgain(path, record)}`,
        data,
      };
    }
    return { id, status: 'ok', title: 'the model file is whole', detail: `${size(fileBytes)}, as its header and ${header.tensors.length} tensors say (${dataEnd} bytes)`, data };
  } catch (err) {
    if (err instanceof Hermes3Error && err.code === 'ERR_FILE_NOT_FOUND') {
      return { id, status: 'fail', title: 'the model file is missing', detail: err.message, fix: `check the path given to --model (${path})${record ? `, or ${downloadAgain(path, record)}` : ''}` };
    }
    if (err instanceof Hermes3Error && err.code === 'ERR_NOT_A_FILE') {
      return { id, status: 'fail', title: 'the model path is a directory', detail: err.message, fix: `pass the path of the .gguf file inside it to --model` };
    }
    if (err instanceof Hermes3Error && err.code === 'ERR_FILE_UNREADABLE') {
      return { id, status: 'fail', title: 'the model file cannot be read', detail: err.message, fix: `give the user running hermes3 read access to ${path} (ls -l ${path})` };
    }
    const message = (err as Error).message;
    return {
      id,
      status: 'fail',
      title: /truncated|is empty \(0 bytes\)/.test(message) ? 'the model file is truncated inside its header' : 'the model file is not a readable GGUF',
      detail: message,
      fix: downloadAgain(path, record),
    };
  }
}

/** Where a record's file lies: its path is relative to the models folder the record's first file is in. */
function recordFilePath(modelFile: string, record: PullRecord, file: string): string {
  const first = record.files[0]?.path ?? '';
  const abs = resolve(modelFile);
  const rel = first.split('/').join(sep);
  if (first && abs.endsWith(sep + rel)) return join(abs.slice(0, abs.length - rel.length), file.split('/').join(sep));
  return join(dirname(abs), basename(file));
}

/** Each file of a pulled model against its record: size, then SHA-256 where the record has one. */
async function checkAgainstRecord(modelFile: string, record: PullRecord, onProgress?: (message: string) => void): Promise<Finding> {
  const id = 'model.record';
  const results: string[] = [];
  let hashSeconds = 0;
  let hashedBytes = 0;
  for (const f of record.files) {
    const path = recordFilePath(modelFile, record, f.path);
    let actual: number;
    try {
      actual = (await stat(path)).size;
    } catch {
      return { id, status: 'fail', title: 'a file of the pulled model is missing', detail: `${path} (listed in ${basename(modelFile)}.hermes3.json, pulled from ${record.ref}) does not exist.`, fix: downloadAgain(modelFile, record) };
    }
    if (actual !== f.size) {
      return {
        id,
        status: 'fail',
        title: actual < f.size ? 'the model file is shorter than when it was pulled' : 'the model file is not the size it was pulled with',
        detail: `${path} has ${actual} bytes; the pull record (${record.ref}, ${record.pulledAt}) says ${f.size}.`,
        fix: downloadAgain(modelFile, record),
        data: { path, size: actual, expectedSize: f.size },
      };
    }
    if (!f.sha256) {
      results.push(`${basename(path)}: ${size(actual)} as recorded (no SHA-256 in the record)`);
      continue;
    }
    onProgress?.(`hashing ${path} (${size(actual)})`);
    const { sha256, seconds } = await sha256File(path);
    hashSeconds += seconds;
    hashedBytes += actual;
    if (sha256 !== f.sha256.toLowerCase()) {
      return {
        id,
        status: 'fail',
        title: 'the model file does not match its SHA-256',
        detail: `${path}: SHA-256 ${sha256}, but the pull record (${record.ref}) has ${f.sha256}; the size matches, so the content changed or was corrupted (hashed in ${seconds.toFixed(1)} s).`,
        fix: downloadAgain(modelFile, record),
        data: { path, sha256, expectedSha256: f.sha256, hashSeconds: seconds },
      };
    }
    results.push(`${basename(path)}: ${size(actual)}, SHA-256 matches (hashed in ${seconds.toFixed(1)} s)`);
  }
  return {
    id,
    status: 'ok',
    title: `the model matches its pull record (${record.ref})`,
    detail: results.join('; ') + (hashedBytes > 0 ? `; ${(hashedBytes / 2 ** 20 / Math.max(hashSeconds, 1e-3)).toFixed(0)} MiB/s` : ''),
    data: { ref: record.ref, files: record.files.length, hashSeconds, hashedBytes },
  };
}

/** The model file's findings: against its header always, against its pull record when it has one. */
export async function checkModelFile(path: string, onProgress?: (message: string) => void): Promise<Finding[]> {
  const record = await readPullRecord(path);
  const out = [await checkAgainstHeader(path, record)];
  if (record) out.push(await checkAgainstRecord(path, record, onProgress));
  else out[0].detail += `${out[0].detail.endsWith('.') ? '' : '.'} No pull record beside it (not pulled with hermes3 pull), so there is no SHA-256 to compare.`;
  return out;
}
