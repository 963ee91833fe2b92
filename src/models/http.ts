/**
 * HTTP requests for pulls: redirects followed by hand so that a token never travels to another
 * host (Hugging Face answers /resolve/ with a redirect to its CDN), no transparent decompression
 * (byte ranges and sizes must mean the bytes of the file), and failures as typed errors.
 */
import { AbortError, DownloadError } from '../errors.js';

export interface RequestOptions {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** a bearer token, sent only to `origin` */
  auth?: { token: string; origin: string };
}

const MAX_REDIRECTS = 10;

/** Throws AbortError when `signal` is aborted, else a DownloadError naming the host that could not be reached. */
export function networkError(err: unknown, url: string, signal: AbortSignal | undefined, hint = 'check the network connection'): Error {
  if (signal?.aborted) return new AbortError('the download was aborted; the partial file is kept, and pulling again resumes it', { cause: err });
  if (err instanceof AbortError || err instanceof DownloadError) return err;
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const why = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return new DownloadError(`could not download from ${new URL(url).host} (${why}): ${hint}, then run it again (a pull resumes where it stopped)`, { url, cause: err });
}

/** A request that follows up to 10 redirects; the answer is the first response that is not a redirect. */
export async function request(url: string, options: RequestOptions = {}): Promise<{ response: Response; url: string }> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'hermes3-native', ...options.headers };
    if (options.auth && new URL(current).origin === options.auth.origin) headers.authorization = `Bearer ${options.auth.token}`;
    let response: Response;
    try {
      response = await fetch(current, { method: options.method ?? 'GET', headers, redirect: 'manual', signal: options.signal });
    } catch (err) {
      throw networkError(err, current, options.signal);
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => {});
      current = new URL(location, current).href;
      continue;
    }
    return { response, url: current };
  }
  throw new DownloadError(`${url} redirected more than ${MAX_REDIRECTS} times; the server or a proxy is misconfigured`, { url });
}

/** Reads a response body as JSON, or throws a DownloadError saying what came instead. */
export async function readJson(response: Response, url: string): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DownloadError(`${url} answered with something other than JSON (${text.slice(0, 80).replace(/\s+/g, ' ')}…): is HF_ENDPOINT a Hugging Face endpoint?`, { url, cause: err });
  }
}
