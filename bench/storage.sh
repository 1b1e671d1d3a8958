#!/usr/bin/env bash
# Benchmark of storage (not a test: it prints figures, it asserts nothing). Everything listens on loopback.
# A release `supactl up` in a temporary data directory, one project, one bucket; then, with curl:
#  1. upload of SIZE_MB (default 1024) of random bytes through the gateway (raw body, service key) against
#     writing the same bytes to a file on the same disk (dd from the page cache): MB/s and the ratio;
#  2. download of the object through the gateway against reading the same file (page cache dropped
#     first when running as root): MB/s and the ratio (target >= 0.7 both ways);
#     and the supactl process's CPU time per GiB sent; then once from the page cache against curl reading
#     the file itself (the service's own cost, without the disk);
#  3. the supactl process's resident memory sampled every 0.2 s during the upload: before, peak, after
#     (flat: the body is streamed, never held).
# Medians of ROUNDS (default 3) runs of each, alternating with the baseline.
# Usage: bench/storage.sh [SIZE_MB]   (SUPACTL_BIN=path to use a built binary; PROFILE=profiling: release
# without LTO, minutes to build; PROFILE=debug, whose figures say little about speed but as much about memory)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${1:-1024}"
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
if [ -n "${SUPACTL_BIN:-}" ]; then
  BIN="$SUPACTL_BIN"
elif [ "${PROFILE:-release}" = debug ]; then
  cargo build -q -p supactl; BIN="$CARGO_TARGET_DIR/debug/supactl"
else
  cargo build --profile "${PROFILE:-release}" -q -p supactl; BIN="$CARGO_TARGET_DIR/${PROFILE:-release}/supactl"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DATA="$(mktemp -d /tmp/supactl-bench-storage-XXXX)"
chmod o+x "$DATA"   # supactl up runs PostgreSQL as its own user when root, which must reach its data directory
GW=$(free_port); ADMIN=$(free_port); DB=$(free_port)
"$BIN" up --data-dir "$DATA/up" --port "$GW" --admin-port "$ADMIN" --db-port "$DB" >"$DATA/up.log" 2>&1 &
UP_PID=$!
cleanup() { kill -TERM "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  [ -f "$DATA/up/state.json" ] && curl -sf -o /dev/null "http://127.0.0.1:$ADMIN/health" && break
  sleep 0.2
done
read -r API SK < <(python3 - "$DATA/up/state.json" "$ADMIN" <<'PY'
import json, sys, urllib.request
state, admin = json.load(open(sys.argv[1])), sys.argv[2]
req = urllib.request.Request(f"http://127.0.0.1:{admin}/admin/v1/projects", method="POST",
                             data=json.dumps({"name": "storagebench"}).encode(),
                             headers={"Authorization": f"Bearer {state['admin_key']}",
                                      "Content-Type": "application/json"})
p = json.load(urllib.request.urlopen(req, timeout=120))["data"]
sk = next(k["opaque_key"] for k in p["api_keys"] if k["type"] == "secret")
print(p["api_url"], sk)
PY
)
AUTH=(-H "apikey: $SK" -H "Authorization: Bearer $SK")
curl -sf "${AUTH[@]}" -H 'content-type: application/json' -d '{"name":"bench"}' "$API/storage/v1/bucket" >/dev/null

SRC="$DATA/source.bin"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$SRC"
echo "machine: $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg), build: ${PROFILE:-release}, object: ${SIZE_MB} MiB"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$UP_PID/status"; }
BEFORE=$(rss)
( peak=0; while kill -0 "$UP_PID" 2>/dev/null && [ ! -f "$DATA/upload.done" ]; do
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; echo "$peak" >"$DATA/peak"; sleep 0.2; done ) &
SAMPLER=$!
elapsed() { local t0; t0=$(date +%s.%N); "$@"; python3 -c "import time; print(time.time() - $t0)"; }
drop() { sync; [ "$(id -u)" = 0 ] && echo 3 >/proc/sys/vm/drop_caches || true; }
# Each measurement ROUNDS times, alternating with its baseline (the disk's speed drifts from one run to
# the next on a virtual machine): the medians are compared.
UP=(); DW=(); DOWN=(); DR=()
for _ in $(seq 1 "${ROUNDS:-3}"); do
  UP+=("$(curl -sf -o /dev/null -w '%{time_total}' "${AUTH[@]}" -H 'content-type: application/octet-stream' \
    -H 'x-upsert: true' -X POST -T "$SRC" "$API/storage/v1/object/bench/big.bin")")
  DW+=("$(elapsed dd if="$SRC" of="$DATA/copy.bin" bs=1M conv=fsync status=none)")
done
touch "$DATA/upload.done"; wait "$SAMPLER" || true
AFTER=$(rss); PEAK=$(cat "$DATA/peak")
cpu() { awk '{print $14 + $15}' "/proc/$UP_PID/stat"; }
CPU0=$(cpu)
for _ in $(seq 1 "${ROUNDS:-3}"); do
  drop; DOWN+=("$(curl -sf -o /dev/null -w '%{time_total}' "${AUTH[@]}" "$API/storage/v1/object/bench/big.bin")")
  drop; DR+=("$(elapsed dd if="$DATA/copy.bin" of=/dev/null bs=1M status=none)")
done
CPU_MS=$(( ($(cpu) - CPU0) * 1000 / $(getconf CLK_TCK) ))
# From the page cache (what the service itself costs, without the disk): the gateway against curl
# reading the same bytes from the file.
curl -sf -o /dev/null "${AUTH[@]}" "$API/storage/v1/object/bench/big.bin"
WARM=$(curl -sf -o /dev/null -w '%{speed_download}' "${AUTH[@]}" "$API/storage/v1/object/bench/big.bin")
cat "$DATA/copy.bin" >/dev/null
WARM_FILE=$(curl -sf -o /dev/null -w '%{speed_download}' "file://$DATA/copy.bin")

python3 - "$SIZE_MB" "${UP[*]}" "${DW[*]}" "${DOWN[*]}" "${DR[*]}" "$BEFORE" "$PEAK" "$AFTER" "$CPU_MS" "${ROUNDS:-3}" "$WARM" "$WARM_FILE" <<'PY'
import statistics, sys
mb = float(sys.argv[1])
up, dw, down, dr = (statistics.median(float(x) for x in a.split()) for a in sys.argv[2:6])
before, peak, after = (int(x) / 1024 for x in sys.argv[6:9])
print(f"upload through the gateway {mb/up:.0f} MB/s, direct write {mb/dw:.0f} MB/s: ratio {dw/up:.2f} (target >= 0.7)")
print(f"download through the gateway {mb/down:.0f} MB/s, direct read {mb/dr:.0f} MB/s: ratio {dr/down:.2f} (target >= 0.7)")
warm, warm_file = float(sys.argv[11]) / 1e6, float(sys.argv[12]) / 1e6
print(f"download from the page cache: through the gateway {warm:.0f} MB/s, curl reading the file {warm_file:.0f} MB/s: ratio {warm/warm_file:.2f}")
print(f"supactl CPU per GiB downloaded: {float(sys.argv[9]) / int(sys.argv[10]) / (mb / 1024):.0f} ms")
print(f"supactl resident memory during the uploads: {before:.1f} MiB before, {peak:.1f} MiB peak, {after:.1f} MiB after")
PY
