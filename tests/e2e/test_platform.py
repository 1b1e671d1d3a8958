"""The walking skeleton end to end: projects through the admin API and the CLI, data through the
gateway with the real supabase-py client, row-level security, key isolation between projects."""

import json
import socket
import time

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import create_client

TODOS = """
create table todos (id serial primary key, title text not null, done boolean not null default false);
alter table todos enable row level security;
create policy anon_read_open on todos for select to anon using (not done);
"""


@pytest.fixture(scope="module")
def projects(platform):
    a = platform.create_project("Project A")
    b = platform.create_project("Project B", ref="e2e-proj-b")
    platform.sql(a, TODOS)
    platform.sql(b, TODOS)
    return a, b


def test_create_response_shape(projects, platform):
    a, b = projects
    assert b.ref == "e2e-proj-b"
    assert len(a.ref) == 20 and a.ref.isalpha()
    assert a.data["status"] == "ACTIVE_HEALTHY"
    assert a.url == f"{platform.gateway_url}/p/{a.ref}"
    roles = {(k["type"], k["role"]) for k in a.data["api_keys"]}
    assert roles == {("publishable", "anon"), ("secret", "service_role")}
    for k in a.data["api_keys"]:
        assert k["opaque_key"].startswith(k["prefix"])
        assert len(k["opaque_key"]) == len(f"sb_{k['type']}_") + 32


def test_list_show_and_keys(projects, platform):
    a, _ = projects
    listed = {p["ref"] for p in platform.admin("GET", "/admin/v1/projects").json()["data"]}
    assert {a.ref, "e2e-proj-b"} <= listed
    shown = platform.admin("GET", f"/admin/v1/projects/{a.ref}").json()["data"]
    assert shown["name"] == "Project A"
    keys = platform.admin("GET", f"/admin/v1/projects/{a.ref}/api-keys?reveal=true").json()["data"]
    assert {k["opaque_key"] for k in keys} == {a.anon, a.secret}
    masked = platform.admin("GET", f"/admin/v1/projects/{a.ref}/api-keys").json()["data"]
    assert {k["opaque_key"] for k in masked} == {a.anon, None}, "secret keys are shown only on reveal"
    assert platform.admin("GET", "/admin/v1/projects/does-not-exist").status_code == 404


def test_service_role_crud_and_upsert(projects):
    a, _ = projects
    sb = create_client(a.url, a.secret)
    rows = sb.table("todos").insert([{"title": "one"}, {"title": "two"}, {"title": "three"}]).execute().data
    assert [r["title"] for r in rows] == ["one", "two", "three"]
    ids = [r["id"] for r in rows]

    got = sb.table("todos").select("id,title").eq("id", ids[0]).execute().data
    assert got == [{"id": ids[0], "title": "one"}]

    upd = sb.table("todos").update({"done": True}).eq("id", ids[2]).execute().data
    assert upd[0]["done"] is True

    up = sb.table("todos").upsert({"id": ids[1], "title": "TWO"}).execute().data
    assert up[0]["title"] == "TWO"
    up = sb.table("todos").upsert([{"id": 1000, "title": "new"}]).execute().data
    assert up[0]["id"] == 1000

    ordered = sb.table("todos").select("title").order("id", desc=True).limit(2).execute().data
    assert ordered == [{"title": "new"}, {"title": "three"}]

    deleted = sb.table("todos").delete().eq("id", 1000).execute().data
    assert [d["id"] for d in deleted] == [1000]
    remaining = sb.table("todos").select("id").in_("id", ids + [1000]).execute().data
    assert sorted(r["id"] for r in remaining) == sorted(ids)


def test_anon_is_limited_by_row_level_security(projects):
    a, _ = projects
    admin = create_client(a.url, a.secret)
    admin.table("todos").insert([{"title": "open", "done": False}, {"title": "closed", "done": True}]).execute()
    anon = create_client(a.url, a.anon)
    seen = anon.table("todos").select("title,done").execute().data
    assert seen and all(r["done"] is False for r in seen)
    assert "closed" not in {r["title"] for r in seen}
    with pytest.raises(APIError) as e:
        anon.table("todos").insert({"title": "sneaky"}).execute()
    assert e.value.code == "42501"
    assert not admin.table("todos").select("id").eq("title", "sneaky").execute().data


def test_invalid_keys_are_rejected(projects):
    a, _ = projects
    url = f"{a.url}/rest/v1/todos"
    for headers in ({}, {"apikey": "not-a-key"}, {"apikey": "sb_secret_" + "x" * 32},
                    {"apikey": "sb_publishable_" + "0" * 32, "Authorization": "Bearer sb_publishable_" + "0" * 32}):
        r = httpx.get(url, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["message"]


def test_keys_of_one_project_do_not_open_another(projects):
    a, b = projects
    owner = create_client(b.url, b.secret)
    owner.table("todos").insert({"title": "b-only"}).execute()
    before = owner.table("todos").select("*").order("id").execute().data
    for key in (a.secret, a.anon):
        intruder = create_client(b.url, key)
        for attempt in (
            lambda c: c.table("todos").select("*").execute(),
            lambda c: c.table("todos").insert({"title": "x"}).execute(),
            lambda c: c.table("todos").update({"title": "x"}).gt("id", 0).execute(),
            lambda c: c.table("todos").delete().gt("id", 0).execute(),
        ):
            with pytest.raises(APIError) as e:
                attempt(intruder)
            assert e.value.code in ("invalid_api_key",), e.value
    assert owner.table("todos").select("*").order("id").execute().data == before


def test_admin_api_requires_the_key(platform, projects):
    a, _ = projects
    for method, path, body in (
        ("GET", "/admin/v1/projects", None),
        ("POST", "/admin/v1/projects", {"name": "x"}),
        ("GET", f"/admin/v1/projects/{a.ref}", None),
        ("DELETE", f"/admin/v1/projects/{a.ref}", None),
        ("GET", f"/admin/v1/projects/{a.ref}/api-keys", None),
        ("POST", f"/admin/v1/projects/{a.ref}/database/query", {"query": "select 1"}),
    ):
        for key in ("", "wrong-key"):
            r = platform.admin(method, path, body, key=key)
            assert r.status_code == 401, (method, path)
            assert r.json()["code"] == "unauthorized"
    assert platform.admin("GET", f"/admin/v1/projects/{a.ref}").status_code == 200


def test_query_endpoint_errors(platform, projects):
    a, _ = projects
    r = platform.admin("POST", f"/admin/v1/projects/{a.ref}/database/query", {"query": "select * from nowhere"})
    assert r.status_code == 400
    assert r.json()["code"] == "42P01" and "nowhere" in r.json()["message"]
    r = platform.admin("POST", f"/admin/v1/projects/{a.ref}/database/query", {"sql": "select 1"})
    assert r.status_code == 400 and "query" in r.json()["message"]


def test_deleted_project_keys_stop_working(platform):
    p = platform.create_project("Short-lived")
    platform.sql(p, TODOS)
    sb = create_client(p.url, p.secret)
    sb.table("todos").insert({"title": "bye"}).execute()
    assert platform.admin("DELETE", f"/admin/v1/projects/{p.ref}").status_code == 204
    deadline = time.time() + 2
    while True:
        r = httpx.get(f"{p.url}/rest/v1/todos", headers={"apikey": p.secret})
        if r.status_code in (401, 404):
            break
        assert time.time() < deadline, f"still served after 2 s: {r.status_code}"
        time.sleep(0.1)
    assert platform.admin("GET", f"/admin/v1/projects/{p.ref}").status_code == 404


def test_cors_preflight(projects):
    a, _ = projects
    r = httpx.options(f"{a.url}/rest/v1/todos", headers={
        "Origin": "http://example.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "apikey, authorization, content-type"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "apikey" in r.headers["access-control-allow-headers"]


def test_cli_project_commands(platform):
    out = platform.cli("project", "create", "--name", "From CLI", "--ref", "cli-made", "--output", "json").stdout
    created = json.loads(out)
    assert created["ref"] == "cli-made" and len(created["api_keys"]) == 2
    human = platform.cli("project", "list").stdout
    assert "cli-made" in human.splitlines()[-1] or "cli-made" in human
    assert human.splitlines()[0].split()[:3] == ["REF", "NAME", "STATUS"]
    shown = json.loads(platform.cli("project", "show", "cli-made", "--output", "json").stdout)
    assert shown["name"] == "From CLI" and len(shown["api_keys"]) == 2
    assert "sb_secret_" in platform.cli("project", "show", "cli-made", "--reveal").stdout
    assert created["api_keys"][1]["opaque_key"] not in platform.cli("project", "show", "cli-made").stdout
    # Explicit flags override the state file; a wrong key is an error with exit code 1.
    bad = platform.cli("project", "list", "--admin-url", platform.admin_url, "--admin-key", "nope", check=False)
    assert bad.returncode == 1 and "401" in bad.stderr
    assert platform.cli("project", "delete", "cli-made").stdout.strip() == "deleted project cli-made"
    gone = platform.cli("project", "show", "cli-made", check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr
    usage = platform.cli("project", "create", check=False)
    assert usage.returncode == 2 and "--name" in usage.stderr


def test_projects_survive_a_restart(fresh_platform):
    p = fresh_platform.start()
    proj = p.create_project("Durable")
    p.sql(proj, TODOS + "insert into todos (title) values ('kept');")
    assert p.stop() == 0
    p.start()
    rows = create_client(proj.url, proj.secret).table("todos").select("title").execute().data
    assert rows == [{"title": "kept"}]


def test_port_taken_is_a_clear_error(fresh_platform):
    with socket.socket() as s:
        s.bind(("127.0.0.1", fresh_platform.port))
        s.listen()
        r = fresh_platform.cli(*fresh_platform.args()[1:], check=False)
    assert r.returncode == 2
    assert "--port" in r.stderr and str(fresh_platform.port) in r.stderr


def test_missing_postgres_binaries_is_a_clear_error(fresh_platform):
    r = fresh_platform.cli(*fresh_platform.args()[1:], env={"SUPACTL_PG_BIN": "/nonexistent"}, check=False)
    assert r.returncode == 2
    assert "PostgreSQL server binaries not found" in r.stderr and "apt-get install postgresql" in r.stderr
