"""`supactl up` supervises its PostgreSQL: when the postmaster is killed, the platform restarts it by itself,
REST requests succeed again without anyone touching it, the log records the death and the restart, and
SIGTERM still stops PostgreSQL cleanly afterwards."""

import os
import signal
import time

import httpx

ITEMS = """
create table items (id serial primary key, name text not null);
insert into items (name) values ('kept');
"""


def test_a_killed_postmaster_is_restarted_and_requests_recover_by_themselves(fresh_platform):
    p = fresh_platform.start()
    project = p.create_project("Supervised")
    p.sql(project, ITEMS)
    headers = {"apikey": project.secret, "Authorization": f"Bearer {project.secret}"}
    items = f"{project.url}/rest/v1/items"
    r = httpx.get(f"{items}?select=name", headers=headers, timeout=30)
    assert r.status_code == 200 and r.json() == [{"name": "kept"}], r.text

    killed = p.postmaster_pid()
    os.kill(killed, signal.SIGKILL)

    deadline = time.time() + 120
    while True:
        try:
            r = httpx.get(f"{items}?select=name", headers=headers, timeout=10)
            if r.status_code == 200 and r.json() == [{"name": "kept"}]:
                break
        except httpx.HTTPError:
            pass
        assert time.time() < deadline, f"requests did not recover: {open(p.log_path).read()}"
        time.sleep(0.25)

    r = httpx.post(items, headers={**headers, "Prefer": "return=representation"},
                   json={"name": "after"}, timeout=30)
    assert r.status_code == 201 and r.json()[0]["name"] == "after", r.text
    assert p.postmaster_pid() != killed

    # info lines off a terminal reach stderr within half a second (buffered; warnings at once)
    for _ in range(30):
        log = open(p.log_path).read()
        if "PostgreSQL restarted (postmaster pid" in log:
            break
        time.sleep(0.2)
    assert f"PostgreSQL postmaster (pid {killed}) died" in log, log
    assert "PostgreSQL restarted (postmaster pid" in log, log
    # the supervisor's lines sit with the server's own output in the log files (written out twice a second)
    for _ in range(30):
        pg_log = open(os.path.join(p.data_dir, "logs", "postgres.log")).read()
        if "PostgreSQL restarted (postmaster pid" in pg_log:
            break
        time.sleep(0.2)
    assert "PostgreSQL restarted (postmaster pid" in pg_log and "ready to accept connections" in pg_log

    assert p.stop() == 0, open(p.log_path).read()
    assert not os.path.exists(os.path.join(p.data_dir, "pg", "postmaster.pid")), "PostgreSQL was stopped"
