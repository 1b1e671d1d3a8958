#!/usr/bin/env bash
# Benchmarks of the auth API through the gateway (not tests: they print figures, they assert nothing).
#  1. Password sign-in (POST /auth/v1/token?grant_type=password) at 8 and at 2 connections: throughput and
#     p50/p95/p99 latency. Passwords are bcrypt hashes at GoTrue's default cost (10), so this measures
#     mostly bcrypt.
#  2. Refresh-token grant (POST /auth/v1/token?grant_type=refresh_token) at 16 connections: each
#     connection chains the rotated token of its previous answer, so every request is a real rotation.
# Rate limits are raised for the bench project (they would otherwise answer 429 after 30 sign-ins).
# Usage: bench/auth.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
scripts/setup.sh wrk
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
cargo build --release -q -p supactl
BIN="$CARGO_TARGET_DIR/release/supactl"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA="$(mktemp -d /tmp/supactl-bench-auth-XXXX)"
PORT=$(free_port); ADMIN=$(free_port); DB=$(free_port)
SUPACTL_LOG=warn "$BIN" up --data-dir "$DATA" --port "$PORT" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
UP_PID=$!
cleanup() { kill -TERM "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 300); do [ -f "$DATA/state.json" ] && break; sleep 0.2; done
KEY=$(python3 -c "import json;print(json.load(open('$DATA/state.json'))['admin_key'])")
admin() { curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' "$@"; }

admin -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects" -o /dev/null -d '{"name":"bench auth","ref":"bench-auth"}'
admin -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects/bench-auth/database/query" -o /dev/null -d '{"query":
 "update auth.supactl_settings set rate_limit_sign_in_sign_ups = 100000000, rate_limit_token_refresh = 100000000, rate_limit_per_email = 100000000"}'
ANON=$(admin "http://127.0.0.1:$ADMIN/admin/v1/projects/bench-auth/api-keys" | python3 -c "import json,sys;print([k['opaque_key'] for k in json.load(sys.stdin)['data'] if k['type']=='publishable'][0])")
AUTH="http://127.0.0.1:$PORT/p/bench-auth/auth/v1"
hdr=(-H "apikey: $ANON" -H 'content-type: application/json')
curl -sf "${hdr[@]}" -X POST "$AUTH/signup" -o /dev/null -d '{"email":"bench@example.com","password":"bench-password-1"}'

# Prints p50/p95/p99 (wrk's own summary has no p95).
cat >"$DATA/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("requests %d in %.1fs: %.1f req/s; latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms; errors: %d non-2xx, %d socket\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

echo "machine: $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg) (figures scale with free CPU: bcrypt dominates sign-in)"
echo "== password sign-in, bcrypt cost 10, 8 connections, ${DURATION}s"
cat "$DATA/report.lua" - >"$DATA/signin.lua" <<LUA
wrk.method = "POST"
wrk.path = "/p/bench-auth/auth/v1/token?grant_type=password"
wrk.headers["apikey"] = "$ANON"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password-1"}'
LUA
wrk -t2 -c8 -d"${DURATION}s" --timeout 10s -s "$DATA/signin.lua" "http://127.0.0.1:$PORT" | grep '^requests'
echo "== password sign-in, 2 connections (one per core: latency without queueing), ${DURATION}s"
wrk -t2 -c2 -d"${DURATION}s" --timeout 10s -s "$DATA/signin.lua" "http://127.0.0.1:$PORT" | grep '^requests'

echo "== refresh-token grant, 16 connections, ${DURATION}s"
# One session per connection, plus one per thread because wrk calls request() once before the run to
# check the script (that token is lost); each connection then rotates its own token chain.
for _ in $(seq 1 18); do
  curl -sf "${hdr[@]}" -X POST "$AUTH/token?grant_type=password" -d '{"email":"bench@example.com","password":"bench-password-1"}' |
    python3 -c "import json,sys;print(json.load(sys.stdin)['refresh_token'])"
done >"$DATA/tokens.txt"
cat "$DATA/report.lua" - >"$DATA/refresh.lua" <<LUA
local threads, counter = {}, 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
init = function(args)
  queue = {}
  local i = 0
  for line in io.lines("$DATA/tokens.txt") do
    if i % 2 == id then table.insert(queue, line) end
    i = i + 1
  end
end
request = function()
  local token = table.remove(queue, 1) or "exhausted"
  return wrk.format("POST", "/p/bench-auth/auth/v1/token?grant_type=refresh_token",
    {["apikey"] = "$ANON", ["content-type"] = "application/json"}, '{"refresh_token":"' .. token .. '"}')
end
response = function(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(queue, token) end
end
LUA
wrk -t2 -c16 -d"${DURATION}s" -s "$DATA/refresh.lua" "http://127.0.0.1:$PORT" | grep '^requests'
