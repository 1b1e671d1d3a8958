#!/usr/bin/env bash
# Benchmark of the data plane while the control plane is loaded (not a test: it prints figures, it asserts
# nothing). Everything listens on loopback.
#  1. Baseline: READERS connections read one row of an existing project through the gateway for
#     DURATION seconds: throughput and p50/p95/p99 latency.
#  2. The same reads while 50 project creates hit the admin API at once: the creates' answers by status
#     (201, or 429/503 with Retry-After; never 500) and their latency, and the reads' latency and errors
#     during the burst, next to the baseline's.
# Usage: bench/control-plane-load.sh [seconds of baseline, default 10]   (READERS=n, default 8;
# CREATES=n, default 50; SUPACTL_BIN=path uses that binary instead of building a release one)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
READERS="${READERS:-8}"
CREATES="${CREATES:-50}"
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
if [ -n "${SUPACTL_BIN:-}" ]; then
  BIN="$SUPACTL_BIN"
else
  cargo build --release -q -p supactl
  BIN="$CARGO_TARGET_DIR/release/supactl"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA="$(mktemp -d /tmp/supactl-bench-cpload-XXXX)"
PORT=$(free_port); ADMIN=$(free_port); DB=$(free_port)
SUPACTL_LOG=warn "$BIN" up --data-dir "$DATA" --port "$PORT" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
UP_PID=$!
cleanup() { kill -TERM "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 300); do [ -f "$DATA/state.json" ] && break; sleep 0.2; done
KEY=$(python3 -c "import json;print(json.load(open('$DATA/state.json'))['admin_key'])")
admin() { curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' "$@"; }

admin -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects" -o /dev/null -d '{"name":"steady","ref":"steady"}'
admin -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects/steady/database/query" -o /dev/null -d '{"query":
 "create table items (id int primary key, name text); insert into items values (1, $$one$$); alter table items enable row level security; create policy read on items for select using (true);"}'
ANON=$(admin "http://127.0.0.1:$ADMIN/admin/v1/projects/steady/api-keys" | python3 -c "import json,sys;print([k['opaque_key'] for k in json.load(sys.stdin)['data'] if k['type']=='publishable'][0])")

echo "machine: $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg)"
python3 - "$PORT" "$ADMIN" "$KEY" "$ANON" "$DURATION" "$READERS" "$CREATES" <<'PY'
import http.client, json, sys, threading, time
from collections import Counter

port, admin_port, admin_key, anon = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
duration, readers, creates = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000 if xs else float("nan")

def reads(stop, out):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        t = time.monotonic()
        try:
            c.request("GET", "/p/steady/rest/v1/items?id=eq.1", headers={"apikey": anon})
            r = c.getresponse(); r.read(); status = r.status
        except Exception:
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=30); status = "socket"
        out.append((status, time.monotonic() - t))

def phase(name, body):
    stop, out = threading.Event(), []
    ts = [threading.Thread(target=reads, args=(stop, out)) for _ in range(readers)]
    started = time.monotonic()
    for t in ts: t.start()
    body()
    stop.set()
    for t in ts: t.join()
    secs = time.monotonic() - started
    lat = [d for s, d in out if s == 200]
    errors = Counter(s for s, _ in out if s != 200)
    print(f"{name}: {len(out)} reads in {secs:.1f}s: {len(out) / secs:.0f} req/s; "
          f"p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms, p99 {pct(lat, 99):.1f} ms; "
          f"errors: {dict(errors) or 0}")
    return pct(lat, 99)

print(f"== reads of one row, {readers} connections")
base = phase(f"baseline ({duration:.0f}s)", lambda: time.sleep(duration))

results = []
def create(i):
    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=300)
    t = time.monotonic()
    c.request("POST", "/admin/v1/projects", body=json.dumps({"name": "burst", "ref": f"burst-{i:03d}"}),
              headers={"authorization": f"Bearer {admin_key}", "content-type": "application/json"})
    r = c.getresponse(); body = r.read()
    code = json.loads(body).get("code") if r.status >= 400 else None
    results.append((r.status, code, r.getheader("retry-after"), time.monotonic() - t))

def burst():
    ts = [threading.Thread(target=create, args=(i,)) for i in range(creates)]
    for t in ts: t.start()
    for t in ts: t.join()

under = phase(f"during {creates} parallel creates", burst)
print(f"   p99 during the burst / baseline p99: {under / base:.2f}")
by = Counter((s, c) for s, c, _, _ in results)
print(f"== {creates} parallel creates: " + ", ".join(f"{n} x {s}{' ' + c if c else ''}" for (s, c), n in sorted(by.items())))
refused = [r for r in results if r[0] in (429, 503)]
print(f"   refused without Retry-After: {sum(1 for r in refused if not r[2])}; "
      f"500s: {sum(1 for r in results if r[0] >= 500 and r[0] != 503)}")
ok = [d for s, _, _, d in results if s == 201]
no = [d for s, _, _, d in results if s != 201]
print(f"   201 latency: p50 {pct(ok, 50):.0f} ms, max {pct(ok, 100):.0f} ms; "
      f"refusal latency: p50 {pct(no, 50):.0f} ms, max {pct(no, 100):.0f} ms")
PY
