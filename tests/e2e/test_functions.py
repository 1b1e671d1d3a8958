"""Edge Functions through the gateway with the real supabase-py client: deployed with the admin API
(checked by Deno), invoked at {api_url}/functions/v1/{slug} by `functions.invoke`, run by real Deno
workers under `supactl up`."""

import json
import time
import uuid

import httpx
import pytest
from supabase import create_client
from supabase_functions.errors import FunctionsHttpError

from conftest import Platform

ECHO = """
Deno.serve(async (req) => {
  const url = new URL(req.url);
  const text = await req.text();
  const status = Number(url.searchParams.get("status") ?? "200");
  return new Response(JSON.stringify({
    method: req.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    custom: req.headers.get("x-custom"),
    authorization: req.headers.get("authorization"),
    apikey: req.headers.get("apikey"),
    gateway_token: req.headers.get("x-supactl-authorization"),
    project_header: req.headers.get("x-supactl-project"),
    body: text ? JSON.parse(text) : null,
    greeting: Deno.env.get("GREETING") ?? null,
    supabase_url: Deno.env.get("SUPABASE_URL"),
    version: "VERSION",
  }), { status, headers: { "content-type": "application/json", "x-from-function": "yes" } });
});
"""


def deploy(platform, project, slug, source, verify_jwt=True, expect=(200, 201)):
    r = platform.admin("POST", f"/admin/v1/projects/{project.ref}/functions",
                       {"slug": slug, "body": source, "verify_jwt": verify_jwt})
    assert r.status_code in expect, r.text
    return r


def set_secret(platform, project, name, value):
    r = platform.admin("POST", f"/admin/v1/projects/{project.ref}/secrets", [{"name": name, "value": value}])
    assert r.status_code == 201, r.text


def invoke_raw(project, slug, key=None, method="POST", **kw):
    headers = kw.pop("headers", {})
    if key:
        headers["apikey"] = key
    return httpx.request(method, f"{project.url}/functions/v1/{slug}", headers=headers, timeout=60, **kw)


def until(fn, want, within=5.0):
    """Calls fn until want(result) holds; returns the result and how long it took."""
    started = time.time()
    while True:
        got = fn()
        if want(got):
            return got, time.time() - started
        assert time.time() - started < within, f"still {got!r} after {within}s"
        time.sleep(0.05)


def test_invoke_passes_method_path_query_headers_and_body(platform):
    p = platform.create_project("functions")
    set_secret(platform, p, "GREETING", "hello")
    deploy(platform, p, "echo", ECHO)
    sb = create_client(p.url, p.anon)

    out = json.loads(sb.functions.invoke("echo?x=1&y=two", invoke_options={
        "body": {"name": "Ada"}, "headers": {"x-custom": "kept"}}))
    assert out["method"] == "POST" and out["path"] == "/echo"
    assert out["query"] == {"x": "1", "y": "two"}
    assert out["custom"] == "kept" and out["body"] == {"name": "Ada"}
    assert out["greeting"] == "hello"
    assert out["supabase_url"] == p.url
    # the client's own credentials reach the function; the gateway's never do
    assert out["apikey"] == p.anon
    assert out["gateway_token"] is None and out["project_header"] is None

    # sub-paths and every method; the function's status and headers as they are
    r = invoke_raw(p, "echo/a/b?status=418", key=p.anon, method="PUT", json={"k": 1})
    assert r.status_code == 418 and r.headers["x-from-function"] == "yes"
    assert r.json()["path"] == "/echo/a/b" and r.json()["method"] == "PUT"
    with pytest.raises(FunctionsHttpError) as e:
        sb.functions.invoke("echo?status=422", invoke_options={"body": {}})
    assert e.value.status == 422


def test_verify_jwt(platform):
    p = platform.create_project("functions-jwt")
    deploy(platform, p, "private", ECHO)
    deploy(platform, p, "public", ECHO, verify_jwt=False)

    # verify_jwt: an API key (the gateway mints the project's JWT) or a user's token
    assert invoke_raw(p, "private", key=p.anon).status_code == 200
    r = invoke_raw(p, "private")
    assert r.status_code == 401 and r.json()["code"] == "invalid_jwt"
    assert invoke_raw(p, "private", key="sb_publishable_not-a-key").status_code == 401
    assert invoke_raw(p, "private", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401

    admin = create_client(p.url, p.secret).auth.admin
    email = f"fn-{uuid.uuid4().hex[:8]}@example.com"
    admin.create_user({"email": email, "password": "pass-word-1", "email_confirm": True})
    session = create_client(p.url, p.anon).auth.sign_in_with_password(
        {"email": email, "password": "pass-word-1"}).session
    token = session.access_token
    r = invoke_raw(p, "private", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["authorization"] == f"Bearer {token}"

    # verify_jwt=false: public, as for a webhook
    r = invoke_raw(p, "public", json={"event": "paid"})
    assert r.status_code == 200 and r.json()["body"] == {"event": "paid"}

    # another project's key does not open this project's functions
    other = platform.create_project("functions-other")
    assert invoke_raw(p, "private", key=other.anon).status_code == 401


def test_redeploy_delete_and_unknown_slugs(platform):
    p = platform.create_project("functions-lifecycle")
    deploy(platform, p, "echo", ECHO.replace("VERSION", "v1"))
    assert invoke_raw(p, "echo", key=p.anon).json()["version"] == "v1"

    deploy(platform, p, "echo", ECHO.replace("VERSION", "v2"), expect=(200,))
    _, took = until(lambda: invoke_raw(p, "echo", key=p.anon).json()["version"], lambda v: v == "v2")
    assert took < 1.5, f"a redeploy took {took:.2f}s to be served"

    r = platform.admin("DELETE", f"/admin/v1/projects/{p.ref}/functions/echo")
    assert r.status_code == 204
    _, took = until(lambda: invoke_raw(p, "echo", key=p.anon).status_code, lambda s: s == 404)
    assert took < 1.5, f"a delete took {took:.2f}s to be served"
    r = invoke_raw(p, "missing", key=p.anon)
    assert r.status_code == 404 and r.json()["code"] == "function_not_found"

    # a bundle Deno cannot parse is refused at deploy with its line
    r = deploy(platform, p, "broken", "Deno.serve((req) => {\n  return new Response(;\n});\n", expect=(400,))
    assert "index.ts" in r.text and ":2" in r.text


def test_secrets_stay_in_their_project_and_changes_apply(platform):
    a, b = platform.create_project("fn-secrets-a"), platform.create_project("fn-secrets-b")
    set_secret(platform, a, "GREETING", "from-a")
    deploy(platform, a, "echo", ECHO)
    deploy(platform, b, "echo", ECHO)
    assert invoke_raw(a, "echo", key=a.anon).json()["greeting"] == "from-a"
    assert invoke_raw(b, "echo", key=b.anon).json()["greeting"] is None

    set_secret(platform, a, "GREETING", "changed")
    until(lambda: invoke_raw(a, "echo", key=a.anon).json()["greeting"], lambda g: g == "changed")


def test_npm_imports(platform):
    p = platform.create_project("fn-npm")
    deploy(platform, p, "ms", """
import ms from "npm:ms@2.1.3";
Deno.serve(() => Response.json({ two_hours: ms("2h") }));
""", verify_jwt=False)
    r = invoke_raw(p, "ms")
    assert r.status_code == 200, r.text
    assert r.json() == {"two_hours": 7200000}


@pytest.fixture(scope="module")
def tight_platform():
    """A platform whose functions have a 2 s wall clock and a 48 MB heap."""
    class Tight(Platform):
        def args(self):
            return super().args() + ["--functions-timeout-secs", "2", "--functions-max-heap-mb", "48"]
    p = Tight().start()
    yield p
    assert p.stop() == 0
    p.remove()


def test_limits_answer_json_and_the_worker_is_replaced(tight_platform):
    p = tight_platform.create_project("fn-limits")
    deploy(tight_platform, p, "slow", """
Deno.serve(async (req) => {
  if (new URL(req.url).searchParams.has("wait")) await new Promise((r) => setTimeout(r, 10000));
  return new Response("ok");
});
""", verify_jwt=False)
    deploy(tight_platform, p, "hog", """
const kept = [];
Deno.serve((req) => {
  if (new URL(req.url).searchParams.has("eat")) for (;;) kept.push(new Array(1e6).fill(kept.length));
  return new Response("alive");
});
""", verify_jwt=False)

    r = invoke_raw(p, "slow?wait")
    assert r.status_code == 504 and r.json()["code"] == "function_timeout"
    assert invoke_raw(p, "slow").text == "ok"

    r = invoke_raw(p, "hog?eat")
    assert r.status_code >= 500 and r.json()["code"] == "worker_memory_limit", r.text
    r = invoke_raw(p, "hog")
    assert r.status_code == 200 and r.text == "alive"


def test_logs_show_console_output_and_outcomes(platform):
    p = platform.create_project("fn-logs")
    deploy(platform, p, "chatty", """
Deno.serve(async (req) => {
  console.log("hello from", new URL(req.url).pathname);
  console.error("something odd");
  return new Response("ok", { status: 201 });
});
""", verify_jwt=False)
    assert invoke_raw(p, "chatty/x").status_code == 201

    def records():
        r = platform.admin("GET", f"/admin/v1/projects/{p.ref}/functions/chatty/logs")
        assert r.status_code == 200, r.text
        return r.json()["data"]
    got, _ = until(records, lambda rs: any(r["level"] == "invocation" for r in rs))
    assert any(r["level"] == "log" and r["message"] == "hello from /chatty/x" for r in got), got
    assert any(r["level"] == "error" and r["message"] == "something odd" for r in got), got
    outcome = next(r for r in got if r["level"] == "invocation")
    assert outcome["status"] == 201 and outcome["duration_ms"] >= 0

    out = platform.cli("functions", "logs", p.ref, "chatty").stdout
    assert "hello from /chatty/x" in out and "201 in" in out
    assert platform.admin("GET", f"/admin/v1/projects/{p.ref}/functions/nope/logs").status_code == 404
