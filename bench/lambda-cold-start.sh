#!/usr/bin/env bash
# Benchmark (prints figures, asserts nothing): cold start of the REST Lambda runtime, from process start of
# `supactl serve rest-lambda` (release build) to its first response, against the local database.
# `supactl up` provides PostgreSQL and the tenant-manager; bench/lambda_runtime_api.py stands in for
# AWS's Lambda Runtime API on loopback (Lambda itself cannot run here) and times each run with a fresh
# process. Target: <= 150 ms.
# Usage: bench/lambda-cold-start.sh [runs, default 10]   (PROFILE=debug times an unoptimised build instead)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then cargo build --release -q -p supactl; else cargo build -q -p supactl; fi
BIN="$CARGO_TARGET_DIR/$PROFILE/supactl"
echo "binary: $PROFILE build"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATA="$(mktemp -d /tmp/supactl-bench-lambda-XXXX)"
PORT=$(free_port); ADMIN=$(free_port); DB=$(free_port)
SUPACTL_LOG=warn "$BIN" up --data-dir "$DATA" --port "$PORT" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
UP_PID=$!
cleanup() { kill -TERM "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 300); do [ -f "$DATA/state.json" ] && break; sleep 0.2; done
[ -f "$DATA/state.json" ] || { cat "$DATA/up.log"; exit 1; }
KEY=$(python3 -c "import json;print(json.load(open('$DATA/state.json'))['admin_key'])")
export SUPACTL_SERVICE_TOKEN
SUPACTL_SERVICE_TOKEN=$(python3 -c "import json;print(json.load(open('$DATA/secrets.json'))['service_token'])")
TM="http://127.0.0.1:$ADMIN"
admin() { curl -sf -H "Authorization: Bearer $KEY" -H 'content-type: application/json' "$@"; }

admin -X POST "$TM/admin/v1/projects" -o /dev/null -d '{"name":"bench lambda","ref":"bench-lambda"}'
admin -X POST "$TM/admin/v1/projects/bench-lambda/database/query" -o /dev/null -d '{"query":
 "create table public.bench (id int primary key, name text); insert into public.bench select g, md5(g::text) from generate_series(1, 1000) g; grant select on public.bench to anon"}'
SECRET=$(curl -sf -H "Authorization: Bearer $SUPACTL_SERVICE_TOKEN" "$TM/internal/v1/projects/bench-lambda/config" |
  python3 -c "import json,sys;print(json.load(sys.stdin)['data']['jwt_secrets'][0])")
# An anon token as the gateway mints it (HS256 with the project's secret, 1 hour).
JWT=$(SECRET="$SECRET" python3 -c '
import base64, hashlib, hmac, json, os, time
b = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=")
now = int(time.time())
msg = b({"alg": "HS256", "typ": "JWT"}) + b"." + b({"iss": "supactl", "ref": "bench-lambda", "role": "anon", "iat": now, "exp": now + 3600})
sig = base64.urlsafe_b64encode(hmac.new(os.environ["SECRET"].encode(), msg, hashlib.sha256).digest()).rstrip(b"=")
print((msg + b"." + sig).decode())')

echo "machine: $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg)"
python3 bench/lambda_runtime_api.py --bin "$BIN" --runs "$RUNS" --project bench-lambda \
  --tenant-manager-url "$TM" --jwt "$JWT"
