#!/usr/bin/env bash
# Benchmarks of the walking skeleton (not tests: they print figures, they assert nothing).
#  1. GET one row by primary key through gateway + REST at 16 connections (wrk), against pgbench running
#     the same SELECT at the same concurrency on the same cluster: the ratio is what counts.
#  2. Project create latency, p50 and p95 over 20 creates through the admin API.
# Usage: bench/skeleton.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
scripts/setup.sh wrk
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
cargo build --release -q -p supactl
BIN="$CARGO_TARGET_DIR/release/supactl"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA="$(mktemp -d /tmp/supactl-bench-XXXX)"
PORT=$(free_port); ADMIN=$(free_port); DB=$(free_port)
"$BIN" up --data-dir "$DATA" --port "$PORT" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
UP_PID=$!
cleanup() { kill -TERM "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 300); do [ -f "$DATA/state.json" ] && break; sleep 0.2; done
KEY=$(python3 -c "import json;print(json.load(open('$DATA/state.json'))['admin_key'])")
PGPASSWORD=$(python3 -c "import json;print(json.load(open('$DATA/secrets.json'))['postgres_password'])")
export PGPASSWORD
admin() { curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' "$@"; }

echo "== project create latency (20 creates)"
times=()
for i in $(seq 1 20); do
  t=$(admin -o /dev/null -w '%{time_total}' -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects" -d "{\"name\":\"bench $i\",\"ref\":\"bench-$i\"}")
  times+=("$t")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "create p50 %.0f ms, p95 %.0f ms (target p50 <= 1000 ms)\n", a[int(NR*0.5+0.5)]*1000, a[int(NR*0.95+0.5)]*1000}'

echo "== GET by primary key, 16 connections, ${DURATION}s"
admin -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects/bench-1/database/query" -o /dev/null -d '{"query":
 "create table items (id int primary key, name text not null); insert into items select g, md5(g::text) from generate_series(1, 10000) g; alter table items enable row level security; create policy read_all on items for select to anon using (true); analyze items;"}'
ANON=$(admin "http://127.0.0.1:$ADMIN/admin/v1/projects/bench-1/api-keys" | python3 -c "import json,sys;print([k['opaque_key'] for k in json.load(sys.stdin)['data'] if k['type']=='publishable'][0])")
cat >"$DATA/get.lua" <<LUA
wrk.headers["apikey"] = "$ANON"
request = function()
  return wrk.format("GET", "/p/bench-1/rest/v1/items?id=eq." .. math.random(1, 10000))
end
LUA
curl -sf -H "apikey: $ANON" "http://127.0.0.1:$PORT/p/bench-1/rest/v1/items?id=eq.42" >/dev/null
wrk -t2 -c16 -d"${DURATION}s" -s "$DATA/get.lua" "http://127.0.0.1:$PORT" >"$DATA/wrk.txt"
GW=$(awk '/Requests\/sec/ {print $2}' "$DATA/wrk.txt")
grep -E "Latency|Requests/sec|Non-2xx" "$DATA/wrk.txt" || true

printf '\\set id random(1, 10000)\nSELECT * FROM items WHERE id = :id;\n' >"$DATA/get.sql"
"$PGBIN/pgbench" -n -M prepared -c16 -j2 -T"$DURATION" -f "$DATA/get.sql" -h 127.0.0.1 -p "$DB" -U postgres project_bench_1 >"$DATA/pgbench.txt"
PG=$(awk '/^tps/ {print $3; exit}' "$DATA/pgbench.txt")
echo "gateway+REST: $GW req/s; pgbench (prepared, same SELECT): $PG tps"
python3 -c "print(f'ratio gateway+REST / pgbench = {float(\"$GW\")/float(\"$PG\"):.3f} (target >= 0.15)')"
