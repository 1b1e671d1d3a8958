#!/usr/bin/env bash
# Installs what supactl needs on a Debian machine and is missing: PostgreSQL server binaries, a C
# toolchain, Python's venv, curl. Safe to run again: it installs nothing that is already there.
# Rust (cargo >= 1.85) must already be installed (rustup); the script says so when it is not.
# Extra arguments name further tools (see below); the component `deno` installs the pinned Deno that runs
# Edge Functions from the npm registry (the `deno` package's Linux build, `@deno/linux-x64-glibc`) into
# $SUPACTL_DENO_DIR (default $HOME/.cache/supactl/deno) and prints the binary's path on stdout; the component
# `postgis` installs the PostGIS extension for each local PostgreSQL major (postgresql-<major>-postgis-3); the
# component `oidc-provider` installs the OpenID provider auth's OAuth tests sign in with (the npm package
# pinned in tests/oidc/package.json) into $SUPACTL_OIDC_DIR (default $HOME/.cache/supactl/oidc-provider) and
# prints that directory on stdout.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
# Extra tools by command name, or as command:package when the two differ (pidstat:sysstat).
deno=""
postgis=""
oidc=""
updated=""
for extra in "$@"; do
  if [ "$extra" = deno ]; then
    deno=1
    command -v npm >/dev/null 2>&1 || need+=(npm)
    continue
  fi
  if [ "$extra" = oidc-provider ]; then
    oidc=1
    command -v npm >/dev/null 2>&1 || need+=(npm)
    continue
  fi
  if [ "$extra" = postgis ]; then
    # After the server binaries: a fresh machine learns its major from the install just above.
    postgis=1
    continue
  fi
  command -v "${extra%%:*}" >/dev/null 2>&1 || need+=("${extra#*:}")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  updated=1
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostGIS matches the server's major version (the test clusters run /usr/lib/postgresql/<major>/bin).
if [ -n "$postgis" ]; then
  extra_need=()
  for bin in /usr/lib/postgresql/*/bin; do
    major="$(basename "$(dirname "$bin")")"
    [ -e "/usr/share/postgresql/$major/extension/postgis.control" ] || extra_need+=("postgresql-$major-postgis-3")
  done
  if [ ${#extra_need[@]} -gt 0 ]; then
    echo "setup: installing ${extra_need[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    [ -n "$updated" ] || $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${extra_need[@]}" >/dev/null
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install Rust >= 1.85 with rustup (https://rustup.rs), then run this again" >&2
  exit 2
fi

# Deno for Edge Functions, from the npm registry only. The `deno` package lists one optional dependency per
# platform; `@deno/linux-x64-glibc` ships the binary itself (`node_modules/@deno/linux-x64-glibc/deno`). The
# package's postinstall script only swaps its `bin` shim for the binary, so it is skipped (--ignore-scripts).
if [ -n "$deno" ]; then
  DENO_VERSION="2.9.6"
  dir="${SUPACTL_DENO_DIR:-$HOME/.cache/supactl/deno}"
  bin="$dir/node_modules/@deno/linux-x64-glibc/deno"
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9   # parallel test binaries may ask at once
  if [ "$("$bin" --version 2>/dev/null | head -n 1)" != "deno $DENO_VERSION (stable, release, x86_64-unknown-linux-gnu)" ]; then
    echo "setup: installing deno $DENO_VERSION from the npm registry into $dir" >&2
    printf '{"private":true,"dependencies":{"deno":"%s"}}\n' "$DENO_VERSION" >"$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --silent --ignore-scripts >&2)
  fi
  "$bin" --version >/dev/null
  echo "$bin"
fi

# The OpenID provider of auth's OAuth tests, from the npm registry (its version pinned in tests/oidc).
if [ -n "$oidc" ]; then
  dir="${SUPACTL_OIDC_DIR:-$HOME/.cache/supactl/oidc-provider}"
  pkg="$(dirname "$0")/../tests/oidc/package.json"
  mkdir -p "$dir"
  exec 8>"$dir.lock"
  flock 8
  if [ ! -d "$dir/node_modules/oidc-provider" ] || ! cmp -s "$pkg" "$dir/package.json"; then
    echo "setup: installing oidc-provider from the npm registry into $dir" >&2
    cp "$pkg" "$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --silent >&2)
  fi
  echo "$dir"
fi
