"""Realtime across two gateway replicas, with the real supabase-py async client: `supactl up` (replica A,
with the tenant-manager) and a second `supactl serve gateway` (replica B, its own process and loopback
port) share the platform database, the service token and a real redis-server. A client on one replica
receives what a client on the other broadcasts (also through B's REST broadcast endpoint), presence
joins and leaves are seen across them, a key that does not authenticate is refused by B too, and B's
`--realtime-capture-slots 0` refuses postgres_changes there while A serves them."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import httpx
import pytest
from supabase import acreate_client

from conftest import BIN, Platform, free_port
from test_realtime import joined, wait_for


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="supactl-e2e-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                assert time.time() < deadline, "redis-server did not start"
                time.sleep(0.1)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class RedisPlatform(Platform):
    """`supactl up` with Redis (replica A)."""

    def __init__(self, redis_url):
        super().__init__()
        self.redis_url = redis_url

    def args(self):
        return super().args() + ["--redis-url", self.redis_url]


class Replica:
    """A second gateway (`supactl serve gateway`) beside a running platform."""

    def __init__(self, platform, redis_url, *extra):
        self.port, self.metrics_port = free_port(), free_port()
        with open(os.path.join(platform.data_dir, "secrets.json")) as f:
            token = json.load(f)["service_token"]
        self.token = token
        # the secret comes from the environment, as on ECS, never from a flag in the process list
        env = dict(os.environ, SUPACTL_SERVICE_TOKEN=token)
        self.log_path = os.path.join(tempfile.gettempdir(), f"supactl-gateway-{self.port}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "gateway", "--port", str(self.port),
             "--tenant-manager-url", platform.admin_url, "--redis-url", redis_url,
             "--api-url-template", f"{platform.gateway_url}/p/{{ref}}",
             "--metrics-port", str(self.metrics_port), *extra],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            assert self.proc.poll() is None, f"the replica exited: {open(self.log_path).read()}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, open(self.log_path).read()
            time.sleep(0.2)

    def url(self, project):
        return f"http://127.0.0.1:{self.port}/p/{project.ref}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


@pytest.fixture(scope="module")
def replicas():
    redis = RedisServer()
    a = RedisPlatform(redis.url).start()
    b = Replica(a, redis.url, "--realtime-capture-slots", "0")
    yield a, b
    assert b.stop() == 0, open(b.log_path).read()
    assert a.stop() == 0, open(a.log_path).read()
    redis.stop()
    a.remove()
    os.remove(b.log_path)


def test_broadcast_crosses_replicas_both_ways(replicas):
    a, b = replicas
    p = a.create_project("rt-replicas")

    async def run():
        on_a, on_b = await acreate_client(p.url, p.anon), await acreate_client(b.url(p), p.anon)
        got = {"a": [], "b": []}
        on = lambda who: (lambda ch: ch.on_broadcast("msg", lambda m: got[who].append(m["payload"])))
        ch_a = await joined(on_a, "room", on=on("a"))
        ch_b = await joined(on_b, "room", on=on("b"))
        await ch_b.send_broadcast("msg", {"from": "b"})
        await wait_for(lambda: got["a"])
        await ch_a.send_broadcast("msg", {"from": "a"})
        await wait_for(lambda: got["b"])
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{b.url(p)}/realtime/v1/api/broadcast", headers={"apikey": p.secret},
                                json={"messages": [{"topic": "room", "event": "msg", "payload": {"rest": 1}}]})
            assert r.status_code == 202, r.text
        await wait_for(lambda: len(got["a"]) == 2 and len(got["b"]) == 2)
        await asyncio.sleep(0.3)
        assert got == {"a": [{"from": "b"}, {"rest": 1}], "b": [{"from": "a"}, {"rest": 1}]}
        for c in (on_a, on_b):
            await c.realtime.close()

    asyncio.run(run())


def test_presence_is_shared_across_replicas(replicas):
    a, b = replicas
    p = a.create_project("rt-replicas-presence")

    async def run():
        watcher, walker = await acreate_client(p.url, p.anon), await acreate_client(b.url(p), p.anon)
        joins, leaves = [], []

        def on(ch):
            ch.on_presence_join(lambda key, cur, new: joins.append(key))
            ch.on_presence_leave(lambda key, cur, left: leaves.append(key))
        ch_watch = await joined(watcher, "lobby", {"presence": {"key": "watcher"}}, on=on)
        ch_walk = await joined(walker, "lobby", {"presence": {"key": "walker"}},
                               on=lambda ch: ch.on_presence_sync(lambda: None))
        await ch_watch.track({"at": "a"})
        await ch_walk.track({"at": "b"})
        await wait_for(lambda: "walker" in joins)
        assert ch_watch.presence_state()["walker"][0]["at"] == "b"
        await wait_for(lambda: "watcher" in ch_walk.presence_state())
        assert ch_walk.presence_state()["watcher"][0]["at"] == "a", "A's entries reach B's state"
        await walker.realtime.close()
        await wait_for(lambda: "walker" in leaves, within=10)
        assert "walker" not in ch_watch.presence_state()
        await watcher.realtime.close()

    asyncio.run(run())


def test_the_second_replica_refuses_unknown_keys_and_has_its_own_capture_cap(replicas):
    a, b = replicas
    p = a.create_project("rt-replicas-keys")
    a.sql(p, "create table feed (id serial primary key, body text);"
             "alter publication supabase_realtime add table feed;")
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    ws = f"{b.url(p)}/realtime/v1/websocket?vsn=1.0.0"
    r = httpx.get(ws + "&apikey=sb_publishable_nope", headers=upgrade)
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"

    async def run():
        on_a, on_b = await acreate_client(p.url, p.anon), await acreate_client(b.url(p), p.anon)
        systems = {"a": [], "b": []}
        states = []

        def on(who):
            def register(ch):
                ch.on_postgres_changes("INSERT", lambda m: None, table="feed", schema="public")
                ch.on_system(lambda m: systems[who].append(m.message))
            return register
        await joined(on_a, "db-feed", on=on("a"))
        await joined(on_b, "db-feed", on=on("b"), states=states)
        await wait_for(lambda: systems["a"], within=10)
        assert systems["a"] == ["Subscribed to PostgreSQL"]
        # B may open no capture slot: the join succeeds, then a system error says why
        await wait_for(lambda: any("CHANNEL_ERROR" in s for s in states), within=10)
        assert any("too many projects with active subscriptions" in s for s in states), states
        for c in (on_a, on_b):
            await c.realtime.close()

    asyncio.run(run())


def test_a_replica_serves_its_metrics_on_its_own_listener(replicas):
    a, b = replicas
    p = a.create_project("replica metrics")
    assert httpx.get(f"{b.url(p)}/rest/v1/", headers={"apikey": p.anon}).status_code == 200
    metrics = f"http://127.0.0.1:{b.metrics_port}/metrics"
    assert httpx.get(metrics).status_code == 401
    assert httpx.get(metrics, headers={"Authorization": "Bearer nope"}).status_code == 401
    text = httpx.get(metrics, headers={"Authorization": f"Bearer {b.token}"}).text
    assert f'supactl_gateway_requests_total{{project="{p.ref}",route="rest",status="200"}} 1' in text, text
    assert httpx.get(f"http://127.0.0.1:{b.port}/metrics").status_code == 404
