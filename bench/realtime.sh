#!/usr/bin/env bash
# Benchmark of realtime (not a test: it prints figures, it asserts nothing). Everything listens on loopback.
# The realtime router is served directly (no gateway in front), by one process, over a throwaway control
# plane (PostgreSQL cluster and tenant-manager) with one project; the driver is another process, so the
# server's memory is its own (runtime/realtime/examples/realtime_bench.rs):
#  1. SOCKETS sockets (default 10,000, at most 200 connecting at once) each join a channel and stay idle:
#     the server's resident memory growth per idle socket.
#  2. SUBSCRIBERS sockets (default 1,000) join one topic; one more socket broadcasts to it: 100 messages at
#     10/s (delivery latency p50/p99, send to receive) then BURST (default 200) back to back (deliveries/s).
#  3. postgres_changes: one socket subscribes to INSERTs of a table with RLS on; 100 rows/s for 10 s are
#     inserted (autocommit): latency from each INSERT to its arrival at the client (p50/p99). Changes are
#     captured as in production, through the project's own login role.
# The driver shares the machine: its 1,000 receivers parse every frame, so on a small or busy machine the
# fan-out figures bound the pair, not the server alone.
# Usage: bench/realtime.sh [SOCKETS] [SUBSCRIBERS] [BURST]   (PROFILE=debug builds without --release)
set -euo pipefail
cd "$(dirname "$0")/.."
SOCKETS="${1:-10000}"; SUBSCRIBERS="${2:-1000}"; BURST="${3:-200}"
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
if [ "${PROFILE:-release}" = debug ]; then
  cargo build -q -p realtime --example realtime_bench
  BIN="$CARGO_TARGET_DIR/debug/examples/realtime_bench"
else
  cargo build --release -q -p realtime --example realtime_bench
  BIN="$CARGO_TARGET_DIR/release/examples/realtime_bench"
fi
# Each process holds one descriptor per socket.
need=$((SOCKETS + SUBSCRIBERS + 512))
if [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || { echo "raise the open-files limit to $need (ulimit -n)" >&2; exit 1; }
fi

DATA="$(mktemp -d /tmp/supactl-bench-realtime-XXXX)"
SUPACTL_LOG=warn "$BIN" serve "$DATA/state.json" >"$DATA/serve.log" 2>&1 &
SERVE_PID=$!
cleanup() { kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 600); do [ -f "$DATA/state.json" ] && break; sleep 0.2; done
[ -f "$DATA/state.json" ] || { echo "the server did not start:" >&2; cat "$DATA/serve.log" >&2; exit 1; }

echo "machine: $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg), build: ${PROFILE:-release}"
"$BIN" drive "$DATA/state.json" "$SOCKETS" "$SUBSCRIBERS" "$BURST"
