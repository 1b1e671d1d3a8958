#!/usr/bin/env bash
# Fresh machine to running platform: installs what is missing, builds supactl (release), and runs
# `supactl up` on the embedded default (a PostgreSQL cluster in the data directory). Extra arguments
# go to `supactl up` (see `supactl up --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh npm deno postgis >/dev/null  # npm: the dashboard's front-end build (runtime/studio); deno: Edge Functions (supactl up finds it where setup.sh puts it); postgis: `create extension postgis` in a project
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
cargo build --release -p supactl
exec "$CARGO_TARGET_DIR/release/supactl" up "$@"
