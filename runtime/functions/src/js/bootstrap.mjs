// supactl's worker bootstrap. Run as `deno run … bootstrap.mjs <socket path> <entrypoint URL>`:
// it loads the function's module, captures the handler that module gives to `Deno.serve` (or to std's
// `serve`, through the shim in std_http_server.mjs, or exports as `default.fetch`), and serves that handler
// on the worker's Unix socket.
// Console output becomes one record per call on stdout: "\x1e" + JSON {i: invocation id, l: level, m: text},
// so the supervisor can tell each invocation's lines apart; anything else a process prints stays raw. The
// supervisor sends each request in absolute form (so `req.url` is the http: URL the client asked for, not
// the socket's) with the invocation id in a header, and the request goes to the handler untouched.
import { AsyncLocalStorage } from "node:async_hooks";

const [socketPath, entryUrl] = Deno.args;
const INVOCATION = "x-supactl-invocation";
const encoder = new TextEncoder();
const invocation = new AsyncLocalStorage();

function emit(record) {
  Deno.stdout.writeSync(encoder.encode("\x1e" + JSON.stringify(record) + "\n"));
}

for (const level of ["log", "info", "warn", "error", "debug", "trace"]) {
  console[level] = (...args) => {
    const m = args.map((a) => (typeof a === "string" ? a : Deno.inspect(a))).join(" ");
    emit({ i: invocation.getStore() ?? null, l: level, m });
  };
}

const realServe = Deno.serve.bind(Deno);
let handler = null;
let registered;
const handlerSet = new Promise((resolve) => (registered = resolve));

// Deno.serve(handler) | Deno.serve(options, handler) | Deno.serve({ ...options, handler })
function captureServe(a, b) {
  const h = typeof a === "function" ? a : typeof b === "function" ? b : a?.handler;
  if (typeof h !== "function") throw new TypeError("Deno.serve: a handler function is required");
  if (handler !== null) throw new Error("Deno.serve may be called only once per function");
  handler = h;
  registered();
  const addr = { transport: "tcp", hostname: "0.0.0.0", port: 8000 };
  return {
    addr,
    finished: new Promise(() => {}),
    shutdown: async () => {},
    ref() {},
    unref() {},
    async [Symbol.asyncDispose]() {},
  };
}
Deno.serve = captureServe;

// A variable the project did not set reads as unset, as on Supabase (`Deno.env.get("X") ?? fallback`), where
// Deno's permission check would throw: only the project's own variables are readable (`--allow-env`), so
// the values of the rest stay out of reach either way.
const envGet = Deno.env.get.bind(Deno.env);
const envHas = Deno.env.has.bind(Deno.env);
const unsetIfDenied = (read) => (name) => {
  try {
    return read(name);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) return read === envHas ? false : undefined;
    throw e;
  }
};
Deno.env.get = unsetIfDenied(envGet);
Deno.env.has = unsetIfDenied(envHas);

// The supervisor holds this process's stdin: when the supervisor goes away, so does the worker.
(async () => {
  try {
    for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
  } finally {
    Deno.exit(0);
  }
})();

const module = await import(entryUrl);
// `export default { fetch }`, the module shape `deno serve` runs, when the module did not call Deno.serve
if (handler === null && typeof module.default?.fetch === "function") {
  captureServe(module.default.fetch.bind(module.default));
}
const timer = setTimeout(() => {
  console.error("the function's module did not call Deno.serve (or serve from std/http/server) at load");
  Deno.exit(70);
}, 5000);
await handlerSet;
clearTimeout(timer);

realServe({
  path: socketPath,
  onListen() {
    Deno.stdout.writeSync(encoder.encode("\x1e{\"ready\":true}\n"));
  },
  onError(error) {
    console.error(error);
    const body = JSON.stringify({ code: "function_error", message: "the function threw an error; see its logs", details: null, hint: null });
    return new Response(body, { status: 500, headers: { "content-type": "application/json; charset=utf-8" } });
  },
}, (req, info) => invocation.run(req.headers.get(INVOCATION), () => handler(req, info)));
