"""One request must never take the platform down, nor hold the database for nobody, against a real
`supactl up`: deep REST requests sent with the publishable key (public by design) are refused with
400 PGRST100 and the process keeps serving; statements run under their role's statement timeout; a
client that gives up cancels its statement."""

import time

import httpx
import pytest

SCHEMA = """
create table a (id int primary key, data jsonb);
create table b (id int primary key, a_id int references a(id));
insert into a values (1, '{"k": 1}');
insert into b values (1, 1);
create function slow(secs float8) returns int language sql as $$ select 1 from pg_sleep(secs) $$;
"""


@pytest.fixture(scope="module")
def project(platform):
    p = platform.create_project("Hardening")
    platform.sql(p, SCHEMA)
    return p


def rest(project, method, path, key, **kw):
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    return httpx.request(method, f"{project.url}/rest/v1/{path}", headers=headers, timeout=60, **kw)


def sleepers(platform, project):
    """Backends of the project's database sleeping in pg_sleep."""
    rows = platform.sql(project, "select count(*) as n from pg_stat_activity "
                                 "where datname = current_database() and wait_event = 'PgSleep'")
    return rows[0]["n"]


DEEP = {
    "or": "a?or=(" + "or(" * 600 + "id.eq.1" + ")" * 600 + ")",
    "select": "a?select=id," + "t(id," * 150 + "id" + ")" * 150,
    "json path": "a?data" + "->k" * 2000 + "=eq.1",
    "logic tree in an embed filter": "a?select=id,b(id)&b.or=(" + "and(not.or(" * 300 + "id.eq.1" + "))" * 300 + ")",
}


@pytest.mark.parametrize("name", list(DEEP))
def test_deep_requests_are_refused_and_the_platform_survives(platform, project, name):
    r = rest(project, "GET", DEEP[name], project.anon)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "PGRST100"
    assert "exceeds" in r.json()["message"]
    assert platform.proc.poll() is None, "supactl up died"
    r = rest(project, "GET", "a?select=id,b(id)", project.anon)
    assert r.status_code == 200
    assert r.json() == [{"id": 1, "b": [{"id": 1}]}]


def test_requests_at_the_limits_are_served(project):
    select = "id"
    for level in range(15, 0, -1):
        select = f"id,{'b' if level % 2 else 'a'}({select})"
    r = rest(project, "GET", f"a?select={select}", project.anon)
    assert r.status_code == 200, r.text
    r = rest(project, "GET", "a?select=id&or=(" + "or(" * 15 + "id.eq.1" + ")" * 15 + ")", project.anon)
    assert r.json() == [{"id": 1}]


def test_statements_run_under_their_roles_timeout(project):
    r = rest(project, "POST", "rpc/slow", project.anon, json={"secs": 4})
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["code"] == "57014"
    assert body["message"] == "canceling statement due to statement timeout"
    assert "anon" in body["hint"] and "3s" in body["hint"]
    r = rest(project, "POST", "rpc/slow", project.secret, json={"secs": 4})
    assert (r.status_code, r.json()) == (200, 1)


def test_a_client_that_gives_up_cancels_its_statement(platform, project):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{project.url}/rest/v1/rpc/slow", json={"secs": 30}, timeout=1,
                   headers={"apikey": project.secret, "Authorization": f"Bearer {project.secret}"})
    # The service role's 8 s statement timeout would stop it only after these 5 s.
    deadline = time.time() + 5
    while sleepers(platform, project) > 0:
        assert time.time() < deadline, "the abandoned statement still runs"
        time.sleep(0.1)
    assert platform.proc.poll() is None
