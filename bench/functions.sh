#!/usr/bin/env bash
# Benchmarks of Edge Functions (they print figures and ratios measured in the same run; they assert nothing).
# Everything listens on loopback; parts 1–3 serve the functions by the runtime/functions supervisor through
# its router alone (the `serve_dir` example); part 4 goes through a whole `supactl up` (gateway: key lookup,
# JWT minting, verify_jwt; then the supervisor).
#  1. Cold start: time to the first response of a function whose worker is not running, against a bare Deno
#     process running the same handler (`deno serve`) from its spawn to its first response (target: cold start
#     ≤ bare start + 150 ms).
#  2. Warm invocations: req/s at 16 connections (wrk) through the router vs the same handler on `deno serve`
#     alone (target ≥ 0.7×); for reference, Debian's nginx doing a plain `proxy_pass` to `deno serve`, one hop
#     and two hops (nginx → nginx → deno, as many hops as gateway → supervisor → worker): what any reverse
#     proxy in front of Deno reaches on the same cores.
#  3. Memory: resident memory per idle warm worker, and of the `deno serve` process for comparison.
#  4. Warm invocations through the gateway of a release `supactl up` (a project, the same handler deployed
#     through the admin API with verify_jwt, called with the project's publishable key) vs `deno serve`
#     alone in the same run (target >= 0.7x), and the CPU per request of the supactl process (gateway and
#     supervisor; the Deno worker is a child process, not counted) from pidstat.
# Usage: bench/functions.sh [seconds per run, default 10]   (COLD_RUNS=20 cold starts; PROFILE=profiling)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
COLD_RUNS="${COLD_RUNS:-20}"
DENO="$(scripts/setup.sh wrk pidstat:sysstat nginx deno | tail -n 1)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
PROFILE="${PROFILE:-release}"   # or `profiling`: release without LTO, minutes to build
cargo build --profile "$PROFILE" -q -p functions --example serve_dir
BIN="$CARGO_TARGET_DIR/$PROFILE/examples/serve_dir"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA="$(mktemp -d /tmp/supactl-fnbench-XXXX)"
chmod o+x "$DATA"   # supactl up (part 4) runs PostgreSQL as its own user, which must reach its data directory
PORT=$(free_port); DENO_PORT=$(free_port)
SERVE_PID=""; DENO_PID=""
UP_PID=""
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$UP_PID" ] && kill -INT "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null || true
  [ -n "$SERVE_PID" ] && kill -INT "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
  [ -n "$DENO_PID" ] && kill "$DENO_PID" 2>/dev/null && wait "$DENO_PID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

# One handler, in the module shape both `deno serve` and the supervisor run.
HANDLER='export default {
  fetch(_req: Request) {
    return new Response(JSON.stringify({ hello: "world" }), { headers: { "content-type": "application/json" } });
  },
};'
for i in $(seq 1 "$COLD_RUNS"); do
  mkdir -p "$DATA/fns/hello$i"
  printf '%s\n' "$HANDLER" >"$DATA/fns/hello$i/index.ts"
done
mkdir -p "$DATA/bare"
printf '%s\n' "$HANDLER" >"$DATA/bare/index.ts"
export DENO_DIR="$DATA/deno-dir"   # the bare runs' module cache, as the supervisor keeps its own

"$BIN" "$DATA/fns" "$PORT" 2>"$DATA/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/functions/v1/" && break; sleep 0.1; done

echo "== cold start ($COLD_RUNS runs each)"
python3 - "$DENO" "$DATA" "$PORT" "$COLD_RUNS" <<'PY'
import http.client, os, socket, statistics, subprocess, sys, time
deno, data, port, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse(); r.read(); c.close()
    return r.status

def bare_start():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    t0 = time.perf_counter()
    proc = subprocess.Popen([deno, "serve", "--quiet", "--no-config", f"--port={p}", f"{data}/bare/index.ts"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if get(p, "/") == 200:
                    return time.perf_counter() - t0
            except OSError:
                time.sleep(0.001)
    finally:
        proc.kill(); proc.wait()

bare_start()  # fills the module cache, as the supervisor's first start did for its own
bare = [bare_start() for _ in range(runs)]
cold = []
for i in range(1, runs + 1):
    t0 = time.perf_counter()
    status = get(port, f"/functions/v1/hello{i}")
    cold.append(time.perf_counter() - t0)
    assert status == 200, status
b, c = statistics.median(bare) * 1000, statistics.median(cold) * 1000
print(f"bare deno serve, spawn to first response: median {b:.0f} ms (min {min(bare)*1000:.0f}, max {max(bare)*1000:.0f})")
print(f"supervisor cold start to first response:  median {c:.0f} ms (min {min(cold)*1000:.0f}, max {max(cold)*1000:.0f})")
print(f"cold start over bare start: {c - b:+.0f} ms (target <= +150 ms)")
PY

echo "== memory per idle warm worker ($COLD_RUNS workers)"
sleep 1
RSS_KB=$(ps --ppid "$SERVE_PID" -o rss= | awk '{s+=$1; n++} END {if (n) printf "%d %d", s/n, n; else print "0 0"}')
set -- $RSS_KB
echo "worker RSS: $(( $1 / 1024 )) MiB average over $2 deno processes"

echo "== warm invocations, 16 connections, ${DURATION}s"
"$DENO" serve --quiet --no-config --port="$DENO_PORT" "$DATA/bare/index.ts" >/dev/null 2>&1 &
DENO_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$DENO_PORT/" && break; sleep 0.1; done
echo "deno serve alone: RSS $(( $(ps -o rss= -p "$DENO_PID") / 1024 )) MiB"
curl -sf "http://127.0.0.1:$PORT/functions/v1/hello1" >/dev/null
wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$PORT/functions/v1/hello1" >"$DATA/wrk-sup.txt"
wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$DENO_PORT/" >"$DATA/wrk-deno.txt"
SUP=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk-sup.txt")
ALONE=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk-deno.txt")
grep -H -E "Latency|Non-2xx" "$DATA/wrk-sup.txt" "$DATA/wrk-deno.txt" | sed "s|$DATA/||" || true
echo "through the supervisor: $SUP req/s; deno serve alone: $ALONE req/s"
python3 -c "print(f'ratio supervisor / deno serve = {float(\"$SUP\")/float(\"$ALONE\"):.3f} (target >= 0.7)')"
. bench/nginx.sh
NGX1=$(free_port); NGX2=$(free_port)
proxy_to() { echo "upstream u { server 127.0.0.1:$1; keepalive 64; }
  server { listen 127.0.0.1:$2; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"; }
nginx_conf hop1 auto "$(proxy_to "$DENO_PORT" "$NGX1")" off
nginx_conf hop2 auto "$(proxy_to "$NGX1" "$NGX2")" off
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$NGX2/" && break; sleep 0.1; done
wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$NGX1/" >"$DATA/wrk-ngx1.txt"
wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$NGX2/" >"$DATA/wrk-ngx2.txt"
H1=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk-ngx1.txt")
H2=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk-ngx2.txt")
python3 -c "a=float('$ALONE'); print(f'reference: nginx proxy_pass -> deno serve {float(\"$H1\"):.0f} req/s ({float(\"$H1\")/a:.3f}x); nginx -> nginx -> deno serve {float(\"$H2\"):.0f} req/s ({float(\"$H2\")/a:.3f}x)')"

echo "== warm invocations through the gateway (release supactl up), 16 connections, ${DURATION}s"
UPBIN="${SUPACTL_BIN:-$CARGO_TARGET_DIR/$PROFILE/supactl}"
[ -n "${SUPACTL_BIN:-}" ] || cargo build --profile "$PROFILE" -q -p supactl
GW=$(free_port); ADMIN=$(free_port); DB=$(free_port)
"$UPBIN" up --data-dir "$DATA/up" --port "$GW" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
UP_PID=$!
for _ in $(seq 1 300); do
  [ -f "$DATA/up/state.json" ] && curl -sf -o /dev/null "http://127.0.0.1:$ADMIN/health" && break
  sleep 0.2
done
read -r FN_URL PK < <(python3 - "$DATA/up/state.json" "$ADMIN" "$HANDLER" <<'PY'
import json, sys, urllib.request
state, admin, handler = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
def call(method, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/admin/v1{path}", method=method,
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {state['admin_key']}",
                                          "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=120))["data"]
p = call("POST", "/projects", {"name": "fnbench"})
call("POST", f"/projects/{p['ref']}/functions", {"slug": "hello", "body": handler, "verify_jwt": True})
pk = next(k["opaque_key"] for k in p["api_keys"] if k["type"] == "publishable")
print(f"{p['api_url']}/functions/v1/hello", pk)
PY
)
for _ in $(seq 1 100); do curl -sf -o /dev/null -H "apikey: $PK" "$FN_URL" && break; sleep 0.2; done
UP_CPU="$DATA/up.cpu"
(sleep 1; pidstat -u -p "$UP_PID" $((DURATION - 2)) 1 >"$UP_CPU" 2>/dev/null) &
PIDSTAT=$!
wrk -t2 -c16 -d"${DURATION}s" -H "apikey: $PK" "$FN_URL" >"$DATA/wrk-gw.txt"
wait "$PIDSTAT" || true
wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$DENO_PORT/" >"$DATA/wrk-deno2.txt"
GWR=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk-gw.txt")
ALONE2=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk-deno2.txt")
grep -H -E "Latency|Non-2xx" "$DATA/wrk-gw.txt" | sed "s|$DATA/||" || true
UPCPU=$(awk '/^Average/ {print $8}' "$UP_CPU" | tail -n 1)
echo "through the gateway: $GWR req/s (supactl process at ${UPCPU:-?} % CPU); deno serve alone: $ALONE2 req/s"
python3 -c "r=float('$GWR'); a=float('$ALONE2'); c='${UPCPU:-}'; print(f'ratio gateway / deno serve = {r/a:.3f} (target >= 0.7)' + (f'; supactl CPU per request {float(c)/100/r*1e6:.0f} us' if c else ''))"
