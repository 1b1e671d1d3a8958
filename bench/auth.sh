#!/usr/bin/env bash
# Benchmarks of the auth API through the gateway (not tests: they print figures, they assert nothing).
#  1. Password sign-in (POST /auth/v1/token?grant_type=password) at 8 and at 2 connections: throughput and
#     p50/p95/p99 latency. Passwords are bcrypt hashes at GoTrue's default cost (10), so this measures
#     mostly bcrypt.
#  2. Refresh-token grant (POST /auth/v1/token?grant_type=refresh_token) at 16 connections: each
#     connection chains the rotated token of its previous answer, so every request is a real rotation.
#  3. Email OTP verification (POST /auth/v1/verify {"type":"email"}) at 8 connections: $OTPS users (1000 per
#     second of the run by default) each get a fresh 6-digit code from the admin API's generate_link (magiclink: the code a
#     mail would carry), then every request verifies one of them, once, and gets a session.
# After each run: the CPU time per request of supactl (gateway + auth) and of its PostgreSQL (read from
# /proc before and after, so other work on the machine is not counted).
# Rate limits are raised for the bench project (they would otherwise answer 429 after 30 sign-ins).
# Usage: bench/auth.sh [seconds per run, default 10]; SUPACTL_BIN=… runs that binary instead of a release
# build (to check the script with a debug build: its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
OTPS="${OTPS:-$((DURATION * 1000))}"
scripts/setup.sh wrk
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
if [ -n "${SUPACTL_BIN:-}" ]; then
  BIN="$SUPACTL_BIN"
else
  cargo build --release -q -p supactl
  BIN="$CARGO_TARGET_DIR/release/supactl"
fi

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
 "update auth.supactl_settings set rate_limit_sign_in_sign_ups = 100000000, rate_limit_token_refresh = 100000000, rate_limit_per_email = 100000000, rate_limit_verify = 100000000"}'
key_of() { admin "http://127.0.0.1:$ADMIN/admin/v1/projects/bench-auth/api-keys?reveal=true" | python3 -c "import json,sys;print([k['opaque_key'] for k in json.load(sys.stdin)['data'] if k['type']=='$1'][0])"; }
ANON=$(key_of publishable)
SECRET=$(key_of secret)
AUTH="http://127.0.0.1:$PORT/p/bench-auth/auth/v1"
hdr=(-H "apikey: $ANON" -H 'content-type: application/json')
curl -sf "${hdr[@]}" -X POST "$AUTH/signup" -o /dev/null -d '{"email":"bench@example.com","password":"bench-password-1"}'

# Prints p50/p95/p99 (wrk's own summary has no p95).
cat >"$DATA/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("requests %d in %.1fs: %.1f req/s; latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms; errors: %d non-2xx, %d socket",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write((note and note() or "") .. "\n")
end
LUA

# CPU seconds used so far by supactl and by the PostgreSQL it started: the processes started from the
# bench's data directory and their descendants (exited backends count through their parent's
# cutime/cstime).
cpu_snapshot() {
  python3 - "$UP_PID" "$DATA" <<'PY'
import os, sys
hz, procs, roots = os.sysconf("SC_CLK_TCK"), {}, {int(sys.argv[1])}
for d in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{d}/stat").read()
        cmdline = open(f"/proc/{d}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        continue
    f = stat[stat.rindex(")") + 2:].split()
    procs[int(d)] = (stat[stat.index("(") + 1:stat.rindex(")")], int(f[1]), sum(map(int, f[11:15])))
    if sys.argv[2] in cmdline:
        roots.add(int(d))
def below(pid):
    while pid > 1:
        if pid in roots:
            return True
        pid = procs.get(pid, ("", 0, 0))[1]
    return False
t = {"supactl": 0, "postgres": 0}
for pid, (comm, _, ticks) in procs.items():
    if comm in t and below(pid):
        t[comm] += ticks
print(t["supactl"] / hz, t["postgres"] / hz)
PY
}
# Runs wrk with the given arguments: prints its summary line and the CPU time per successful request.
measure() {
  local before after line
  before=$(cpu_snapshot)
  line=$(wrk "$@" | grep '^requests')
  after=$(cpu_snapshot)
  echo "$line"
  python3 - "$before" "$after" "$line" <<'PY'
import re, sys
b, a = [list(map(float, x.split())) for x in sys.argv[1:3]]
m = re.match(r"requests (\d+) .*errors: (\d+) non-2xx", sys.argv[3])
ok = int(m[1]) - int(m[2])
if ok:
    print(f"  CPU per request: supactl {(a[0] - b[0]) / ok * 1e6:.0f} us, postgres {(a[1] - b[1]) / ok * 1e6:.0f} us")
PY
}

echo "machine: $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg) (figures scale with free CPU: bcrypt dominates sign-in)"
echo "== password sign-in, bcrypt cost 10, 8 connections, ${DURATION}s"
cat "$DATA/report.lua" - >"$DATA/signin.lua" <<LUA
wrk.method = "POST"
wrk.path = "/p/bench-auth/auth/v1/token?grant_type=password"
wrk.headers["apikey"] = "$ANON"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password-1"}'
LUA
measure -t2 -c8 -d"${DURATION}s" --timeout 10s -s "$DATA/signin.lua" "http://127.0.0.1:$PORT"
echo "== password sign-in, 2 connections (one per core: latency without queueing), ${DURATION}s"
measure -t2 -c2 -d"${DURATION}s" --timeout 10s -s "$DATA/signin.lua" "http://127.0.0.1:$PORT"

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
measure -t2 -c16 -d"${DURATION}s" -s "$DATA/refresh.lua" "http://127.0.0.1:$PORT"

echo "== email OTP verification, 8 connections, $OTPS codes (each verified once), at most ${DURATION}s"
# Users made by the admin API (no password: no bcrypt), each given a code by generate_link.
python3 - "$AUTH" "$SECRET" "$OTPS" >"$DATA/otps.txt" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
auth, secret, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def post(path, body):
    req = urllib.request.Request(auth + path, json.dumps(body).encode(), method="POST", headers={
        "apikey": secret, "authorization": f"Bearer {secret}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
def code(i):
    email = f"otp-{i}@bench.example.com"
    post("/admin/users", {"email": email, "email_confirm": True})
    return f'{email} {post("/admin/generate_link", {"type": "magiclink", "email": email})["email_otp"]}'
with ThreadPoolExecutor(8) as pool:
    print("\n".join(pool.map(code, range(n))))
PY
cat "$DATA/report.lua" - >"$DATA/verify.lua" <<LUA
local threads, counter = {}, 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
-- A thread whose codes ran out stops; the run still lasts its duration, so its req/s is then too low.
note = function()
  for _, t in ipairs(threads) do
    if t:get("exhausted") then return " (codes ran out: req/s is a lower bound, raise OTPS)" end
  end
  return ""
end
init = function(args)
  queue = {}
  local i = 0
  for line in io.lines("$DATA/otps.txt") do
    if i % 2 == id then table.insert(queue, line) end
    i = i + 1
  end
end
request = function()
  local email, otp = (table.remove(queue, 1) or "none@bench.example.com 000000"):match("(%S+) (%S+)")
  return wrk.format("POST", "/p/bench-auth/auth/v1/verify",
    {["apikey"] = "$ANON", ["content-type"] = "application/json"},
    '{"type":"email","email":"' .. email .. '","token":"' .. otp .. '"}')
end
response = function(status, headers, body)
  if #queue == 0 then
    exhausted = true
    wrk.thread:stop()
  end
end
LUA
measure -t2 -c8 -d"${DURATION}s" -s "$DATA/verify.lua" "http://127.0.0.1:$PORT"
