"""The dashboard (supactl Studio) in a real browser: Debian's chromium driven by playwright-core from the npm
registry (tests/js/studio.mjs). Sign in (a wrong key refused), create a project, a table whose column types come
from the database's list (an enum made in SQL among them) and a row through the table editor (then read through
REST with the project's key), RLS and a policy written from the page (then enforced through REST for a user the
Auth page created, signed in with supabase-py), a policy dropped, users created, deleted and sent a recovery
email, SQL with NULL and an error's position, deploy and invoke a function, reveal and revoke a key, the placement
strategy chosen on the Platform page, CSRF refused, sign out. Screenshots of each page go to tests/e2e/.out/studio/
for review."""

import json
import os
import pathlib

import httpx
from supabase import create_client

from test_supabase_js import run_supabase_js

SHOTS = pathlib.Path(__file__).resolve().parent / ".out" / "studio"


def test_the_dashboard_in_a_browser(platform):
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The page changes the placement strategy to round-robin: from least-used here, put back at the end.
    strategy = platform.admin("GET", "/admin/v1/placement").json()["data"]["strategy"]
    assert platform.admin("PUT", "/admin/v1/placement", {"strategy": "least-used"}).status_code == 200
    r = run_supabase_js("studio.mjs", platform.admin_url, platform.admin_key, str(SHOTS))

    assert "invalid_admin_key" in r["wrong_key"], r["wrong_key"]
    assert "hello from studio" in r["grid"] and "happy" in r["grid"]
    # Column types are the database's own: its enum, base types as SQL writes them, no internal or
    # pseudo types.
    options = r["type_options"]
    assert {"mood", "text", "uuid", "bigint", "timestamp with time zone"} <= set(options), options
    assert not {"void", "trigger", "pg_node_tree", "anyelement"} & set(options), options
    assert r["policy_sql"] == ('create policy "own ""notes""" on "public"."notes" as permissive for select '
                               'to "authenticated" using (owner = auth.uid())'), r["policy_sql"]
    assert r["drop_sql"] == 'drop policy "doomed" on "public"."notes"', r["drop_sql"]
    assert "studio-user@example.com" in r["users"] and "throwaway" not in r["users"], r["users"]
    assert "NULL" in r["sql"] and "text" in r["sql"], r["sql"]
    assert "42703" in r["sql_error"] and r["sql_marked"] == "n", r
    assert r["invoke"].startswith("200") and '"hello":"world"' in r["invoke"], r["invoke"]
    assert "Deno.serve" in r["loaded_code"], r["loaded_code"]
    assert r["csrf_status"] == 403 and r["after_sign_out"] == 401
    assert r["page_errors"] == []
    for name in ["sign-in", "tables", "sql", "auth", "functions", "api-keys", "platform"]:
        assert (SHOTS / f"{name}.png").stat().st_size > 5000, name
    # The strategy the Platform page saved is the platform's.
    assert platform.admin("GET", "/admin/v1/placement").json()["data"]["strategy"] == "round-robin"
    assert platform.admin("PUT", "/admin/v1/placement", {"strategy": strategy}).status_code == 200

    # The row the table editor inserted, through REST with the project's secret key.
    keys = platform.admin("GET", f"/admin/v1/projects/{r['ref']}/api-keys?reveal=true").json()["data"]
    secret = next(k["opaque_key"] for k in keys if k["type"] == "secret" and k["status"] == "active"
                  and k["name"] != "ci-key")
    api_url = platform.admin("GET", f"/admin/v1/projects/{r['ref']}").json()["data"]["api_url"]
    rows = httpx.get(f"{api_url}/rest/v1/notes?select=body", headers={"apikey": secret}).json()
    assert rows == [{"body": "hello from studio"}]

    # The user the Auth page created signs in with supabase-py (confirmed at once), and the policy the page
    # wrote decides what REST shows: their own note to them, nothing to anon.
    publishable = next(k["opaque_key"] for k in keys if k["type"] == "publishable" and k["status"] == "active")
    sb = create_client(api_url, publishable)
    login = sb.auth.sign_in_with_password({"email": "studio-user@example.com", "password": "studio-password-42"})
    uid = login.user.id

    def sql(query):
        res = platform.admin("POST", f"/admin/v1/projects/{r['ref']}/database/query", {"query": query})
        assert res.status_code == 200, res.text
        return res.json()["data"]

    sql(f"insert into notes (body, owner) values ('mine', '{uid}')")
    assert sb.table("notes").select("body").execute().data == [{"body": "mine"}]
    assert httpx.get(f"{api_url}/rest/v1/notes?select=body", headers={"apikey": publishable}).json() == []
    sent = sql("select email, recovery_sent_at is not null as sent from auth.users")
    assert sent == [{"email": "studio-user@example.com", "sent": True}], sent

    # The auth service applies the page's setting: an 8-character password is now too short.
    weak = httpx.post(f"{api_url}/auth/v1/signup", headers={"apikey": secret},
                      json={"email": "studio@example.com", "password": "12345678"})
    assert weak.status_code == 422 and "12" in weak.text, weak.text

    # The revealed key was a real secret key, and revoking it took it out of service.
    assert r["revealed"].startswith("sb_secret_") and all(k["name"] != "ci-key" for k in keys)
    refused = httpx.get(f"{api_url}/rest/v1/notes", headers={"apikey": r["revealed"]})
    assert refused.status_code == 401, refused.text
    # Secret keys are not in the page until revealed, nor is the admin key ever.
    assert secret not in r["page_before_reveal"] and platform.admin_key not in r["page_before_reveal"]
