#!/usr/bin/env bash
# Key-revocation propagation to a second gateway replica, with and without Redis (see propagation.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
PROFILE="${PROFILE:-release}"   # PROFILE=debug times the debug build (pub/sub latency barely depends on it)
if [ "$PROFILE" = release ]; then cargo build --release -q -p supactl; else cargo build -q -p supactl; fi
venv="$HOME/.cache/supactl/venv-e2e"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q -r tests/requirements.txt; }
SUPACTL_BIN="$CARGO_TARGET_DIR/$PROFILE/supactl" "$venv/bin/python" bench/propagation.py
