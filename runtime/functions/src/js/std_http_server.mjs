// Stands in for `https://deno.land/std@<version>/http/server.ts` (which cannot be fetched here): the older
// `serve(handler, options)` of Deno's standard library, over Deno.serve, which the worker bootstrap captures.
export function serve(handler, options = {}) {
  const server = Deno.serve({ ...options }, handler);
  return server.finished;
}

export async function serveListener(_listener, handler, options = {}) {
  return await serve(handler, options);
}

export class Server {
  #handler;
  constructor({ handler }) {
    this.#handler = handler;
  }
  listenAndServe() {
    return serve(this.#handler);
  }
}
