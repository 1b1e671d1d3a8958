#!/usr/bin/env bash
# The gateway's overhead, measured (it prints figures and ratios from one run; it asserts nothing).
# Everything listens on loopback. One trivial HTTP upstream (Debian's nginx answering a fixed JSON body) is
# called three ways, each by wrk with the same connections and duration:
#   1. the upstream alone;
#   2. through nginx doing a plain `proxy_pass` to it (keep-alive to the upstream, as the gateway does);
#   3. through a release `supactl serve gateway` (a real tenant-manager of a `supactl up` behind it): the
#      project's publishable key looked up, the role chosen, a JWT minted and signed, the request forwarded
#      over HTTP as to the functions service on ECS (`--functions-url` = the upstream).
# Printed: req/s of each, the gateway's and nginx's req/s ratio (target >= 0.8x), CPU per request of the
# gateway process and of the nginx proxy's workers (pidstat), and p50 latency at one connection of each path
# (the gateway's added p50 over the upstream alone: target < 0.2 ms).
# Usage: bench/gateway.sh [seconds per run, default 10] [connections, default 16]
# PROFILE: the Cargo profile to build (default release; `profiling` is release without LTO, minutes to
# build); SUPACTL_BIN: a binary instead of building one; SUPACTL_GATEWAY_BIN: another binary for the gateway
# under test alone (e.g. `cargo build --profile profiling`); PERF_DATA=FILE: `perf record` (DWARF call graphs) of the gateway
# during its run, into FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-16}"
scripts/setup.sh wrk pidstat:sysstat nginx >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
PROFILE="${PROFILE:-release}"
BIN="${SUPACTL_BIN:-$CARGO_TARGET_DIR/$PROFILE/supactl}"
[ -n "${SUPACTL_BIN:-}" ] || cargo build --profile "$PROFILE" -q -p supactl

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA="$(mktemp -d /tmp/supactl-gwbench-XXXX)"
chmod o+x "$DATA"   # supactl up runs PostgreSQL as its own user, which must reach its data directory
UPSTREAM=$(free_port); PROXY=$(free_port); GW=$(free_port); UPGW=$(free_port); ADMIN=$(free_port); DB=$(free_port)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$DATA"
}
trap cleanup EXIT

# nginx as the upstream (one worker) and, separately, as the plain reverse proxy (one worker per core, as
# the gateway's runtime has one thread per core); each in the foreground with its own prefix. The proxy writes
# an access line per request to a file, as the gateway does (JSON lines, its default off a terminal).
. bench/nginx.sh
nginx_conf upstream 1 "server { listen 127.0.0.1:$UPSTREAM; location / { default_type application/json; return 200 '{\"hello\":\"world\"}'; } }" off
nginx_conf proxy auto "upstream u { server 127.0.0.1:$UPSTREAM; keepalive 64; }
  server { listen 127.0.0.1:$PROXY; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" "$DATA/proxy/logs/access.log"
PROXY_MASTER=${PIDS[1]}

# A platform to look keys up in, and the gateway under test in its own process.
"$BIN" up --data-dir "$DATA/up" --port "$UPGW" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  [ -f "$DATA/up/state.json" ] && curl -sf -o /dev/null "http://127.0.0.1:$ADMIN/health" && break
  sleep 0.2
done
read -r REF PK TOKEN < <(python3 - "$DATA/up" "$ADMIN" <<'PY'
import json, sys, urllib.request
state = json.load(open(f"{sys.argv[1]}/state.json"))
token = json.load(open(f"{sys.argv[1]}/secrets.json"))["service_token"]
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[2]}/admin/v1/projects", method="POST",
                             data=json.dumps({"name": "gwbench"}).encode(),
                             headers={"Authorization": f"Bearer {state['admin_key']}",
                                      "Content-Type": "application/json"})
p = json.load(urllib.request.urlopen(req, timeout=120))["data"]
pk = next(k["opaque_key"] for k in p["api_keys"] if k["type"] == "publishable")
print(p["ref"], pk, token)
PY
)
SUPACTL_SERVICE_TOKEN="$TOKEN" "${SUPACTL_GATEWAY_BIN:-$BIN}" serve gateway --port "$GW" \
  --tenant-manager-url "http://127.0.0.1:$ADMIN" --functions-url "http://127.0.0.1:$UPSTREAM" \
  --api-url-template "http://127.0.0.1:$GW/p/{ref}" >"$DATA/gw.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
GW_URL="http://127.0.0.1:$GW/p/$REF/functions/v1/hello"
for _ in $(seq 1 100); do curl -sf -o /dev/null -H "apikey: $PK" "$GW_URL" && break; sleep 0.2; done
curl -sf -o /dev/null -H "apikey: $PK" "$GW_URL" || { echo "the gateway does not answer:"; cat "$DATA/gw.log"; exit 1; }

# run NAME URL CONNS [pid to measure] [header]: wrk's output and the pid's (and its children's) CPU into $DATA/NAME.*
run() {
  local name=$1 url=$2 conns=$3 pid=${4:-} hdr=${5:-x-bench: 1}
  local threads=$(( conns < 2 ? 1 : 2 ))
  local stat=""
  if [ -n "$pid" ]; then
    local pids
    pids=$(echo "$pid" $(pgrep -P "$pid") | tr ' ' ,)
    (sleep 1; pidstat -u -p "$pids" $((DURATION - 2)) 1 >"$DATA/$name.cpu" 2>/dev/null) &
    stat=$!
  fi
  local rec=""
  if [ -n "${PERF_DATA:-}" ] && [ "$name" = gateway ]; then
    perf record -q --call-graph dwarf,16384 -F 499 -o "$PERF_DATA" -p "$pid" -- sleep $((DURATION - 2)) 2>/dev/null &
    rec=$!
  fi
  wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency -H "$hdr" "$url" >"$DATA/$name.wrk"
  [ -z "$stat" ] || wait "$stat" || true
  [ -z "$rec" ] || wait "$rec" || true
}
rps() { awk '/Requests\/sec/ {print $2}' "$DATA/$1.wrk"; }
p50() { awk '$1 == "50%" {print $2}' "$DATA/$1.wrk"; }
# CPU % of a process and its children (nginx's workers are the master's children), summed
cpu() { awk '/^Average/ && $8 != "%CPU" {s += $8} END {print s + 0}' "$DATA/$1.cpu" 2>/dev/null || echo 0; }

echo "== $CONNS connections, ${DURATION}s each"
run upstream "http://127.0.0.1:$UPSTREAM/functions/v1/hello" "$CONNS"
run nginx "http://127.0.0.1:$PROXY/functions/v1/hello" "$CONNS" "$PROXY_MASTER"
run gateway "$GW_URL" "$CONNS" "$GW_PID" "apikey: $PK"
echo "== 1 connection (latency), ${DURATION}s each"
run upstream1 "http://127.0.0.1:$UPSTREAM/functions/v1/hello" 1
run nginx1 "http://127.0.0.1:$PROXY/functions/v1/hello" 1
run gateway1 "$GW_URL" 1 "" "apikey: $PK"
grep -H "Non-2xx" "$DATA"/*.wrk | sed "s|$DATA/||" || true

python3 - "$(rps upstream)" "$(rps nginx)" "$(rps gateway)" "$(cpu nginx)" "$(cpu gateway)" \
  "$(p50 upstream1)" "$(p50 nginx1)" "$(p50 gateway1)" <<'PY'
import sys
up, ngx, gw, ngx_cpu, gw_cpu = (float(x) for x in sys.argv[1:6])
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    raise SystemExit(f"unknown latency {v}")
p_up, p_ngx, p_gw = (ms(v) for v in sys.argv[6:9])
print(f"upstream alone     {up:10.0f} req/s   p50 {p_up:.3f} ms (1 connection)")
print(f"nginx proxy_pass   {ngx:10.0f} req/s   p50 {p_ngx:.3f} ms   CPU {ngx_cpu / 100 / ngx * 1e6:5.1f} us/request")
print(f"supactl gateway    {gw:10.0f} req/s   p50 {p_gw:.3f} ms   CPU {gw_cpu / 100 / gw * 1e6:5.1f} us/request")
print(f"gateway / nginx = {gw / ngx:.3f} (target >= 0.8); gateway / upstream = {gw / up:.3f}")
print(f"added p50: gateway {p_gw - p_up:.3f} ms (target < 0.2), nginx {p_ngx - p_up:.3f} ms")
PY
