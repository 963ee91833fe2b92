/**
 * The Hugging Face Hub API, the parts a pull needs: a repository's file list (with each LFS
 * file's SHA-256) and the /resolve/ URL of a file. HF_ENDPOINT points at a mirror, HF_TOKEN
 * opens gated and private repositories.
 */
import { z } from 'zod';
import { DownloadError, Hermes3Error, ModelNotFoundError } from '../errors.js';
import { readJson, request } from './http.js';
import { repoLabel, type HfRef, type RemoteFile } from './refs.js';

export interface HubConfig {
  /** without a trailing slash */
  endpoint: string;
  token?: string;
}

export function hubConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const endpoint = (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  return { endpoint, token: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined };
}

/** The bearer token, for requests to the endpoint's own host only. */
export function hubAuth(config: HubConfig): { token: string; origin: string } | undefined {
  return config.token ? { token: config.token, origin: new URL(config.endpoint).origin } : undefined;
}

const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');

/** `{endpoint}/{owner}/{repo}/resolve/{revision}/{path}`: answered with a redirect to the bytes. */
export function resolveUrl(ref: HfRef, path: string, config: HubConfig): string {
  return `${config.endpoint}/${enc(ref.owner)}/${enc(ref.repo)}/resolve/${encodeURIComponent(ref.revision)}/${enc(path)}`;
}

/** The typed error for a failed answer from the Hub, with what to do about it. */
export function hubError(response: Response, ref: HfRef, config: HubConfig, what: string, url: string): Hermes3Error {
  const label = repoLabel(ref);
  const code = response.headers.get('x-error-code') ?? '';
  const page = `${config.endpoint}/${ref.owner}/${ref.repo}`;
  const status = response.status;
  // the Hub answers 401 RepoNotFound to anonymous requests for private and missing repositories alike
  if (code === 'RepoNotFound') {
    const priv = config.token ? '' : ` (a private one needs HF_TOKEN)`;
    return new ModelNotFoundError(`${label}: there is no repository ${ref.owner}/${ref.repo} on ${config.endpoint}${priv}; check the spelling (e.g. hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M)`);
  }
  if (status === 401 || status === 403 || code === 'GatedRepo') {
    const gated = code === 'GatedRepo' ? 'is gated' : status === 401 ? 'may be gated or private (or may not exist)' : 'is gated or private';
    const todo = config.token
      ? `the token in HF_TOKEN does not grant access: accept the repository's terms on ${page} with that account, or use a token with read access`
      : `accept its terms on ${page}, create a read token at ${config.endpoint}/settings/tokens and set HF_TOKEN to it`;
    return new DownloadError(`${label}: ${what} was refused (HTTP ${status}): the repository ${gated}; ${todo}`, { url, status });
  }
  if (status === 404) {
    if (code === 'RevisionNotFound') return new ModelNotFoundError(`${label}: there is no revision '${ref.revision}' in ${ref.owner}/${ref.repo}; use a branch, tag or commit that exists (default main)`);
    if (code === 'EntryNotFound') return new ModelNotFoundError(`${label}: ${what} found no such file at revision ${ref.revision}; run the pull again to list the files anew`);
    return new ModelNotFoundError(`${label}: there is no repository ${ref.owner}/${ref.repo} on ${config.endpoint} (HTTP 404); check the spelling (e.g. hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M)`);
  }
  if (status === 429) return new DownloadError(`${label}: ${config.endpoint} is rate-limiting requests (HTTP 429); wait a minute${config.token ? '' : ', or set HF_TOKEN (signed-in requests get higher limits)'} and run the pull again`, { url, status });
  return new DownloadError(`${label}: ${what} failed with HTTP ${status} ${response.statusText} from ${new URL(url).host}; run the pull again later (it resumes)`, { url, status });
}

const treeEntry = z.looseObject({
  type: z.string(),
  path: z.string(),
  size: z.number().optional(),
  oid: z.string().optional(),
  lfs: z.looseObject({ oid: z.string(), size: z.number() }).optional(),
});

/** The `rel="next"` URL of a Link header: the Hub pages long listings. */
function nextPage(link: string | null, base: string): string | undefined {
  const m = link && /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return m ? new URL(m[1], base).href : undefined;
}

/** Every file of a repository at a revision, with the published sizes and hashes. */
export async function listRepoFiles(ref: HfRef, config: HubConfig, signal?: AbortSignal): Promise<RemoteFile[]> {
  let url: string | undefined = `${config.endpoint}/api/models/${enc(ref.owner)}/${enc(ref.repo)}/tree/${encodeURIComponent(ref.revision)}?recursive=true`;
  const files: RemoteFile[] = [];
  for (let page = 0; url && page < 1000; page++) {
    const { response } = await request(url, { signal, auth: hubAuth(config), headers: { accept: 'application/json' } });
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw hubError(response, ref, config, 'listing its files', url);
    }
    const parsed = z.array(treeEntry).safeParse(await readJson(response, url));
    if (!parsed.success) throw new DownloadError(`${url} did not answer with a file list (an array of { type, path, size }): is HF_ENDPOINT a Hugging Face endpoint?`, { url });
    for (const e of parsed.data) {
      if (e.type !== 'file') continue;
      const sha256 = e.lfs && /^[0-9a-f]{64}$/i.test(e.lfs.oid) ? e.lfs.oid.toLowerCase() : undefined;
      const gitSha1 = !e.lfs && e.oid && /^[0-9a-f]{40}$/i.test(e.oid) ? e.oid.toLowerCase() : undefined;
      files.push({ path: e.path, size: e.lfs?.size ?? e.size, sha256, gitSha1 });
    }
    url = nextPage(response.headers.get('link'), url);
  }
  return files;
}
