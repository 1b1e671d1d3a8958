#!/usr/bin/env bash
# Image size per service (compressed: config + layers, what a registry stores and a node pulls) and the time
# of `supactl build`: the release compile, then the image assembly alone, then a second assembly to show the
# digests are reproducible. Target: gateway <= 30 MB compressed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
export CARGO_TERM_COLOR=never
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

t0=$(date +%s.%N)
cargo build --release -q -p supactl
t1=$(date +%s.%N)
bin="$CARGO_TARGET_DIR/release/supactl"
"$bin" build --binary "$bin" --out "$out/a" > "$out/a.txt"
t2=$(date +%s.%N)
"$bin" build --binary "$bin" --out "$out/b" > "$out/b.txt"

printf 'release compile (incremental as found): %6.1f s\n' "$(echo "$t1 - $t0" | bc)"
printf 'image assembly, all services:           %6.1f s\n' "$(echo "$t2 - $t1" | bc)"
printf 'supactl binary (stripped release):      %6.1f MB\n' "$(echo "$(stat -c %s "$bin") / 1000000" | bc -l)"
echo "linked: $(ldd "$bin" | awk '{print $1}' | tr '\n' ' ')"
status=0
while read -r svc digest size unit _; do
  again=$(awk -v s="$svc" '$1 == s {print $2}' "$out/b.txt")
  verdict="ok"
  if [ "$svc" = gateway ] && [ "$(echo "$size > 30" | bc)" = 1 ]; then verdict="OVER TARGET (30 MB)"; status=1; fi
  repro=$([ "$digest" = "$again" ] && echo reproducible || echo "NOT reproducible")
  printf '%-16s %6s %s compressed  %s  %s  %s\n' "$svc" "$size" "$unit" "$digest" "$repro" "$verdict"
done < "$out/a.txt"
exit $status
