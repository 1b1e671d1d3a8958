#!/usr/bin/env bash
# Benchmarks of the REST engine (they print figures and ratios measured in the same run; they assert
# nothing). Everything listens on loopback.
#  1. GET one row by primary key and a 100-row list with a many-to-one embed, through gateway + REST at
#     16 connections (wrk), against pgbench running the equivalent SQL at the same concurrency on the same
#     cluster, and against postrust-server 3.1.0 (PostgREST-compatible, single-tenant) on the same
#     database when it can be installed.
#  2. Memory: MEM_PROJECTS projects (default 1000) of 20 tables each, queried round-robin; resident bytes
#     per project with warm schema caches, then idle projects evicted.
# Usage: bench/rest.sh [seconds per run, default 10]   (MEM_PROJECTS=0 skips part 2; SKIP_POSTRUST=1 does
# not install postrust-server; SUPACTL_BIN=path uses that release binary instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
MEM_PROJECTS="${MEM_PROJECTS:-1000}"
scripts/setup.sh wrk pidstat:sysstat
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
if [ -n "${SUPACTL_BIN:-}" ]; then
  BIN="$SUPACTL_BIN"   # an already built release binary
else
  PROFILE="${PROFILE:-release}"   # or `profiling`: release without LTO, minutes to build
  cargo build --profile "$PROFILE" -q -p supactl
  BIN="$CARGO_TARGET_DIR/$PROFILE/supactl"
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
POSTRUST_ROOT="$HOME/.cache/supactl/postrust"
POSTRUST="$POSTRUST_ROOT/bin/postrust"
if [ ! -x "$POSTRUST" ] && [ -z "${SKIP_POSTRUST:-}" ]; then
  echo "== installing postrust-server 3.1.0 (once)"
  CARGO_TARGET_DIR="$HOME/.cache/supactl/postrust-target" cargo install -q postrust-server --version 3.1.0 \
    --features compat-key-order --root "$POSTRUST_ROOT" || echo "postrust-server could not be installed"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA="$(mktemp -d /tmp/supactl-bench-XXXX)"
PORT=$(free_port); ADMIN=$(free_port); DB=$(free_port); PR_PORT=$(free_port)
SUPACTL_REST_POOL_SIZE="${SUPACTL_REST_POOL_SIZE:-16}" SUPACTL_REST_IDLE_SECS="${SUPACTL_REST_IDLE_SECS:-60}" SUPACTL_REST_CONNECTION_IDLE_SECS=2 SUPACTL_LOG="${SUPACTL_LOG:-warn,rest=info,supactl_common::connections=info}" \
  "$BIN" up --data-dir "$DATA" --port "$PORT" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
UP_PID=$!
PR_PID=""
cleanup() {
  [ -n "$PR_PID" ] && kill "$PR_PID" 2>/dev/null || true
  kill -TERM "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 1 300); do [ -f "$DATA/state.json" ] && break; sleep 0.2; done
KEY=$(python3 -c "import json;print(json.load(open('$DATA/state.json'))['admin_key'])")
PGPASSWORD=$(python3 -c "import json;print(json.load(open('$DATA/secrets.json'))['postgres_password'])")
export PGPASSWORD
admin() { curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' "$@"; }

admin -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects" -o /dev/null -d '{"name":"bench","ref":"bench-1"}'
SCHEMA_SQL="create table cats (id int primary key, name text not null);
insert into cats select g, 'cat ' || g from generate_series(1, 100) g;
create table items (id int primary key, name text not null, cat_id int references cats(id));
insert into items select g, md5(g::text), 1 + g % 100 from generate_series(1, 10000) g;
create index on items (cat_id);
alter table items enable row level security; create policy read_all on items for select to anon using (true);
alter table cats enable row level security; create policy read_all on cats for select to anon using (true);
analyze items; analyze cats;"
admin -X POST "http://127.0.0.1:$ADMIN/admin/v1/projects/bench-1/database/query" -o /dev/null \
  -d "$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$SCHEMA_SQL")"
ANON=$(admin "http://127.0.0.1:$ADMIN/admin/v1/projects/bench-1/api-keys" | python3 -c "import json,sys;print([k['opaque_key'] for k in json.load(sys.stdin)['data'] if k['type']=='publishable'][0])")

# CPU time per request of each process taking part, sampled by pidstat over the middle of a run: where
# a request's cost goes (the machine's two cores are shared by all of them).
sample_cpu() { # name: samples into $DATA/name.cpu while the run goes on
  if [ "$DURATION" -ge 4 ]; then
    (sleep 1; pidstat -u -C 'supactl|postgres|postrust|wrk|pgbench' $((DURATION - 2)) 1 >"$DATA/$1.cpu" 2>/dev/null) &
  fi
}
cpu_per_request() { # name rate -> one line of µs per request by process
  [ -s "$DATA/$1.cpu" ] || return 0
  awk -v rate="$2" '/^Average/ && $NF ~ /^(supactl|postgres|postrust|wrk|pgbench)$/ {t[$NF] += $8}
    END {line = ""; for (p in t) line = line sprintf("%s %.1f us  ", p, t[p] * 1e4 / rate); print "  CPU per request: " line}' "$DATA/$1.cpu"
}
wrk_run() { # name url-prefix lua-body -> prints req/s
  cat >"$DATA/$1.lua" <<LUA
wrk.headers["apikey"] = "$ANON"
$3
LUA
  sample_cpu "$1"
  wrk -t2 -c16 -d"${DURATION}s" -s "$DATA/$1.lua" "$2" >"$DATA/$1.txt"
  wait
  awk '/Requests\/sec/ {print $2}' "$DATA/$1.txt"
}
GET_LUA='request = function() return wrk.format("GET", PREFIX .. "/items?id=eq." .. math.random(1, 10000)) end'
LIST_LUA='request = function() return wrk.format("GET", PREFIX .. "/items?select=id,name,cats(name)&order=id&limit=100&offset=" .. math.random(0, 9900)) end'

curl -sf -H "apikey: $ANON" "http://127.0.0.1:$PORT/p/bench-1/rest/v1/items?id=eq.42" >/dev/null
echo "== supactl gateway + REST, 16 connections, ${DURATION}s each"
GW_GET=$(wrk_run gw_get "http://127.0.0.1:$PORT" "PREFIX = '/p/bench-1/rest/v1'
$GET_LUA")
GW_LIST=$(wrk_run gw_list "http://127.0.0.1:$PORT" "PREFIX = '/p/bench-1/rest/v1'
$LIST_LUA")
grep -h "Non-2xx" "$DATA"/gw_*.txt || true

echo "== pgbench, same SQL, 16 connections"
printf '\\set id random(1, 10000)\nSELECT * FROM items WHERE id = :id;\n' >"$DATA/get.sql"
printf '\\set off random(0, 9900)\nSELECT i.id, i.name, c.name FROM items i LEFT JOIN cats c ON c.id = i.cat_id ORDER BY i.id LIMIT 100 OFFSET :off;\n' >"$DATA/list.sql"
pgb() {
  sample_cpu "pg_$1"
  "$PGBIN/pgbench" -n -M prepared -c16 -j2 -T"$DURATION" -f "$DATA/$1.sql" -h 127.0.0.1 -p "$DB" -U postgres project_bench_1 | awk '/^tps/ {print $3; exit}'
  wait
}
PG_GET=$(pgb get)
PG_LIST=$(pgb list)

PR_GET=""; PR_LIST=""
if [ -x "$POSTRUST" ]; then
  echo "== postrust-server 3.1.0 on the same database, 16 connections"
  DATABASE_URL="postgres://postgres:$PGPASSWORD@127.0.0.1:$DB/project_bench_1" PGRST_DB_ANON_ROLE=anon \
    PGRST_DB_SCHEMAS=public PGRST_SERVER_HOST=127.0.0.1 PGRST_SERVER_PORT=$PR_PORT PGRST_DB_POOL=10 \
    PGRST_JWT_SECRET=bench-secret-bench-secret-bench-secret-0 "$POSTRUST" >"$DATA/postrust.log" 2>&1 &
  PR_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PR_PORT/api/items?id=eq.1" >/dev/null 2>&1 && break; sleep 0.2; done
  if curl -sf "http://127.0.0.1:$PR_PORT/api/items?id=eq.1" >/dev/null 2>&1; then
    # postrust-server serves its PostgREST API under /api.
    PR_GET=$(wrk_run pr_get "http://127.0.0.1:$PR_PORT" "PREFIX = '/api'
$GET_LUA")
    PR_LIST=$(wrk_run pr_list "http://127.0.0.1:$PR_PORT" "PREFIX = '/api'
$LIST_LUA")
    grep -h "Non-2xx" "$DATA"/pr_*.txt || true
  else
    echo "postrust-server did not answer: $(curl -s -i "http://127.0.0.1:$PR_PORT/api/items?id=eq.1" | head -12)"
  fi
  kill "$PR_PID" 2>/dev/null || true; PR_PID=""
else
  echo "postrust-server is not installed: no comparison"
fi

python3 - "$GW_GET" "$GW_LIST" "$PG_GET" "$PG_LIST" "$PR_GET" "$PR_LIST" <<'PY'
import sys
gw_get, gw_list, pg_get, pg_list, pr_get, pr_list = [float(x) if x else None for x in sys.argv[1:]]
print(f"GET by PK : supactl {gw_get:.0f} req/s, pgbench {pg_get:.0f} tps -> {gw_get/pg_get:.3f}x pgbench (target >= 0.4)")
print(f"100 + embed: supactl {gw_list:.0f} req/s, pgbench {pg_list:.0f} tps -> {gw_list/pg_list:.3f}x pgbench")
if pr_get:
    print(f"postrust  : GET {pr_get:.0f} req/s, list {pr_list:.0f} req/s -> supactl is {gw_get/pr_get:.2f}x (GET) and {gw_list/pr_list:.2f}x (list) postrust (target >= 3)")
PY
for run in gw_get:"$GW_GET" pg_get:"$PG_GET" pr_get:"$PR_GET" gw_list:"$GW_LIST" pg_list:"$PG_LIST" pr_list:"$PR_LIST"; do
  [ -n "${run#*:}" ] && { echo "${run%%:*}:"; cpu_per_request "${run%%:*}" "${run#*:}"; }
done

if [ "$MEM_PROJECTS" -gt 0 ]; then
  echo "== memory: $MEM_PROJECTS projects x 20 tables, round-robin"
  # The local worker takes 1,000 databases by default and bench-1 holds one of them.
  admin -X PATCH "http://127.0.0.1:$ADMIN/admin/v1/workers/1" -o /dev/null \
    -d "{\"max_databases\": $((MEM_PROJECTS + 10))}"
  if python3 - "$ADMIN" "$KEY" "$PORT" "$UP_PID" "$MEM_PROJECTS" "$DATA/up.log" <<'PY'
import json, sys, time, urllib.request, concurrent.futures as cf
admin, key, port, pid, n, log = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
def call(url, body=None, headers=None, method=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json", **(headers or {})}, method=method)
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, r.read()
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
ddl = " ".join(f"create table t{i} (id int primary key, name text, n{i} int, created timestamptz default now());"
               f" insert into t{i} values (1, 'x', {i});" for i in range(20))
def create(i):
    ref = f"mem-{i}"
    _, b = call(f"http://127.0.0.1:{admin}/admin/v1/projects", {"name": ref, "ref": ref}, {"authorization": f"Bearer {key}"})
    d = json.loads(b)["data"]
    call(f"http://127.0.0.1:{admin}/admin/v1/projects/{ref}/database/query", {"query": ddl}, {"authorization": f"Bearer {key}"})
    return ref, [k["opaque_key"] for k in d["api_keys"] if k["type"] == "publishable"][0]
t0 = time.time()
with cf.ThreadPoolExecutor(4) as ex:
    projects = list(ex.map(create, range(n)))
print(f"created {n} projects in {time.time() - t0:.0f} s")
def query(args):
    (ref, anon), table = args
    s, _ = call(f"http://127.0.0.1:{port}/p/{ref}/rest/v1/t{table}?select=id,name&id=eq.1", headers={"apikey": anon})
    return s
before = rss()
work = [(p, t) for t in range(3) for p in projects]   # round-robin, every project several times
t0 = time.time()
with cf.ThreadPoolExecutor(8) as ex:
    statuses = list(ex.map(query, work))
after = rss()
bad = sum(1 for s in statuses if s != 200)
print(f"{len(work)} requests round-robin in {time.time() - t0:.0f} s ({bad} not 200)")
print(f"resident: {before/1e6:.1f} MB before, {after/1e6:.1f} MB with {n} warm projects "
      f"-> {(after - before) / n / 1024:.1f} KB per project (target <= 200 KB; gateway and directory caches included)")
idle = 70
print(f"waiting {idle} s for idle eviction ...")
time.sleep(idle)
evicted = sum(1 for line in open(log) if "evicting idle project pool" in line)
print(f"evicted idle project pools: {evicted} of {n + 1}; resident now {rss()/1e6:.1f} MB")
PY
  then :; else echo "memory run failed; the platform's log ends with:"; tail -20 "$DATA/up.log"; fi
fi
