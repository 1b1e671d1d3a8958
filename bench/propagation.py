"""Key-revocation propagation: time from the admin API's revoke answer until a second gateway replica
rejects the key, over N revocations — with Redis pub/sub (replica cache TTL 60 s, so only the message can
explain a fast rejection) and without Redis (the replica's 1 s TTL is the bound). Prints p50/p95/max.
Run: bench/propagation.sh (it builds supactl and uses the e2e venv)."""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from conftest import BIN, Platform, free_port  # noqa: E402

N = int(os.environ.get("N", "20"))


def start_redis():
    port = free_port()
    d = tempfile.mkdtemp(prefix="supactl-bench-redis-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}"


def start_replica(platform, redis_url, ttl):
    secrets = json.load(open(os.path.join(platform.data_dir, "secrets.json")))
    port = free_port()
    args = [BIN, "serve", "gateway", "--port", str(port), "--tenant-manager-url", platform.admin_url,
            "--cache-ttl", str(ttl)]
    if redis_url:
        args += ["--redis-url", redis_url]
    proc = subprocess.Popen(args, env=dict(os.environ, SUPACTL_SERVICE_TOKEN=secrets["service_token"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def measure(platform, replica, ref):
    client = httpx.Client()
    times = []
    for i in range(N):
        created = platform.admin("POST", f"/admin/v1/projects/{ref}/api-keys",
                                 {"type": "secret", "name": f"k{i}"}).json()["data"]
        key = created["opaque_key"]
        url = f"{replica}/p/{ref}/rest/v1/items"
        assert client.get(url, headers={"apikey": key}).status_code == 200
        platform.admin("DELETE", f"/admin/v1/projects/{ref}/api-keys/{created['id']}")
        start = time.perf_counter()
        while client.get(url, headers={"apikey": key}).status_code != 401:
            time.sleep(0.001)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times


def report(label, times):
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{label}: p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms over {len(times)} revocations")


def main():
    redis, redis_url = start_redis()

    class WithRedis(Platform):
        def args(self):
            return super().args() + ["--redis-url", redis_url]

    platform = WithRedis().start()
    try:
        p = platform.create_project("Propagation")
        platform.sql(p, "create table items (id int); alter table items enable row level security;")
        for label, redis_for_replica, ttl in (("redis pub/sub, replica TTL 60 s", redis_url, 60),
                                              ("no redis, replica TTL 1 s", None, 1)):
            proc, url = start_replica(platform, redis_for_replica, ttl)
            try:
                report(label, measure(platform, url, p.ref))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    finally:
        platform.stop()
        shutil.rmtree(platform.data_dir, ignore_errors=True)
        redis.terminate()


if __name__ == "__main__":
    main()
