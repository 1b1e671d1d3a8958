#!/usr/bin/env bash
# Soak and fault benchmark (prints figures, asserts nothing): a release `supactl up` with its own Redis under
# a mixed workload (REST reads and writes, auth refresh grants, a project created and deleted every 10 s) at
# 80 % of the peak measured first, for SECONDS (default 600); then PostgreSQL's postmaster is SIGKILLed,
# Redis restarted and supactl SIGKILLed and restarted under the same load, and every acknowledged write is
# checked. The driver is cli/examples/soak.rs.
# Usage: bench/soak.sh [seconds]   (SOAK_PEAK_SECONDS=10, SOAK_FAULT_SECONDS=40)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
cargo build --release -q -p supactl --bin supactl --example soak
exec "$CARGO_TARGET_DIR/release/examples/soak" "$CARGO_TARGET_DIR/release/supactl" "${1:-600}"
