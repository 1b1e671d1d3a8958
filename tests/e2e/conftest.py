"""Fixtures for the end-to-end suite: a real `supactl up` (the binary in $SUPACTL_BIN) with its own
PostgreSQL cluster in a temporary data directory, on free loopback ports."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import httpx
import pytest

BIN = os.environ.get("SUPACTL_BIN", "supactl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Platform:
    """A running `supactl up` and helpers to talk to it."""

    def __init__(self, data_dir=None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="supactl-e2e-")
        self.port, self.admin_port, self.db_port = free_port(), free_port(), free_port()
        self.proc = None
        self.log_path = os.path.join(tempfile.gettempdir(), f"supactl-up-{self.port}.log")

    def args(self):
        return [BIN, "up", "--data-dir", self.data_dir, "--port", str(self.port),
                "--admin-port", str(self.admin_port), "--db-port", str(self.db_port)]

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            assert self.proc.poll() is None, f"supactl up exited: {open(self.log_path).read()}"
            try:
                if (httpx.get(f"{self.gateway_url}/health").status_code == 200
                        and httpx.get(f"{self.admin_url}/health").status_code == 200
                        and os.path.exists(self.state_path)):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"supactl up did not come up: {open(self.log_path).read()}")
        with open(self.state_path) as f:
            self.state = json.load(f)
        self.admin_key = self.state["admin_key"]
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()
        return self.proc.returncode

    def remove(self):
        """Deletes the data directory and the log (both stay behind when a test fails first)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if os.path.exists(self.log_path):
            os.remove(self.log_path)

    def postmaster_pid(self):
        """The managed PostgreSQL's postmaster, from its lock file."""
        with open(os.path.join(self.data_dir, "pg", "postmaster.pid")) as f:
            return int(f.readline())

    @property
    def state_path(self):
        return os.path.join(self.data_dir, "state.json")

    @property
    def gateway_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def admin(self, method, path, json_body=None, key=None):
        key = self.admin_key if key is None else key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, f"{self.admin_url}{path}", json=json_body, headers=headers, timeout=60)

    def create_project(self, name, ref=None):
        body = {"name": name}
        if ref:
            body["ref"] = ref
        r = self.admin("POST", "/admin/v1/projects", body)
        assert r.status_code == 201, r.text
        return Project(r.json()["data"])

    def sql(self, project, query):
        r = self.admin("POST", f"/admin/v1/projects/{project.ref}/database/query", {"query": query})
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def cli(self, *args, env=None, check=True):
        e = dict(os.environ, SUPACTL_DATA_DIR=self.data_dir)
        e.update(env or {})
        p = subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=120)
        if check:
            assert p.returncode == 0, p.stderr
        return p


class Project:
    def __init__(self, data):
        self.data = data
        self.ref = data["ref"]
        self.url = data["api_url"]
        keys = {k["type"]: k["opaque_key"] for k in data["api_keys"]}
        self.anon = keys["publishable"]
        self.secret = keys["secret"]


@pytest.fixture(scope="session")
def platform():
    p = Platform().start()
    yield p
    code = p.stop()
    assert code == 0, open(p.log_path).read()
    assert not os.path.exists(os.path.join(p.data_dir, "pg", "postmaster.pid")), "PostgreSQL was stopped"
    p.remove()


@pytest.fixture
def fresh_platform():
    """A platform of its own, for tests that stop and restart it."""
    p = Platform()
    yield p
    if p.proc:
        p.stop()
    p.remove()


# A table of notes each signed-in user owns (row-level security on auth.uid()), for the auth suites.
NOTES = """
create table notes (
  id serial primary key,
  owner uuid not null default auth.uid() references auth.users (id) on delete cascade,
  body text not null
);
alter table notes enable row level security;
create policy own_select on notes for select to authenticated using (owner = auth.uid());
create policy own_insert on notes for insert to authenticated with check (owner = auth.uid());
create policy own_update on notes for update to authenticated using (owner = auth.uid());
create policy own_delete on notes for delete to authenticated using (owner = auth.uid());
"""
