"""Invites, the admin API's links and bans, and reauthentication, with the real supabase-py client against
`supactl up`, mail caught by a real SMTP server on loopback."""

import time
import uuid

import httpx
import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError

from test_auth import SmtpSink, claims_of, settings_sql

PASSWORD = "correct-horse-1"


def email():
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def next_message(sink, count):
    deadline = time.time() + 10
    while len(sink.messages) < count and time.time() < deadline:
        time.sleep(0.1)
    assert len(sink.messages) >= count, sink.messages
    return sink.messages[count - 1]


@pytest.fixture(scope="module")
def mailed(platform):
    p = platform.create_project("Auth admin")
    sink = SmtpSink()
    settings_sql(platform, p, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_tls="none",
                 smtp_admin_email="auth@example.com", smtp_max_frequency=0)
    return p, sink


def test_invite_by_email_then_accept(mailed):
    p, sink = mailed
    admin = create_client(p.url, p.secret).auth.admin
    addr = email()
    before = len(sink.messages)
    invited = admin.invite_user_by_email(addr, {"data": {"team": "blue"}}).user
    assert invited.invited_at is not None and invited.email_confirmed_at is None
    assert invited.user_metadata["team"] == "blue"
    msg = next_message(sink, before + 1)
    assert "You have been invited" in msg and addr in msg
    code = msg.split("enter the code: ")[1][:6]
    sb = create_client(p.url, p.anon)
    res = sb.auth.verify_otp({"email": addr, "token": code, "type": "invite"})
    assert res.session and res.user.email_confirmed_at is not None
    with pytest.raises(AuthApiError) as again:
        admin.invite_user_by_email(addr)
    assert again.value.status == 422 and again.value.code == "email_exists"


def test_generate_link_for_every_type(mailed):
    p, _ = mailed
    admin = create_client(p.url, p.secret).auth.admin
    addr = email()
    link = admin.generate_link({"type": "signup", "email": addr, "password": PASSWORD})
    assert link.properties.verification_type == "signup" and "type=signup" in link.properties.action_link
    sb = create_client(p.url, p.anon)
    assert sb.auth.verify_otp({"type": "signup", "token_hash": link.properties.hashed_token}).session
    for kind in ("magiclink", "recovery"):
        link = admin.generate_link({"type": kind, "email": addr})
        assert link.properties.verification_type == kind
        assert sb.auth.verify_otp({"type": kind, "token_hash": link.properties.hashed_token}).session
    invite = admin.generate_link({"type": "invite", "email": email()})
    assert invite.user.invited_at is not None and "type=invite" in invite.properties.action_link
    assert sb.auth.verify_otp({"type": "invite", "token_hash": invite.properties.hashed_token}).session
    current = addr
    for kind in ("email_change_current", "email_change_new"):
        new = email()
        link = admin.generate_link({"type": kind, "email": current, "new_email": new})
        assert link.user.new_email == new and link.properties.verification_type == kind
        changed = sb.auth.verify_otp({"type": "email_change", "token_hash": link.properties.hashed_token})
        assert changed.user.email == new
        current = new


def test_ban_metadata_and_omitted_timestamps(mailed):
    p, _ = mailed
    admin = create_client(p.url, p.secret).auth.admin
    addr = email()
    meta = {"plan": "pro", "nested": {"x": None}, "empty": None}
    user = admin.create_user({"email": addr, "password": PASSWORD, "user_metadata": meta}).user
    assert user.user_metadata == meta, "exactly as sent"
    raw = httpx.get(f"{p.url}/auth/v1/admin/users/{user.id}",
                    headers={"apikey": p.secret, "Authorization": f"Bearer {p.secret}"}).json()
    for absent in ("email_confirmed_at", "confirmed_at", "invited_at", "last_sign_in_at", "banned_until", "new_email"):
        assert absent not in raw, (absent, raw)
    admin.update_user_by_id(user.id, {"email_confirm": True, "ban_duration": "1h"})
    sb = create_client(p.url, p.anon)
    with pytest.raises(AuthApiError) as banned:
        sb.auth.sign_in_with_password({"email": addr, "password": PASSWORD})
    assert banned.value.code == "user_banned"
    assert admin.get_user_by_id(user.id).user.banned_until is not None
    admin.update_user_by_id(user.id, {"ban_duration": "none"})
    assert sb.auth.sign_in_with_password({"email": addr, "password": PASSWORD}).session


def test_reauthenticate_nonce_on_password_change(mailed, platform):
    p, sink = mailed
    sb = create_client(p.url, p.anon)
    addr = email()
    sb.auth.sign_up({"email": addr, "password": PASSWORD})
    # With the setting on, a session younger than a day changes the password without a nonce; once it
    # is older, the change needs one.
    settings_sql(platform, p, security_update_password_require_reauthentication=True)
    sb.auth.update_user({"password": "fresh-pass-1"})
    session_id = claims_of(sb.auth.get_session().access_token)["session_id"]
    platform.sql(p, f"update auth.sessions set created_at = now() - interval '25 hours' where id = '{session_id}'")
    with pytest.raises(AuthApiError) as needed:
        sb.auth.update_user({"password": "another-pass-2"})
    assert needed.value.status == 400 and needed.value.code == "reauthentication_needed"
    before = len(sink.messages)
    sb.auth.reauthenticate()
    msg = next_message(sink, before + 1)
    assert "Confirm reauthentication" in msg
    nonce = msg.split("Enter the code: ")[1][:6]
    wrong = "000000" if nonce != "000000" else "111111"
    with pytest.raises(AuthApiError) as bad:
        sb.auth.update_user({"password": "another-pass-2", "nonce": wrong})
    assert bad.value.status == 422 and bad.value.code == "reauthentication_not_valid"
    sb.auth.update_user({"password": "another-pass-2", "nonce": nonce})
    fresh = create_client(p.url, p.anon)
    assert fresh.auth.sign_in_with_password({"email": addr, "password": "another-pass-2"}).session
    with pytest.raises(AuthApiError) as spent:
        sb.auth.update_user({"password": "third-pass-33", "nonce": nonce})
    assert spent.value.code == "reauthentication_not_valid"
    settings_sql(platform, p, security_update_password_require_reauthentication=False)
