/** The chat page: static files from the package's web/ folder and the Markdown renderer, no build step. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ServerState } from './state.js';

const WEB = new URL('../../web/', import.meta.url);
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/markdown.js': 'markdown.js',
  '/style.css': 'style.css',
};
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const SECURITY = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function registerWebPage(app: FastifyInstance, _state: ServerState): void {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [route, file] of Object.entries(FILES)) {
    files.set(route, { body: readFileSync(new URL(file, WEB)), type: TYPES[file.split('.').pop()!] });
  }
  // marked's browser build (UMD: sets window.marked)
  const markedPath = createRequire(import.meta.url).resolve('marked');
  files.set('/marked.js', { body: readFileSync(join(dirname(markedPath), 'marked.umd.js')), type: TYPES.js });
  for (const [route, f] of files) {
    app.get(route, async (_request, reply) => reply.headers(SECURITY).header('cache-control', 'no-cache').type(f.type).send(f.body));
  }
}
