#!/usr/bin/env bash
# Creates (once) a Python venv with the pinned AWS emulator used by the stacks tests and prints the path of
# its moto_server executable. Idempotent: a venv that already has the pinned version is reused.
#   MOTO_VENV   venv directory (default: $HOME/.cache/supactl/venv-moto)
set -euo pipefail
MOTO_VERSION="5.2.5"
VENV="${MOTO_VENV:-$HOME/.cache/supactl/venv-moto}"
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9   # parallel test binaries may ask at once
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi
echo "$VENV/bin/moto_server"
