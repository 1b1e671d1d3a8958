"""Operations: every request has an id (the client's X-Request-Id, or a new one) returned in the response
and visible to SQL in `request.headers`; the gateway writes one JSON access line per request (not on a
terminal) with the id, project, route class, status and latency; and nothing in the platform's log is a key,
token or password the run created."""

import json
import time

import httpx


def access_lines(platform, request_id):
    for _ in range(50):
        lines = [json.loads(l) for l in open(platform.log_path) if request_id in l and l.startswith("{")]
        if lines:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"no access line for {request_id}")


def test_request_ids_and_the_access_log(platform):
    p = platform.create_project("operations")
    r = httpx.get(f"{p.url}/rest/v1/", headers={"apikey": p.anon, "x-request-id": "trace-me-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-me-123"
    generated = httpx.get(f"{p.url}/rest/v1/", headers={"apikey": p.anon}).headers["x-request-id"]
    assert len(generated) == 32 and generated != "trace-me-123"
    odd = httpx.get(f"{p.url}/rest/v1/", headers={"apikey": p.anon, "x-request-id": "no spaces <allowed>"})
    assert odd.headers["x-request-id"] != "no spaces <allowed>"

    platform.sql(p, "create function rid() returns text language sql as "
                    "$$ select current_setting('request.headers', true)::json->>'x-request-id' $$")
    for _ in range(50):
        seen = httpx.post(f"{p.url}/rest/v1/rpc/rid", json={},
                          headers={"apikey": p.anon, "x-request-id": "from-sql-1"})
        if seen.status_code == 200:
            break
        time.sleep(0.1)
    assert seen.json() == "from-sql-1", seen.text

    [line] = access_lines(platform, "trace-me-123")
    assert line["target"] == "supactl::access", line
    assert line["project"] == p.ref and line["route"] == "rest" and line["method"] == "GET"
    assert line["status"] == 200 and line["latency_ms"] >= 0
    denied = httpx.get(f"{p.url}/auth/v1/user", headers={"apikey": "sb_publishable_nope", "x-request-id": "denied-1"})
    assert denied.status_code == 401
    [line] = access_lines(platform, "denied-1")
    assert line["status"] == 401 and line["route"] == "auth"


def test_a_slow_statement_is_logged_with_its_request_id(platform):
    p = platform.create_project("slow statements")
    platform.sql(p, "create function slow() returns int language sql as $$ select 1 from pg_sleep(1.2) $$")
    for _ in range(50):
        r = httpx.post(f"{p.url}/rest/v1/rpc/slow", json={}, timeout=30,
                       headers={"apikey": p.anon, "x-request-id": "slow-sql-1"})
        if r.status_code == 200:
            break
        time.sleep(0.1)
    assert r.json() == 1, r.text
    [line] = [l for l in access_lines(platform, "slow-sql-1") if l["target"] == "rest::slow"]
    assert line["project"] == p.ref and line["role"] == "anon" and line["ok"] is True, line
    assert 1200 <= line["duration_ms"] < 10000, line
    # a fast one is not
    httpx.get(f"{p.url}/rest/v1/", headers={"apikey": p.anon, "x-request-id": "fast-sql-1"})
    assert all(l["target"] != "rest::slow" for l in access_lines(platform, "fast-sql-1"))


def test_no_secret_of_the_run_reaches_the_log(platform):
    p = platform.create_project("operations secrets")
    httpx.get(f"{p.url}/rest/v1/?apikey={p.secret}", headers={"apikey": p.anon})
    httpx.post(f"{p.url}/auth/v1/signup", headers={"apikey": p.anon},
               json={"email": "ops@example.com", "password": "correct-horse-battery"})
    platform.admin("POST", f"/admin/v1/projects/{p.ref}/secrets", [{"name": "OPS_SECRET", "value": "s3cr3t-value-42"}])
    keys = []
    for r in platform.admin("GET", "/admin/v1/projects?limit=100").json()["data"]:
        for k in platform.admin("GET", f"/admin/v1/projects/{r['ref']}/api-keys?reveal=true").json()["data"]:
            keys.append(k["opaque_key"])
    time.sleep(0.6)  # info lines reach stderr within half a second (buffered off a terminal)
    log = open(platform.log_path).read()
    for secret in [platform.admin_key, "correct-horse-battery", "s3cr3t-value-42", *keys]:
        assert secret not in log, f"a secret is in the log: {secret[:12]}…"


def test_prometheus_metrics_on_the_admin_listener_only(platform):
    p = platform.create_project("metrics")
    for _ in range(3):
        assert httpx.get(f"{p.url}/rest/v1/", headers={"apikey": p.anon}).status_code == 200
    assert httpx.get(f"{platform.admin_url}/metrics").status_code == 401
    assert httpx.get(f"{platform.gateway_url}/metrics").status_code == 404  # never on the public listener
    r = platform.admin("GET", "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    [line] = [l for l in text.splitlines() if l.startswith("supactl_gateway_requests_total{")
              and f'project="{p.ref}"' in l and 'route="rest"' in l and 'status="200"' in l]
    assert float(line.split()[-1]) >= 3, line
    for name in ["supactl_gateway_request_duration_seconds_bucket{", "supactl_directory_lookups_total{",
                 "supactl_directory_fetches_total{", "supactl_admin_requests_total{",
                 "process_resident_memory_bytes ", "process_cpu_seconds ",
                 # the REST engine's pools: usage at the scrape, the waits so far
                 'supactl_db_pool_connections{service="rest",state="idle"}', 'supactl_db_pool_projects{service="rest"}',
                 'supactl_db_pool_wait_seconds_count{service="rest"}', "supactl_db_connections_open ",
                 "supactl_db_connections_budget "]:
        assert name in text, name
    assert platform.admin_key not in text and p.anon not in text
