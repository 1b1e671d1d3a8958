#!/usr/bin/env bash
# Installs what supactl needs on a Debian machine and is missing: PostgreSQL server binaries, a C
# toolchain, Python's venv, curl. Safe to run again: it installs nothing that is already there.
# Rust (cargo >= 1.85) must already be installed (rustup); the script says so when it is not.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
# Extra tools by command name, or as command:package when the two differ (pidstat:sysstat).
for extra in "$@"; do
  command -v "${extra%%:*}" >/dev/null 2>&1 || need+=("${extra#*:}")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install Rust >= 1.85 with rustup (https://rustup.rs), then run this again" >&2
  exit 2
fi
