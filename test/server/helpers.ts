/** A real server on 127.0.0.1 (a free port) over a synthetic model, for the API tests. */
import { loadModel, createServer, type Hermes3Server, type Model, type ServerOptions } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';

export interface Running {
  model: Model;
  server: Hermes3Server;
  url: string;
  close(): Promise<void>;
}

export async function startServer(options: Omit<ServerOptions, 'model'> = {}, modelPath: string = FIXTURES.q8): Promise<Running> {
  const model = await loadModel({ modelPath });
  const server = await createServer({ model, parallel: 2, ctx: 1024, ...options });
  const url = await server.listen({ port: 0 });
  return {
    model,
    server,
    url,
    async close() {
      await server.close();
      await model.dispose();
    },
  };
}

/** Polls `check` until it holds (at most `ms`). */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
