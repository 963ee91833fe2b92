/**
 * Model references and how they map to files. Pure functions: parsing, quantization tags, the
 * choice of files from a repository listing, split GGUFs and the models directory's layout.
 *
 *   hf:OWNER/REPO:QUANT            the GGUF whose name (or folder) carries QUANT, any case
 *   hf:OWNER/REPO/PATH/FILE.gguf   one file of the repository
 *   hf:OWNER/REPO                  the repository's only GGUF model
 *   ...@REVISION                   a branch, tag or commit (default main), at the end
 *   https://HOST/PATH/FILE.gguf    a plain URL (http:// only for the loopback host)
 * `hf.co/` and `huggingface.co/` (Ollama's spelling) stand for `hf:`.
 */
import { OptionsError, ModelNotFoundError } from '../errors.js';

export interface HfRef {
  kind: 'hf';
  /** the reference as written */
  text: string;
  owner: string;
  repo: string;
  revision: string;
  quant?: string;
  file?: string;
}

export interface UrlRef {
  kind: 'url';
  text: string;
  url: URL;
  /** from a `#sha256=HEX` fragment: the file is verified against it */
  sha256?: string;
}

export type ModelRef = HfRef | UrlRef;

/** A file of a repository listing: its published size and hashes. */
export interface RemoteFile {
  /** path inside the repository (or the URL's file name) */
  path: string;
  size?: number;
  /** Hugging Face's LFS oid */
  sha256?: string;
  /** the git blob id of a file kept in git itself (not LFS) */
  gitSha1?: string;
}

const EXPECTED = `Expected a model reference (hf:OWNER/REPO[:QUANT | /PATH.gguf][@REVISION], or an https:// URL to a .gguf file)`;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Whether `text` is written as a reference rather than a file path. */
export function isModelRef(text: string): boolean {
  return /^(hf:|hf\.co\/|huggingface\.co\/|https?:\/\/)/i.test(text);
}

/** Parses a reference; a malformed one is an OptionsError that shows the accepted forms. */
export function parseRef(text: string): ModelRef {
  const bad = (why: string) => new OptionsError(`${EXPECTED} but received '${text}': ${why}`);
  if (/^https?:\/\//i.test(text)) return parseUrlRef(text, bad);
  const m = /^(?:hf:|hf\.co\/|huggingface\.co\/)(.*)$/i.exec(text);
  if (!m) throw bad('it starts with neither hf: nor https://');
  let body = m[1];
  let revision = 'main';
  // @REVISION at the end (it may hold slashes: refs/pr/1), or right after the repository
  const tail = /^([^@]+)@([^@:]+)$/.exec(body);
  const middle = /^([^/@]+\/[^/@:]+)@([^/@:]+)(:[^@]+)$/.exec(body);
  if (middle) {
    body = middle[1] + middle[3];
    revision = middle[2];
  } else if (tail) {
    body = tail[1];
    revision = tail[2];
  } else if (body.includes('@')) {
    throw bad('put @REVISION at the end');
  }
  if (revision.toLowerCase().endsWith('.gguf')) throw bad('put @REVISION at the end, after the file path');
  const colon = body.indexOf(':');
  const quant = colon >= 0 ? body.slice(colon + 1) : undefined;
  const path = colon >= 0 ? body.slice(0, colon) : body;
  const [owner, repo, ...rest] = path.split('/');
  if (!owner || !repo || !NAME.test(owner) || !NAME.test(repo)) throw bad('expected OWNER/REPO after hf:');
  if (quant !== undefined && (rest.length > 0 || !/^[A-Za-z0-9_.-]+$/.test(quant))) throw bad(`expected a quantization such as Q4_K_M after ':'`);
  let file: string | undefined;
  if (rest.length > 0) {
    file = rest.join('/');
    if (!file.toLowerCase().endsWith('.gguf')) throw bad(`expected a path to a .gguf file after OWNER/REPO (or :QUANT), received '${file}'`);
    if (rest.some((s) => s === '' || s === '.' || s === '..')) throw bad('the file path has an empty, . or .. segment');
  }
  return { kind: 'hf', text, owner, repo, revision, quant, file };
}

function parseUrlRef(text: string, bad: (why: string) => OptionsError): UrlRef {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad('it is not a valid URL');
  }
  if (url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw bad('plain http:// is only accepted for the loopback host; use https://');
  }
  if (!url.pathname.toLowerCase().endsWith('.gguf')) throw bad('the URL does not name a .gguf file');
  const sha = /^#sha256=([0-9a-f]{64})$/i.exec(url.hash)?.[1];
  if (url.hash && !sha) throw bad('the only fragment understood is #sha256=<64 hex digits>');
  url.hash = '';
  return { kind: 'url', text, url, sha256: sha?.toLowerCase() };
}

/** A key equal for references that name the same thing (case of the quantization, default revision). */
export function refKey(ref: ModelRef): string {
  if (ref.kind === 'url') return ref.url.href;
  const base = `hf:${ref.owner.toLowerCase()}/${ref.repo.toLowerCase()}`;
  const what = ref.file ? `/${ref.file}` : ref.quant ? `:${ref.quant.toUpperCase()}` : '';
  return `${base}${what}@${ref.revision}`;
}

/** `hf:OWNER/REPO[@REV]`: the repository part of a reference, for messages. */
export function repoLabel(ref: HfRef): string {
  return `hf:${ref.owner}/${ref.repo}${ref.revision === 'main' ? '' : `@${ref.revision}`}`;
}

export interface SplitInfo {
  /** the path without -0000N-of-0000M.gguf */
  prefix: string;
  index: number;
  count: number;
}

/** `NAME-00001-of-00003.gguf` → { prefix: NAME, index: 1, count: 3 }; undefined for a single file. */
export function splitInfo(path: string): SplitInfo | undefined {
  const m = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i.exec(path);
  return m ? { prefix: m[1], index: Number(m[2]), count: Number(m[3]) } : undefined;
}

/** The name of part `index` of a split GGUF whose first part is `first`. */
export function splitPartPath(first: string, index: number, count: number): string {
  const s = splitInfo(first);
  if (!s) return first;
  const n = (v: number) => String(v).padStart(5, '0');
  return `${s.prefix}-${n(index)}-of-${n(count)}.gguf`;
}

const QUANT_TOKEN = /^(?:I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|F16|BF16|F32|MXFP4(?:_MOE)?)$/i;

/** The quantization a path carries in its file name or folders (upper case), e.g. Q4_K_M. */
export function quantOf(path: string): string | undefined {
  const stem = (splitInfo(path)?.prefix ?? path).replace(/\.gguf$/i, '');
  const tokens = stem.split(/[-./]/).filter((t) => QUANT_TOKEN.test(t));
  return tokens.at(-1)?.toUpperCase();
}

/** A GGUF that is a model, not a projector, an importance matrix or a draft sidecar. */
export function isModelGguf(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  return name.endsWith('.gguf') && !/mmproj|imatrix|mtp-|eagle3-|dflash-/.test(name);
}

/** Files that can be chosen on their own: whole files and the first parts of split ones. */
function models(files: RemoteFile[]): RemoteFile[] {
  return files.filter((f) => isModelGguf(f.path) && (splitInfo(f.path)?.index ?? 1) === 1).sort((a, b) => a.path.localeCompare(b.path));
}

/** The quantizations a listing offers, largest first by bits then name. */
export function availableQuants(files: RemoteFile[]): string[] {
  const set = new Set<string>();
  for (const f of models(files)) {
    const q = quantOf(f.path);
    if (q) set.add(q);
  }
  const bits = (q: string) => Number(/\d+/.exec(q)?.[0] ?? 0);
  return [...set].sort((a, b) => bits(b) - bits(a) || a.localeCompare(b));
}

/** Every part of the model whose first (or only) file is `primary`, in order; a missing part is an error. */
export function partsOf(primary: RemoteFile, files: RemoteFile[], label: string): RemoteFile[] {
  const s = splitInfo(primary.path);
  if (!s) return [primary];
  const byPath = new Map(files.map((f) => [f.path, f]));
  const parts: RemoteFile[] = [];
  for (let i = 1; i <= s.count; i++) {
    const path = splitPartPath(primary.path, i, s.count);
    const part = byPath.get(path);
    if (!part) throw new ModelNotFoundError(`${label}: part ${i} of ${s.count} (${path}) is missing from the repository, so the split model cannot be loaded; pick another quantization or file`, [...byPath.keys()]);
    parts.push(part);
  }
  return parts;
}

/** The files a reference names in a repository listing: the model's parts in order (the first is loaded). */
export function pickFiles(ref: HfRef, files: RemoteFile[]): RemoteFile[] {
  const label = repoLabel(ref);
  const candidates = models(files);
  const ggufs = files.filter((f) => f.path.toLowerCase().endsWith('.gguf')).map((f) => f.path).sort();
  if (ref.file) {
    const file = files.find((f) => f.path === ref.file) ?? files.find((f) => f.path.toLowerCase() === ref.file!.toLowerCase());
    if (!file) {
      throw new ModelNotFoundError(
        `${label} has no file ${ref.file}. Its GGUF files: ${ggufs.join(', ') || 'none'}. Name one of them, or a quantization with :QUANT`,
        ggufs,
      );
    }
    const s = splitInfo(file.path);
    const first = s ? (files.find((f) => f.path === splitPartPath(file.path, 1, s.count)) ?? file) : file;
    return partsOf(first, files, label);
  }
  const quants = availableQuants(files);
  const suggest = () =>
    quants.length > 0
      ? `It has: ${quants.join(', ')}. Pull one of those, e.g. ${label}:${quants.includes('Q4_K_M') ? 'Q4_K_M' : quants[0]}`
      : `Its GGUF files: ${ggufs.join(', ') || 'none'}`;
  if (ref.quant) {
    const q = ref.quant.toUpperCase();
    let found = candidates.filter((f) => quantOf(f.path) === q);
    if (found.length === 0) {
      // tags outside the usual names (UD-Q4_K_XL, ...): the tag between separators anywhere in the path
      const escaped = q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const re = new RegExp(`(^|[-._/])${escaped}([-._/])`, 'i');
      found = candidates.filter((f) => re.test(f.path));
    }
    if (found.length === 0) {
      throw new ModelNotFoundError(`${label} has no GGUF file for quantization ${ref.quant}. ${suggest()}`, quants.length > 0 ? quants : ggufs);
    }
    return partsOf(found[0], files, label);
  }
  if (candidates.length === 1) return partsOf(candidates[0], files, label);
  if (candidates.length === 0) throw new ModelNotFoundError(`${label} has no GGUF model files: it is not a GGUF repository (look for one whose name ends in -GGUF)`, []);
  throw new ModelNotFoundError(`${label} has ${candidates.length} GGUF models; name one with :QUANT. ${suggest()}`, quants.length > 0 ? quants : candidates.map((f) => f.path));
}

/** Where a file lives in the models directory, relative to it (always with forward slashes). */
export function localPath(ref: ModelRef, remotePath: string): string {
  if (ref.kind === 'hf') return `${ref.owner}/${ref.repo}/${remotePath}`;
  // a port's colon is not allowed in Windows file names
  return `urls/${ref.url.host.replace(/:/g, '_')}/${remotePath}`;
}

/** The file name a URL reference saves to (its last path segment, decoded). */
export function urlFileName(url: URL): string {
  const name = decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
  if (!name || name.includes('/') || name.includes('\\') || name === '..') throw new OptionsError(`Expected a URL ending in a file name but received '${url.href}'`);
  return name;
}
