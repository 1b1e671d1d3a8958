"""Auth's flows beyond passwords through the real, unmodified supabase-js client (tests/js/auth_flows.mjs,
one step per run; mail caught here by a real SMTP server on loopback between steps): email OTP sign-up and
sign-in, phone sign-up and sign-in and a phone MFA factor through the project's Send SMS hook (the receiver
of test_auth_phone.py), admin magic links used once, invites, TOTP MFA to aal2, anonymous users made permanent, bans,
reauthentication nonces, claims supabase-js verifies itself against the project's JWKS (ES256) or
through /user (HS256), and PKCE for the email flows (sign-up, magic link, recovery, email change) with
supabase-js' `flowType: 'pkce'` and supabase-py's `flow_type="pkce"`: the mailed link redirects with
`?code=…`, which `exchangeCodeForSession` / `exchange_code_for_session` turn into the session (an email
change after the links to both addresses, the first answering GoTrue's message)."""

import json
import re
from email import message_from_string
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from supabase import ClientOptions, create_client

from conftest import NOTES
from supabase_auth.errors import AuthApiError
from test_auth import SmtpSink, claims_of, settings_sql
from test_auth_phone import Receiver
from test_supabase_js import run_supabase_js

PASSWORD = "correct-horse-1"


def email():
    return f"js-{uuid.uuid4().hex[:10]}@example.com"


def mail_to(sink, addr, after):
    """The first message to `addr` among those received after the first `after` ones."""
    deadline = time.time() + 10
    while time.time() < deadline:
        for msg in sink.messages[after:]:
            if addr.lower() in msg.lower():
                return msg
        time.sleep(0.1)
    raise AssertionError(f"no mail to {addr}: {sink.messages[after:]}")


def code_in(msg, marker="enter the code: "):
    code = msg.split(marker)[1][:6]
    assert code.isdigit(), msg
    return code


@pytest.fixture(scope="module")
def js(platform):
    p = platform.create_project("Auth flows through supabase-js")
    platform.sql(p, NOTES)
    sink = SmtpSink()
    settings_sql(platform, p, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_tls="none",
                 smtp_admin_email="auth@example.com", smtp_max_frequency=0)

    def step(name, **args):
        return run_supabase_js("auth_flows.mjs", p.url, p.anon, p.secret, name, json.dumps(args))

    return p, sink, step


def test_email_otp_sign_up_then_sign_in(js):
    _, sink, step = js
    addr = email()
    seen = len(sink.messages)
    assert step("otp_request", email=addr, create=True) == {"error": None}
    code = code_in(mail_to(sink, addr, seen))
    first = step("verify", email=addr, token=code, type="email")
    assert first["error"] is None and first["confirmed"] is True
    assert first["session"]["claims"]["email"] == addr.lower()
    assert first["session"]["claims"]["amr"][0]["method"] == "otp"
    # used once
    again = step("verify", email=addr, token=code, type="email")
    assert again["error"]["status"] == 403 and again["error"]["code"] == "otp_expired"

    # A second code signs the confirmed user in; an unknown address is not created when asked not to.
    seen = len(sink.messages)
    assert step("otp_request", email=addr, create=True) == {"error": None}
    signed_in = step("verify", email=addr, token=code_in(mail_to(sink, addr, seen)), type="email")
    assert signed_in["error"] is None and signed_in["session"]["claims"]["sub"] == first["session"]["claims"]["sub"]
    refused = step("otp_request", email=email(), create=False)
    assert refused["error"]["status"] == 422 and refused["error"]["code"] == "otp_disabled"


def test_admin_magic_link_and_invite(js):
    _, sink, step = js
    addr = email()
    assert step("otp_request", email=addr, create=True)["error"] is None
    link = step("admin_link", email=addr)
    assert link["verification_type"] == "magiclink" and "/auth/v1/verify?token=" in link["action_link"]
    assert link["first"]["error"] is None and link["first"]["session"]["claims"]["email"] == addr.lower()
    assert link["again"]["code"] == "otp_expired"

    invited = email()
    seen = len(sink.messages)
    r = step("invite", email=invited)
    assert r["error"] is None and r["invited_at"] and r["metadata"]["team"] == "green"
    msg = mail_to(sink, invited, seen)
    assert "You have been invited" in msg
    accepted = step("verify", email=invited, token=code_in(msg), type="invite")
    assert accepted["error"] is None and accepted["confirmed"] is True


def test_totp_mfa_to_aal2(js):
    _, _, step = js
    r = step("mfa", email=email(), password=PASSWORD)
    assert r["enroll"]["error"] is None and r["enroll"]["type"] == "totp"
    assert r["enroll"]["uri"].startswith("otpauth://totp/JsCo:")
    assert r["before"] == ["aal1", "aal1"]
    assert r["wrong"]["status"] == 422 and r["wrong"]["code"] == "mfa_verification_failed"
    assert r["right"]["error"] is None and r["right"]["claims"]["aal"] == "aal2"
    assert [m["method"] for m in r["right"]["claims"]["amr"]] == ["totp", "password"], "most recent first"
    assert r["after"] == ["aal2", "aal2"]
    assert r["listed"] == [[r["factor_id"], "verified"]]
    assert r["note"] == {"data": [{"body": "js aal2"}], "error": None}, "the aal2 token reaches RLS"
    assert r["admin_listed"] == [r["factor_id"]]
    assert r["unenrolled"] == {"error": None, "id": r["factor_id"]} and r["remaining"] == 0


def test_anonymous_user_made_permanent(platform, js):
    p, _, step = js
    settings_sql(platform, p, anonymous_users_enabled=True)
    try:
        addr = email()
        r = step("anonymous", email=addr)
        assert r["error"] is None and r["is_anonymous"] is True
        assert r["claims"]["is_anonymous"] is True and r["claims"]["role"] == "authenticated"
        assert r["note"] == {"data": [{"body": "anonymous js note"}], "error": None}
        assert r["linked"] == {"error": None, "is_anonymous": False, "email": addr.lower()}
    finally:
        settings_sql(platform, p, anonymous_users_enabled=False)
    off = step("anonymous", email=email())
    assert off["error"]["status"] == 422 and off["error"]["code"] == "anonymous_provider_disabled"


def test_ban_refuses_sign_in_and_refresh_until_lifted(js):
    _, _, step = js
    r = step("ban", email=email(), password=PASSWORD)
    assert r["banned_until"], r
    assert r["refused"]["status"] == 400 and r["refused"]["code"] == "user_banned"
    # a ban also ends the user's sessions (GoTrue keeps them and refuses their refresh with user_banned)
    assert r["refresh"]["code"] == "refresh_token_not_found"
    assert r["lifted"]["error"] is None and not r["lifted"]["banned_until"]
    assert r["back"] == {"error": None, "has_session": True}


def test_reauthentication_nonce(platform, js):
    p, sink, step = js
    addr = email()
    seen = len(sink.messages)
    started = step("reauth_start", email=addr, password=PASSWORD)
    assert started["error"] is None
    nonce = code_in(mail_to(sink, addr, seen), "Enter the code: ")
    wrong = "000000" if nonce != "000000" else "111111"
    tokens = {k: started["session"][k] for k in ("access_token", "refresh_token")}
    # The nonce is required (and checked) with the setting on, from a session over a day old.
    session_id = claims_of(tokens["access_token"])["session_id"]
    platform.sql(p, f"update auth.sessions set created_at = now() - interval '25 hours' where id = '{session_id}'")
    settings_sql(platform, p, security_update_password_require_reauthentication=True)
    try:
        r = step("reauth_finish", tokens=tokens, nonce=nonce, wrong=wrong, email=addr, password="changed-pass-9")
    finally:
        settings_sql(platform, p, security_update_password_require_reauthentication=False)
    assert r["needed"]["status"] == 400 and r["needed"]["code"] == "reauthentication_needed"
    assert r["refused"]["status"] == 422 and r["refused"]["code"] == "reauthentication_not_valid"
    assert r["changed"] is None and r["fresh"] is True


def test_claims_verified_by_supabase_js(platform, js):
    _, _, step = js
    # HS256: supabase-js has no key to check with and asks /user, which refuses a tampered token.
    hs = step("claims", email=email(), password=PASSWORD)
    assert hs["error"] is None and hs["alg"] == "HS256" and hs["sub"] == hs["user_id"]
    assert hs["tampered"] is not None

    # ES256: supabase-js fetches the project's JWKS and verifies the signature itself.
    p = platform.create_project("Claims through supabase-js")
    r = platform.admin("POST", f"/admin/v1/projects/{p.ref}/jwt-keys/standby", {"algorithm": "ES256"})
    assert r.status_code == 201, r.text
    kid = r.json()["data"]["id"]
    assert platform.admin("POST", f"/admin/v1/projects/{p.ref}/jwt-keys/rotate", {"grace_seconds": 600}).status_code == 200
    deadline = time.time() + 10
    while True:
        es = run_supabase_js("auth_flows.mjs", p.url, p.anon, p.secret, "claims",
                             json.dumps({"email": email(), "password": PASSWORD}))
        if es["alg"] == "ES256" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert es["error"] is None and (es["alg"], es["kid"]) == ("ES256", kid) and es["sub"] == es["user_id"]
    assert es["tampered"]["message"] == "Invalid JWT signature"


# Allowed as the site URL's host (the default site URL is http://localhost:3000).
REDIRECT = "http://localhost:3000/auth/callback"


def link_in(msg):
    """The /verify link of a message (its body decoded from quoted-printable)."""
    text = message_from_string(msg).get_payload(decode=True).decode()
    found = re.search(r"https?://\S+/auth/v1/verify\?\S+", text)
    assert found, msg
    return found.group(0)


def first_of_two(link):
    """Opens the first of an email change's two PKCE links: a 303 with GoTrue's message, no code yet."""
    r = httpx.get(link, follow_redirects=False)
    message = "message=Confirmation%20link%20accepted.%20Please%20proceed%20to%20confirm%20link%20sent%20to%20the%20other%20email"
    assert (r.status_code, r.headers["location"]) == (303, f"{REDIRECT}?{message}#{message}"), r.headers


def code_from(link):
    """Opens a mailed PKCE link as the browser does: a 303 to the app with `?code=…`, no session."""
    assert "token=pkce_" in link, link
    r = httpx.get(link, follow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?code=") and "access_token" not in location, location
    return parse_qs(urlsplit(location).query)["code"][0]


@pytest.fixture(scope="module")
def pkce(platform):
    p = platform.create_project("PKCE email links")
    sink = SmtpSink()
    settings_sql(platform, p, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_tls="none",
                 smtp_admin_email="auth@example.com", smtp_max_frequency=0, mailer_autoconfirm=False)
    return p, sink


def test_pkce_email_links_through_supabase_js(pkce, tmp_path):
    p, sink = pkce
    store = str(tmp_path / "storage.json")

    def step(name, **args):
        return run_supabase_js("auth_flows.mjs", p.url, p.anon, p.secret, name,
                               json.dumps({"store": store, "redirect": REDIRECT, **args}))

    def flow(kind, to, first=None, **args):
        seen = len(sink.messages)
        started = step("pkce_request", kind=kind, **args)
        assert started == {"error": None, "has_session": False}, (kind, started)
        if first:
            first_of_two(link_in(mail_to(sink, first, seen)))
        code = code_from(link_in(mail_to(sink, to, seen)))
        done = step("pkce_exchange", code=code)
        assert done["error"] is None, (kind, done)
        return done

    addr, new_addr = email(), email()
    up = flow("signup", addr, email=addr, password=PASSWORD)
    assert up["email"] == addr.lower() and up["redirect_type"] is None
    assert up["session"]["claims"]["amr"][0]["method"] == "email/signup"
    magic = flow("magiclink", addr, email=addr)
    assert magic["session"]["claims"]["amr"][0]["method"] == "magiclink"
    assert magic["session"]["claims"]["sub"] == up["session"]["claims"]["sub"]
    recovery = flow("recovery", addr, email=addr)
    assert recovery["redirect_type"] == "recovery"
    assert recovery["session"]["claims"]["amr"][0]["method"] == "recovery"
    # Secure email change: the current address's link first, then the new one's gives the code.
    change = flow("email_change", new_addr, first=addr, email=addr, password=PASSWORD, new_email=new_addr)
    assert change["email"] == new_addr.lower()
    assert change["session"]["claims"]["amr"][0]["method"] == "email_change"


def test_pkce_email_links_through_supabase_py(pkce):
    p, sink = pkce
    sb = create_client(p.url, p.anon, ClientOptions(flow_type="pkce"))
    addr = email()
    seen = len(sink.messages)
    res = sb.auth.sign_up({"email": addr, "password": PASSWORD, "options": {"email_redirect_to": REDIRECT}})
    assert res.session is None and res.user.email_confirmed_at is None
    code = code_from(link_in(mail_to(sink, addr, seen)))
    session = sb.auth.exchange_code_for_session({"auth_code": code}).session
    assert session.user.email == addr.lower() and session.user.email_confirmed_at is not None
    assert claims_of(session.access_token)["amr"][0]["method"] == "email/signup"
    with pytest.raises(AuthApiError) as replay:
        sb.auth.exchange_code_for_session({"auth_code": code, "code_verifier": "x" * 43})
    assert replay.value.status == 404 and replay.value.code == "flow_state_not_found"

    # A wrong verifier is refused and leaves the code for the right one.
    seen = len(sink.messages)
    sb.auth.reset_password_for_email(addr, {"redirect_to": REDIRECT})
    code = code_from(link_in(mail_to(sink, addr, seen)))
    with pytest.raises(AuthApiError) as wrong:
        sb.auth.exchange_code_for_session({"auth_code": code, "code_verifier": "y" * 43})
    assert wrong.value.status == 403 and wrong.value.code == "bad_code_verifier"
    recovered = sb.auth.exchange_code_for_session({"auth_code": code}).session
    assert claims_of(recovered.access_token)["amr"][0]["method"] == "recovery"
    sb.auth.update_user({"password": "after-recovery-2"})
    assert create_client(p.url, p.anon).auth.sign_in_with_password(
        {"email": addr, "password": "after-recovery-2"}).session

    # The server-side pattern: the link's token as `token_hash` to verify_otp signs in at once.
    seen = len(sink.messages)
    sb.auth.sign_in_with_otp({"email": addr, "options": {"email_redirect_to": REDIRECT}})
    token = parse_qs(urlsplit(link_in(mail_to(sink, addr, seen))).query)["token"][0]
    assert token.startswith("pkce_")
    direct = create_client(p.url, p.anon).auth.verify_otp({"token_hash": token, "type": "email"})
    assert direct.session and direct.user.email == addr.lower()
    assert claims_of(direct.session.access_token)["amr"][0]["method"] == "otp"

    # Email change through update_user: the links to both addresses, in either order (the new one's
    # first here), the second giving the code.
    new_addr = email()
    seen = len(sink.messages)
    pending = sb.auth.update_user({"email": new_addr}, {"email_redirect_to": REDIRECT}).user
    assert pending.new_email == new_addr.lower()
    to_current = mail_to(sink, addr, seen)
    assert "Confirm Email Address" in to_current
    first_of_two(link_in(mail_to(sink, new_addr, seen)))
    code = code_from(link_in(to_current))
    changed = sb.auth.exchange_code_for_session({"auth_code": code}).session
    assert changed.user.email == new_addr.lower()
    assert claims_of(changed.access_token)["amr"][0]["method"] == "email_change"


def test_phone_sign_up_and_sms_sign_in(platform, js):
    p, _, step = js
    platform.sql(p, "UPDATE auth.supactl_settings SET phone_enabled = true, sms_max_frequency = 0")
    rx = Receiver()
    try:
        r = platform.admin("PUT", f"/admin/v1/projects/{p.ref}/auth/hooks/send_sms", {"uri": rx.uri, "secret": rx.secret})
        assert r.status_code == 200, r.text
        phone = "+1555" + str(uuid.uuid4().int)[:7]
        digits = phone.lstrip("+")
        up = step("phone_signup", phone=phone, password=PASSWORD)
        assert up == {"error": None, "has_session": False, "phone": digits}
        done = step("phone_verify", phone=phone, token=rx.code_for(digits), password=PASSWORD)
        assert done["error"] is None and done["confirmed"] is True
        assert done["session"]["claims"]["phone"] == digits
        assert done["password_sign_in"] == {"error": None, "same_user": True}

        other = "+1555" + str(uuid.uuid4().int)[:7]
        assert step("phone_otp", phone=other) == {"error": None}
        signed_in = step("phone_verify", phone=other, token=rx.code_for(other.lstrip("+")))
        assert signed_in["error"] is None and signed_in["session"]["claims"]["amr"][0]["method"] == "otp"

        # a phone MFA factor: the challenge's code comes through the hook, verifying it reaches aal2
        platform.sql(p, "UPDATE auth.supactl_settings SET mfa_phone_enabled = true")
        factor_phone = "+1555" + str(uuid.uuid4().int)[:7]
        started = step("phone_mfa_start", email=email(), password=PASSWORD, phone=factor_phone)
        assert started["error"] is None and started["type"] == "phone", started
        sms = rx.payloads[-1]["sms"]
        assert sms["sms_type"] == "mfa" and sms["phone"] == factor_phone.lstrip("+")
        tokens = {k: started["session"][k] for k in ("access_token", "refresh_token")}
        done = step("phone_mfa_finish", tokens=tokens, factor_id=started["factor_id"],
                    challenge_id=started["challenge_id"], code=sms["otp"])
        assert done["error"] is None and done["claims"]["aal"] == "aal2"
        assert done["claims"]["amr"][0]["method"] == "mfa/phone" and done["aal"] == ["aal2", "aal2"]
        assert done["phone_factors"] == [started["factor_id"]]
        assert rx.refused == 0, "every hook call carried a valid signature"
    finally:
        rx.server.shutdown()
        platform.sql(p, "UPDATE auth.supactl_settings SET phone_enabled = false, mfa_phone_enabled = false")
