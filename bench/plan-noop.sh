#!/usr/bin/env bash
# Benchmark: a no-op `supactl plan` against a stack deployed in the AWS emulator (moto_server on loopback).
# Prints wall time and AWS API calls per run (target: ≤ 5 s and zero mutating calls).
#   SUPACTL   the binary (default: $CARGO_TARGET_DIR/debug/supactl, built if missing)
#   RUNS      number of timed plans (default 5)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-5}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SUPACTL="${SUPACTL:-$TARGET/debug/supactl}"
if [ ! -x "$SUPACTL" ]; then
    (cd "$ROOT" && cargo build -q -p supactl)
fi
MOTO="${MOTO_SERVER:-$("$ROOT/scripts/moto-venv.sh")}"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
WORK="$(mktemp -d)"
MOTO_ACM_VALIDATION_WAIT=0 "$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill -KILL "$MOTO_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1 && break
    sleep 0.1
done

# dummy credentials: the emulator accepts any; nothing leaves this machine
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# what a user has before the first deploy: an ISSUED certificate for the domain, and the images pushed (the
# repositories carry the stack's ownership tags, as `supactl push --env` makes them; fake manifests)
CERT="$("$(dirname "$MOTO")/python" - "$PORT" <<'PY'
import sys, json, boto3
kw = dict(endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
arn = boto3.client("acm", **kw).request_certificate(
    DomainName="*.supabase.example.com", ValidationMethod="DNS")["CertificateArn"]
ecr = boto3.client("ecr", **kw)
for i, image in enumerate(["gateway", "tenant-manager", "functions", "rest-lambda"]):
    repo = f"supabase-on-aws-test/{image}"
    ecr.create_repository(repositoryName=repo, tags=[
        {"Key": "supactl:stack", "Value": "supabase-on-aws"}, {"Key": "supactl:env", "Value": "test"},
        {"Key": "supactl:id", "Value": f"ecr/{image}"}])
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "c" * 64, "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + str(i) * 64, "size": 1}]}
    ecr.put_image(repositoryName=repo, imageManifest=json.dumps(manifest), imageTag="latest")
print(arn)
PY
)"
sed -e 's/<your-aws-region>/us-east-1/' -e 's/<your-aws-account-id>/123456789012/' -e 's/<deployment-date>/2026-11-26/' \
    -e 's/<your-base-domain>/supabase.example.com/' -e "s|<your-acm-certificate-arn>|$CERT|" \
    "$ROOT/config.test.json" >"$WORK/config.test.json"
ARGS=(--config "$WORK/config.test.json" --endpoint-url "http://127.0.0.1:$PORT")

"$SUPACTL" deploy "${ARGS[@]}" --yes --emulator-quirks >/dev/null 2>"$WORK/deploy.err" || { cat "$WORK/deploy.err"; exit 1; }
echo "deployed the test stack into moto_server on 127.0.0.1:$PORT"
echo "run  wall_s  api_calls  mutating  exit"
for i in $(seq 1 "$RUNS"); do
    start=$(date +%s.%N)
    set +e
    "$SUPACTL" plan "${ARGS[@]}" --api-stats --detailed-exitcode >/dev/null 2>"$WORK/plan.err"
    code=$?
    set -e
    end=$(date +%s.%N)
    line="$(grep '^api calls:' "$WORK/plan.err")"
    calls="$(sed -E 's/api calls: ([0-9]+).*/\1/' <<<"$line")"
    mut="$(sed -E 's/.*\(([0-9]+) mutating.*/\1/' <<<"$line")"
    printf "%-4s %-7.3f %-10s %-9s %s\n" "$i" "$(echo "$end - $start" | bc)" "$calls" "$mut" "$code"
done
