"""The control plane through `supactl up` and the CLI: key revocation reaching a second gateway replica
through Redis (its own cache TTL is set long, so only the pub/sub message can explain the speed), JWT
rotation, pause/restore, secrets, workers."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import httpx
import pytest
from supabase import create_client

from conftest import BIN, Platform, free_port

ITEMS = """
create table items (id serial primary key, name text);
insert into items (name) values ('one');
alter table items enable row level security;
create policy read_all on items for select using (true);
"""


@pytest.fixture(scope="module")
def redis_url():
    server = shutil.which("redis-server")
    assert server, "redis-server is installed by scripts/setup.sh"
    port = free_port()
    d = tempfile.mkdtemp(prefix="supactl-redis-")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            import socket
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_platform(redis_url):
    class RedisPlatform(Platform):
        def args(self):
            return super().args() + ["--redis-url", redis_url]
    p = RedisPlatform().start()
    yield p
    p.stop()
    p.remove()


@pytest.fixture(scope="module")
def replica(redis_platform, redis_url):
    """A second gateway process, as another ECS task would be, with a 60 s cache TTL."""
    secrets = json.load(open(os.path.join(redis_platform.data_dir, "secrets.json")))
    port = free_port()
    env = dict(os.environ, SUPACTL_SERVICE_TOKEN=secrets["service_token"])
    proc = subprocess.Popen([BIN, "serve", "gateway", "--port", str(port), "--tenant-manager-url",
                             redis_platform.admin_url, "--redis-url", redis_url, "--cache-ttl", "60"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def wait_for(predicate, limit, what):
    start = time.time()
    while not predicate():
        assert time.time() - start < limit, f"{what} did not happen within {limit} s"
        time.sleep(0.02)
    return time.time() - start


def test_revoked_key_is_rejected_by_every_replica(redis_platform, replica):
    p = redis_platform.create_project("Revocation")
    redis_platform.sql(p, ITEMS)
    created = json.loads(redis_platform.cli("project", "keys", "create", p.ref, "--type", "secret",
                                            "--name", "temp", "--output", "json").stdout)
    key = created["opaque_key"]
    gateways = [redis_platform.gateway_url, replica]

    def status(gw):
        return httpx.get(f"{gw}/p/{p.ref}/rest/v1/items", headers={"apikey": key}).status_code

    for gw in gateways:
        assert status(gw) == 200, gw  # warms both caches with the key
    redis_platform.cli("project", "keys", "revoke", p.ref, created["id"])
    elapsed = max(wait_for(lambda gw=gw: status(gw) == 401, 1.0, f"revocation at {gw}") for gw in gateways)
    assert elapsed < 1.0
    # The other keys are untouched on both replicas.
    for gw in gateways:
        assert httpx.get(f"{gw}/p/{p.ref}/rest/v1/items", headers={"apikey": p.secret}).status_code == 200


def test_pause_and_restore_through_the_cli(redis_platform, replica):
    p = redis_platform.create_project("Napper")
    redis_platform.sql(p, ITEMS)
    sb = create_client(p.url, p.secret)
    assert sb.table("items").select("name").execute().data == [{"name": "one"}]
    assert "paused" in redis_platform.cli("project", "pause", p.ref).stdout
    for gw in (redis_platform.gateway_url, replica):
        def paused():
            r = httpx.get(f"{gw}/p/{p.ref}/rest/v1/items", headers={"apikey": p.secret})
            return r.status_code == 503 and r.json()["code"] == "project_paused" and p.ref in r.json()["message"]
        wait_for(paused, 1.0, "pause")
    health = redis_platform.cli("project", "health", p.ref, check=False)
    assert health.returncode == 1
    redis_platform.cli("project", "restore", p.ref)
    wait_for(lambda: httpx.get(f"{replica}/p/{p.ref}/rest/v1/items", headers={"apikey": p.secret}).status_code == 200,
             1.0, "restore")
    assert sb.table("items").select("name").execute().data == [{"name": "one"}]
    assert "ok" in redis_platform.cli("project", "health", p.ref).stdout


def metric(text, series):
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(series))


def test_invalidations_are_counted_with_their_lag(redis_platform):
    before = redis_platform.admin("GET", "/metrics").text
    p = redis_platform.create_project("Lagging")
    redis_platform.cli("project", "pause", p.ref)
    redis_platform.cli("project", "restore", p.ref)
    counted = 'supactl_directory_invalidations_total{kind="project"}'
    lag = "supactl_directory_invalidation_lag_seconds_count"
    for _ in range(50):
        text = redis_platform.admin("GET", "/metrics").text
        if metric(text, lag) >= metric(before, lag) + 2:
            break
        time.sleep(0.1)
    assert metric(text, counted) >= metric(before, counted) + 2, text
    assert metric(text, lag) >= metric(before, lag) + 2, text
    # same host, same clock: well under a second each
    added = metric(text, lag) - metric(before, lag)
    spent = metric(text, "supactl_directory_invalidation_lag_seconds_sum") - metric(before, "supactl_directory_invalidation_lag_seconds_sum")
    assert 0 <= spent / added < 1.0, (spent, added)


def test_rotate_jwt_keeps_old_tokens_for_the_grace_period(redis_platform):
    p = redis_platform.create_project("Rotation")
    listed = json.loads(redis_platform.cli("project", "jwt", "list", p.ref, "--output", "json").stdout)
    assert [k["status"] for k in listed] == ["current"]
    rotated = json.loads(redis_platform.cli("project", "rotate-jwt", p.ref, "--grace-seconds", "120",
                                            "--output", "json").stdout)
    assert [k["status"] for k in rotated] == ["previous", "current"]
    assert rotated[0]["expires_at"]
    assert "previous JWT secret revoked" in redis_platform.cli("project", "jwt", "revoke-previous", p.ref).stdout
    listed = json.loads(redis_platform.cli("project", "jwt", "list", p.ref, "--output", "json").stdout)
    assert [k["status"] for k in listed] == ["current"]


def test_secrets_are_write_only(redis_platform):
    p = redis_platform.create_project("Secretive")
    assert "set 2 secret(s)" in redis_platform.cli("secrets", "set", p.ref, "API_TOKEN=tok_123456", "OTHER=x").stdout
    out = redis_platform.cli("secrets", "list", p.ref, "--output", "json").stdout
    assert [s["name"] for s in json.loads(out)] == ["API_TOKEN", "OTHER"]
    assert "tok_123456" not in out
    assert "tok_123456" not in redis_platform.cli("secrets", "list", p.ref).stdout
    bad = redis_platform.cli("secrets", "set", p.ref, "novalue", check=False)
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr
    redis_platform.cli("secrets", "unset", p.ref, "OTHER")
    assert [s["name"] for s in json.loads(redis_platform.cli("secrets", "list", p.ref, "--output", "json").stdout)] == ["API_TOKEN"]


def test_worker_commands(redis_platform):
    workers = json.loads(redis_platform.cli("worker", "list", "--output", "json").stdout)
    local = next(w for w in workers if w["identifier"] == "local")
    assert "admin_password" not in local and local["current_databases"] >= 1
    assert "least-used" in redis_platform.cli("worker", "placement").stdout
    bad = redis_platform.cli("worker", "add", "worker-9", "--host", "127.0.0.1", "--port", str(redis_platform.db_port),
                             env={"SUPACTL_WORKER_PASSWORD": "wrong"}, check=False)
    assert bad.returncode == 1 and "admin_password" in bad.stderr and "wrong" not in bad.stderr
    removal = redis_platform.cli("worker", "remove", str(local["id"]), check=False)
    assert removal.returncode == 1 and "409" in removal.stderr
