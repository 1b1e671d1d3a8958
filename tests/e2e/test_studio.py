"""The dashboard (supactl Studio) in a real browser: Debian's chromium driven by playwright-core from the npm
registry (tests/js/studio.mjs). Sign in (a wrong key refused), create a project, a table whose column types come
from the database's list (an enum made in SQL among them) and a row through the table editor (then read through
REST with the project's key), RLS and a policy written from the page (then enforced through REST for a user the
Auth page created, signed in with supabase-py), a policy dropped, users created, deleted and sent a recovery
email, SQL with NULL and an error's position, deploy and invoke a function, reveal and revoke a key, the placement
strategy chosen on the Platform page, CSRF refused, sign out. The Auth page's configuration: phone sign-ins
and redirect URLs saved, a GitHub and a generic OIDC provider (one edited), and the Send SMS hook pointed at a
receiver started here (supabase-py then signs in by phone with the code the hook delivered), no secret shown. Screenshots of each page go to tests/e2e/.out/studio/
for review."""

import json
import os
import pathlib

import httpx
from supabase import create_client

from test_auth_phone import Receiver, number
from test_supabase_js import run_supabase_js

SHOTS = pathlib.Path(__file__).resolve().parent / ".out" / "studio"


def test_the_dashboard_in_a_browser(platform):
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The page changes the placement strategy to round-robin: from least-used here, put back at the end.
    strategy = platform.admin("GET", "/admin/v1/placement").json()["data"]["strategy"]
    assert platform.admin("PUT", "/admin/v1/placement", {"strategy": "least-used"}).status_code == 200
    rx = Receiver()
    try:
        r = run_supabase_js("studio.mjs", platform.admin_url, platform.admin_key, str(SHOTS), rx.uri, rx.secret)
        check_the_pages(platform, r, rx)
    finally:
        rx.server.shutdown()
        assert platform.admin("PUT", "/admin/v1/placement", {"strategy": strategy}).status_code == 200


def check_the_pages(platform, r, rx):
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

    check_auth_configuration(platform, r, api_url, publishable, secret, rx)


def check_auth_configuration(platform, r, api_url, publishable, secret, rx):
    """What the Auth page configured is what the project's auth service does."""
    ref = r["ref"]
    assert r["edit_kind"] == "oidc" and "gh-client" in r["providers"], r
    providers = {p["provider"]: p for p in
                 platform.admin("GET", f"/admin/v1/projects/{ref}/auth/providers").json()["data"]}
    assert set(providers) == {"github", "corp"}, providers
    assert providers["github"]["enabled"] and providers["github"]["client_secret_set"]
    corp = providers["corp"]
    # Edited without a secret: disabled, the issuer and the stored secret kept.
    assert not corp["enabled"] and corp["client_secret_set"] and corp["issuer"] == "http://127.0.0.1:9/corp", corp
    settings = httpx.get(f"{api_url}/auth/v1/settings", headers={"apikey": publishable}).json()
    assert settings["external"]["github"] is True and settings["external"].get("corp") is not True, settings
    assert settings["external"]["phone"] is True, settings
    allowed = platform.admin("POST", f"/admin/v1/projects/{ref}/database/query",
                             {"query": "select to_jsonb(uri_allow_list) as uri_allow_list from auth.supactl_settings"}).json()["data"]
    assert allowed == [{"uri_allow_list": ["http://localhost:3000/welcome", "https://app.example.com/**"]}], allowed
    assert r["redirect_urls"] == "http://localhost:3000/welcome\nhttps://app.example.com/**", r["redirect_urls"]

    # The hook: as saved, its secret generated in the page of the documented form, never shown back.
    hook = platform.admin("GET", f"/admin/v1/projects/{ref}/auth/hooks/send_sms").json()["data"]
    assert hook["uri"] == rx.uri == r["hook_uri"] and hook["enabled"] and hook["secret_set"], hook
    assert r["generated_secret"].startswith("v1,whsec_") and len(r["generated_secret"]) == 53, r["generated_secret"]
    for shown in ["gh-secret-from-studio", "corp-secret-from-studio", rx.secret.split("_", 1)[1], secret]:
        assert shown not in r["auth_page"], shown

    # Phone sign-in through the hook the page set: the code arrives signed with the receiver's secret.
    sb = create_client(api_url, publishable)
    phone = number()
    sb.auth.sign_in_with_otp({"phone": phone})
    assert rx.refused == 0
    session = sb.auth.verify_otp({"phone": phone, "token": rx.code_for(phone.lstrip("+")), "type": "sms"}).session
    assert session is not None and session.user.phone == phone.lstrip("+")
