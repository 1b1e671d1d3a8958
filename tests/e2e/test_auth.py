"""The GoTrue-compatible auth API end to end: the real supabase-py client against `supactl up`, through
the gateway at `{api_url}/auth/v1`; authenticated row-level security through the REST engine."""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid

import httpx
import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from conftest import NOTES

PASSWORD = "correct-horse-1"


def settings_sql(platform, project, **values):
    assignments = ", ".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in values.items())
    platform.sql(project, f"update auth.supactl_settings set {assignments}")


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims, secret):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def auth_call(project, method, path, key=None, token=None, **kw):
    key = key or project.anon
    headers = {"apikey": key, "Authorization": f"Bearer {token or key}",
               "X-Supabase-Api-Version": "2024-01-01"}
    headers.update(kw.pop("headers", {}))
    return httpx.request(method, f"{project.url}/auth/v1{path}", headers=headers, timeout=30, **kw)


def refresh(project, refresh_token):
    return auth_call(project, "POST", "/token?grant_type=refresh_token", json={"refresh_token": refresh_token})


def email():
    return f"user-{uuid.uuid4().hex[:10]}@Example.COM"


@pytest.fixture(scope="module")
def project(platform):
    p = platform.create_project("Auth A")
    platform.sql(p, NOTES)
    settings_sql(platform, p, rate_limit_sign_in_sign_ups=1000, rate_limit_token_refresh=1000,
                 rate_limit_otp=1000, rate_limit_per_email=1000, rate_limit_verify=1000)
    return p


def test_health_settings_and_jwks(project):
    r = auth_call(project, "GET", "/health")
    assert r.status_code == 200 and r.json()["name"] == "GoTrue"
    s = auth_call(project, "GET", "/settings").json()
    assert s["external"]["email"] is True
    assert s["external"]["anonymous_users"] is False
    assert s["mailer_autoconfirm"] is True and s["disable_signup"] is False
    assert auth_call(project, "GET", "/.well-known/jwks.json").json() == {"keys": []}
    # JWT libraries fetch a JWKS without the API key.
    assert httpx.get(f"{project.url}/auth/v1/.well-known/jwks.json").json() == {"keys": []}
    assert httpx.get(f"{project.url}/auth/v1/health").status_code == 401, "the API key is required"


def test_signup_login_refresh_update_logout(project):
    sb = create_client(project.url, project.anon)
    addr = email()
    res = sb.auth.sign_up({"email": addr, "password": PASSWORD, "options": {"data": {"name": "Ann"}}})
    assert res.session is not None, "autoconfirm is on by default: signup signs in"
    user = res.user
    assert user.email == addr.lower(), "emails are normalised"
    assert user.user_metadata["name"] == "Ann"
    assert user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert [i.provider for i in user.identities] == ["email"]
    c = claims_of(res.session.access_token)
    assert c["sub"] == user.id and c["aud"] == "authenticated" and c["role"] == "authenticated"
    assert c["email"] == addr.lower() and c["phone"] == "" and c["is_anonymous"] is False
    assert c["aal"] == "aal1" and c["amr"][0]["method"] == "password"
    assert c["exp"] - c["iat"] == 3600 and res.session.expires_in == 3600
    assert c["app_metadata"]["provider"] == "email" and c["user_metadata"]["name"] == "Ann"
    assert c["session_id"] and c["iss"] == f"{project.url}/auth/v1"

    with pytest.raises(AuthApiError) as dup:
        create_client(project.url, project.anon).auth.sign_up({"email": addr.upper(), "password": PASSWORD})
    assert dup.value.status == 422 and dup.value.code == "user_already_exists"
    with pytest.raises(AuthWeakPasswordError) as weak:
        create_client(project.url, project.anon).auth.sign_up({"email": email(), "password": "12345"})
    assert weak.value.status == 422 and weak.value.code == "weak_password" and weak.value.reasons == ["length"]
    with pytest.raises(AuthApiError) as bad:
        create_client(project.url, project.anon).auth.sign_up({"email": "not-an-email", "password": PASSWORD})
    assert bad.value.status == 400 and bad.value.code == "validation_failed"

    with pytest.raises(AuthApiError) as wrong:
        sb.auth.sign_in_with_password({"email": addr, "password": "wrong-password"})
    assert wrong.value.status == 400 and wrong.value.code == "invalid_credentials"
    assert wrong.value.message == "Invalid login credentials"
    with pytest.raises(AuthApiError) as unknown:
        sb.auth.sign_in_with_password({"email": email(), "password": PASSWORD})
    assert unknown.value.code == "invalid_credentials", "unknown emails look like wrong passwords"

    login = sb.auth.sign_in_with_password({"email": addr, "password": PASSWORD})
    assert login.user.id == user.id and login.user.last_sign_in_at is not None
    refreshed = sb.auth.refresh_session()
    assert refreshed.session.refresh_token != login.session.refresh_token
    assert claims_of(refreshed.session.access_token)["session_id"] == claims_of(login.session.access_token)["session_id"]
    assert sb.auth.get_user().user.email == addr.lower()

    updated = sb.auth.update_user({"data": {"theme": "dark"}})
    assert updated.user.user_metadata["theme"] == "dark" and updated.user.user_metadata["name"] == "Ann"
    assert sb.auth.get_user().user.user_metadata["theme"] == "dark"

    old_refresh = refreshed.session.refresh_token
    old_access = refreshed.session.access_token
    sb.auth.sign_out()
    assert sb.auth.get_session() is None
    r = refresh(project, old_refresh)
    assert r.status_code == 400 and r.json()["code"] == "refresh_token_not_found", r.text
    r = auth_call(project, "GET", "/user", token=old_access)
    assert r.status_code == 403 and r.json()["code"] == "session_not_found"

    again = sb.auth.sign_in_with_password({"email": addr, "password": PASSWORD})
    assert again.session.access_token and sb.auth.get_user().user.id == user.id


def test_password_and_email_change(project):
    sb = create_client(project.url, project.anon)
    addr = email()
    sb.auth.sign_up({"email": addr, "password": PASSWORD})
    with pytest.raises(AuthApiError) as same:
        sb.auth.update_user({"password": PASSWORD})
    assert same.value.code == "same_password"
    sb.auth.update_user({"password": "another-pass-2"})
    new_addr = email()
    assert sb.auth.update_user({"email": new_addr}).user.email == new_addr.lower()
    sb.auth.sign_out()
    with pytest.raises(AuthApiError):
        sb.auth.sign_in_with_password({"email": new_addr, "password": PASSWORD})
    assert sb.auth.sign_in_with_password({"email": new_addr, "password": "another-pass-2"}).session


def test_logout_scopes(project):
    addr = email()
    first = create_client(project.url, project.anon)
    first.auth.sign_up({"email": addr, "password": PASSWORD})
    sessions = [create_client(project.url, project.anon).auth.sign_in_with_password(
        {"email": addr, "password": PASSWORD}).session for _ in range(3)]
    r = auth_call(project, "POST", "/logout?scope=others", token=sessions[0].access_token)
    assert r.status_code == 204
    assert refresh(project, sessions[1].refresh_token).status_code == 400
    assert refresh(project, sessions[2].refresh_token).status_code == 400
    kept = refresh(project, sessions[0].refresh_token)
    assert kept.status_code == 200, "others keeps the caller's session"
    r = auth_call(project, "POST", "/logout?scope=local", token=kept.json()["access_token"])
    assert r.status_code == 204
    assert refresh(project, kept.json()["refresh_token"]).status_code == 400
    assert auth_call(project, "POST", "/logout?scope=nope", token=kept.json()["access_token"]).status_code in (400, 403)


def test_refresh_token_rotation_and_reuse(platform, project):
    addr = email()
    create_client(project.url, project.anon).auth.sign_up({"email": addr, "password": PASSWORD})
    login = auth_call(project, "POST", "/token?grant_type=password", json={"email": addr, "password": PASSWORD}).json()
    rt1 = login["refresh_token"]
    r2 = refresh(project, rt1).json()
    rt2 = r2["refresh_token"]
    assert rt2 != rt1
    # The client lost the answer: the parent of the active token gets the active token back.
    again = refresh(project, rt1).json()
    assert again["refresh_token"] == rt2
    rt3 = refresh(project, rt2).json()["refresh_token"]
    assert rt3 not in (rt1, rt2)

    # Reusing rt1 within the reuse interval (10 s by default) branches instead of failing.
    within = refresh(project, rt1)
    assert within.status_code == 200, within.text

    settings_sql(platform, project, refresh_token_reuse_interval=0)
    try:
        # rt2 is revoked and no longer the parent of the active token: reuse outside the interval.
        reuse = refresh(project, rt2)
        assert reuse.status_code == 400 and reuse.json()["code"] == "refresh_token_already_used", reuse.text
        # The whole session is revoked: its newest token and its access tokens stop working.
        assert refresh(project, within.json()["refresh_token"]).json()["code"] == "refresh_token_not_found"
        assert auth_call(project, "GET", "/user", token=r2["access_token"]).status_code == 403
    finally:
        settings_sql(platform, project, refresh_token_reuse_interval=10)


def test_admin_users_need_the_secret_key(project):
    admin = create_client(project.url, project.secret).auth.admin
    addr = email()
    created = admin.create_user({"email": addr, "password": PASSWORD, "email_confirm": True,
                                 "user_metadata": {"plan": "pro"}, "app_metadata": {"tier": 2}}).user
    assert created.email == addr.lower() and created.email_confirmed_at is not None
    assert created.user_metadata["plan"] == "pro" and created.app_metadata["tier"] == 2
    assert created.app_metadata["provider"] == "email"
    with pytest.raises(AuthApiError) as dup:
        admin.create_user({"email": addr, "password": PASSWORD})
    assert dup.value.status == 422 and dup.value.code == "email_exists"

    for _ in range(2):
        admin.create_user({"email": email(), "password": PASSWORD})
    page1 = admin.list_users(page=1, per_page=2)
    page2 = admin.list_users(page=2, per_page=2)
    assert len(page1) == 2 and len(page2) >= 1
    assert not {u.id for u in page1} & {u.id for u in page2}
    r = auth_call(project, "GET", "/admin/users?page=1&per_page=2", key=project.secret)
    assert int(r.headers["x-total-count"]) >= 3 and 'rel="next"' in r.headers["link"]

    assert admin.get_user_by_id(created.id).user.email == addr.lower()
    upd = admin.update_user_by_id(created.id, {"user_metadata": {"plan": "team"}, "password": "new-secret-9"}).user
    assert upd.user_metadata["plan"] == "team"
    assert create_client(project.url, project.anon).auth.sign_in_with_password(
        {"email": addr, "password": "new-secret-9"}).session

    anon_admin = create_client(project.url, project.anon).auth.admin
    for call in (lambda: anon_admin.list_users(), lambda: anon_admin.get_user_by_id(created.id),
                 lambda: anon_admin.create_user({"email": email(), "password": PASSWORD}),
                 lambda: anon_admin.delete_user(created.id)):
        with pytest.raises(AuthApiError) as refused:
            call()
        assert refused.value.status == 403 and refused.value.code == "not_admin"
    user_token = create_client(project.url, project.anon).auth.sign_in_with_password(
        {"email": addr, "password": "new-secret-9"}).session.access_token
    assert auth_call(project, "GET", "/admin/users", token=user_token).status_code == 403

    admin.delete_user(created.id)
    with pytest.raises(AuthApiError) as gone:
        admin.get_user_by_id(created.id)
    assert gone.value.status == 404 and gone.value.code == "user_not_found"
    assert refresh(project, "whatever").status_code == 400


def test_authenticated_rls_two_users(project):
    clients = []
    for name in ("one", "two"):
        sb = create_client(project.url, project.anon)
        sb.auth.sign_up({"email": email(), "password": PASSWORD})
        sb.table("notes").insert({"body": f"{name} note"}).execute()
        clients.append(sb)
    one, two = clients
    uid_one = one.auth.get_user().user.id
    mine = one.table("notes").select("owner,body").execute().data
    assert mine == [{"owner": uid_one, "body": "one note"}]
    theirs = two.table("notes").select("id,body").execute().data
    assert [r["body"] for r in theirs] == ["two note"]
    my_id = one.table("notes").select("id").execute().data[0]["id"]

    assert two.table("notes").update({"body": "hijacked"}).eq("id", my_id).execute().data == []
    assert two.table("notes").delete().eq("id", my_id).execute().data == []
    assert one.table("notes").select("body").eq("id", my_id).execute().data == [{"body": "one note"}]
    assert one.table("notes").update({"body": "edited"}).eq("id", my_id).execute().data[0]["body"] == "edited"

    anon = create_client(project.url, project.anon)
    assert anon.table("notes").select("*").execute().data == []
    service = create_client(project.url, project.secret)
    bodies = {r["body"] for r in service.table("notes").select("body").execute().data}
    assert {"edited", "two note"} <= bodies
    assert [r["body"] for r in one.table("notes").delete().eq("id", my_id).execute().data] == ["edited"]


def refused(path, r):
    """A token that does not verify, in each service's words: PostgREST's 401 on REST, GoTrue's 403
    `bad_jwt` (legacy shape for a client that names no API version) on auth."""
    if path.startswith("/auth/"):
        assert r.status_code == 403, (path, r.text)
        body = r.json()
        assert body["code"] == 403 and body["error_code"] == "bad_jwt", r.text
        assert body["msg"].startswith("invalid JWT: unable to parse or verify signature, "), r.text
    else:
        assert r.status_code == 401 and r.json()["code"] == "invalid_jwt", (path, r.text)


def test_bad_tokens_are_refused(platform, project):
    other = platform.create_project("Auth B")
    platform.sql(other, NOTES)
    sb = create_client(project.url, project.anon)
    sb.auth.sign_up({"email": email(), "password": PASSWORD})
    good = sb.auth.get_session().access_token
    head, body, sig = good.split(".")
    c = claims_of(good)
    tampered = f"{head}.{b64(json.dumps({**c, 'sub': str(uuid.uuid4())}).encode())}.{sig}"
    wrong_key = sign(c, b"not-the-project-secret")
    alg_none = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}."
    for token in (tampered, wrong_key, alg_none):
        for path in ("/rest/v1/notes", "/auth/v1/user"):
            r = httpx.get(f"{project.url}{path}", headers={"apikey": project.anon, "Authorization": f"Bearer {token}"})
            refused(path, r)
    # A valid token of project A on project B.
    for path in ("/rest/v1/notes", "/auth/v1/user"):
        r = httpx.get(f"{other.url}{path}", headers={"apikey": other.anon, "Authorization": f"Bearer {good}"})
        refused(path, r)
        r = httpx.get(f"{project.url}{path}", headers={"apikey": project.anon, "Authorization": f"Bearer {good}"})
        assert r.status_code == 200, (path, r.text)

    # Expired: a project whose tokens live one second.
    settings_sql(platform, other, jwt_exp=1)
    addr = email()
    auth_call(other, "POST", "/signup", json={"email": addr, "password": PASSWORD})
    short = auth_call(other, "POST", "/token?grant_type=password", json={"email": addr, "password": PASSWORD}).json()
    assert short["expires_in"] == 1
    time.sleep(2.1)
    for path in ("/rest/v1/notes", "/auth/v1/user"):
        r = httpx.get(f"{other.url}{path}", headers={"apikey": other.anon, "Authorization": f"Bearer {short['access_token']}"})
        refused(path, r)
    assert r.json()["msg"].endswith("token has invalid claims: token is expired"), r.text
    assert refresh(other, short["refresh_token"]).status_code == 200, "the refresh token outlives the access token"


def test_anonymous_sign_in(platform, project):
    with pytest.raises(AuthApiError) as off:
        create_client(project.url, project.anon).auth.sign_in_anonymously()
    assert off.value.status == 422 and off.value.code == "anonymous_provider_disabled"
    settings_sql(platform, project, anonymous_users_enabled=True)
    try:
        sb = create_client(project.url, project.anon)
        res = sb.auth.sign_in_anonymously()
        assert res.user.is_anonymous is True and res.user.email in ("", None)
        c = claims_of(res.session.access_token)
        assert c["is_anonymous"] is True and c["role"] == "authenticated" and c["amr"][0]["method"] == "anonymous"
        sb.table("notes").insert({"body": "anon note"}).execute()
        assert [r["body"] for r in sb.table("notes").select("body").execute().data] == ["anon note"]
        # Linking an email makes the user permanent.
        addr = email()
        linked = sb.auth.update_user({"email": addr}).user
        assert linked.email == addr.lower() and linked.is_anonymous is False
    finally:
        settings_sql(platform, project, anonymous_users_enabled=False)


def test_rate_limits(platform):
    p = platform.create_project("Auth limits")
    settings_sql(platform, p, rate_limit_sign_in_sign_ups=3)
    codes = [auth_call(p, "POST", "/token?grant_type=password",
                       json={"email": "x@example.com", "password": "wrong-pass"}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    r = auth_call(p, "POST", "/signup", json={"email": email(), "password": PASSWORD})
    assert r.status_code == 429 and r.json()["code"] == "over_request_rate_limit"
    legacy = httpx.post(f"{p.url}/auth/v1/signup", headers={"apikey": p.anon},
                        json={"email": email(), "password": PASSWORD})
    assert legacy.json() == {"code": 429, "error_code": "over_request_rate_limit", "msg": "Request rate limit reached"}


# --- one-time tokens -------------------------------------------------------------------------------

def test_recovery_without_mailer_then_verify(platform, project):
    sb = create_client(project.url, project.anon)
    addr = email()
    sb.auth.sign_up({"email": addr, "password": PASSWORD})
    sb.auth.sign_out()
    sb.auth.reset_password_for_email(addr)
    sb.auth.reset_password_for_email(email())  # unknown addresses get the same answer
    with pytest.raises(AuthApiError) as soon:
        sb.auth.reset_password_for_email(addr)
    assert soon.value.status == 429 and soon.value.code == "over_email_send_rate_limit"
    token_hash = platform.sql(project, f"select recovery_token from auth.users where email = '{addr.lower()}'")[0]["recovery_token"]
    # supabase-py's default flow is PKCE: GoTrue's `pkce_` prefix before the hash.
    assert token_hash.startswith("pkce_") and len(token_hash) == 5 + 56
    log = open(platform.log_path).read()
    assert "no mailer configured" in log and token_hash not in log and PASSWORD not in log

    with pytest.raises(AuthApiError) as bad:
        sb.auth.verify_otp({"type": "recovery", "token_hash": "0" * 56})
    assert bad.value.status == 403 and bad.value.code == "otp_expired"
    res = sb.auth.verify_otp({"type": "recovery", "token_hash": token_hash})
    assert res.session and res.user.email == addr.lower()
    assert claims_of(res.session.access_token)["amr"][0]["method"] == "otp"
    sb.auth.update_user({"password": "recovered-pass"})
    with pytest.raises(AuthApiError):
        sb.auth.verify_otp({"type": "recovery", "token_hash": token_hash})  # used once
    assert create_client(project.url, project.anon).auth.sign_in_with_password(
        {"email": addr, "password": "recovered-pass"}).session


def test_magic_link_code_and_link(platform, project):
    admin = create_client(project.url, project.secret).auth.admin
    addr = email()
    admin.create_user({"email": addr, "password": PASSWORD, "email_confirm": True})
    link = admin.generate_link({"type": "magiclink", "email": addr})
    props = link.properties
    assert len(props.email_otp) == 6 and props.verification_type == "magiclink"
    assert props.action_link.startswith(f"{project.url}/auth/v1/verify?token={props.hashed_token}&type=magiclink")
    sb = create_client(project.url, project.anon)
    with pytest.raises(AuthApiError):
        sb.auth.verify_otp({"email": addr, "token": "000000" if props.email_otp != "000000" else "111111",
                            "type": "magiclink"})
    res = sb.auth.verify_otp({"email": addr, "token": props.email_otp, "type": "magiclink"})
    assert res.user.email == addr.lower() and res.session

    # The emailed link is opened by a browser: no API key, a redirect with the session in the fragment.
    link = admin.generate_link({"type": "magiclink", "email": addr, "options": {"redirect_to": "http://localhost:3000/welcome"}})
    r = httpx.get(link.properties.action_link, follow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("http://localhost:3000/welcome#access_token=")
    fragment = dict(kv.split("=", 1) for kv in location.split("#", 1)[1].split("&"))
    assert claims_of(fragment["access_token"])["email"] == addr.lower() and fragment["type"] == "magiclink"
    r = httpx.get(link.properties.action_link, follow_redirects=False)
    assert "error_code=otp_expired" in r.headers["location"], "a link works once"


def test_otp_sign_up_confirms_the_new_user(platform, project):
    sb = create_client(project.url, project.anon)
    addr = email()
    sb.auth.sign_in_with_otp({"email": addr})
    row = platform.sql(project, f"select confirmation_token, email_confirmed_at from auth.users where email = '{addr.lower()}'")[0]
    token = row["confirmation_token"]
    assert row["email_confirmed_at"] is None and token.startswith("pkce_") and len(token) == 5 + 56, "PKCE by default"
    with pytest.raises(AuthApiError) as no_create:
        sb.auth.sign_in_with_otp({"email": email(), "options": {"should_create_user": False}})
    assert no_create.value.code == "otp_disabled"
    res = sb.auth.verify_otp({"type": "email", "token_hash": row["confirmation_token"]})
    assert res.user.email_confirmed_at is not None and res.session


class SmtpSink:
    """A minimal real SMTP server on loopback that keeps the messages it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as f:
                conn.sendall(b"220 sink ESMTP\r\n")
                data = None
                for line in f:
                    if data is not None:
                        if line in (b".\r\n", b".\n"):
                            self.messages.append(b"".join(data).decode())
                            data = None
                            conn.sendall(b"250 queued\r\n")
                        else:
                            data.append(line)
                        continue
                    cmd = line.strip().upper()
                    if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                        conn.sendall(b"250 sink\r\n")
                    elif cmd == b"DATA":
                        data = []
                        conn.sendall(b"354 go on\r\n")
                    elif cmd == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    else:
                        conn.sendall(b"250 ok\r\n")


def test_mail_is_delivered_through_smtp(platform):
    p = platform.create_project("Auth mail")
    sink = SmtpSink()
    settings_sql(platform, p, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_tls="none",
                 smtp_admin_email="auth@example.com", mailer_autoconfirm=False)
    sb = create_client(p.url, p.anon)
    addr = email()
    res = sb.auth.sign_up({"email": addr, "password": PASSWORD})
    assert res.session is None and res.user.email_confirmed_at is None, "confirmation needed"
    with pytest.raises(AuthApiError) as unconfirmed:
        sb.auth.sign_in_with_password({"email": addr, "password": PASSWORD})
    assert unconfirmed.value.code == "email_not_confirmed"
    deadline = time.time() + 10
    while not sink.messages and time.time() < deadline:
        time.sleep(0.1)
    assert len(sink.messages) == 1
    msg = sink.messages[0]
    assert "Confirm Your Signup" in msg and addr.lower() in msg.lower()
    code = msg.split("enter the code: ")[1][:6]
    assert code.isdigit()
    res = sb.auth.verify_otp({"email": addr, "token": code, "type": "signup"})
    assert res.session and res.user.email_confirmed_at is not None
    assert sb.auth.sign_in_with_password({"email": addr, "password": PASSWORD}).session
    real_id = res.user.id

    # With confirmations on, a repeated signup does not reveal that the address has an account.
    dup = create_client(p.url, p.anon).auth.sign_up({"email": addr, "password": PASSWORD})
    assert dup.session is None and dup.user.id != real_id

    # Email change (secure, GoTrue's default): a code to the new address and one to the current; the
    # first verified answers GoTrue's message (no user, no session for supabase-py), the second
    # switches the address.
    new_addr = email()
    pending = sb.auth.update_user({"email": new_addr}).user
    assert pending.email == addr.lower() and pending.new_email == new_addr.lower()
    deadline = time.time() + 10
    while len(sink.messages) < 3 and time.time() < deadline:
        time.sleep(0.1)
    to_new, to_current = sink.messages[1], sink.messages[2]
    assert "Confirm Email Change" in to_new and new_addr.lower() in to_new.lower()
    assert "Confirm Email Address" in to_current and addr.lower() in to_current.lower()

    def code_of(msg):
        return msg.split("enter the code: ")[1][:6]

    half = sb.auth.verify_otp({"email": addr, "token": code_of(to_current), "type": "email_change"})
    assert half.user is None and half.session is None
    changed = sb.auth.verify_otp({"email": new_addr, "token": code_of(to_new), "type": "email_change"})
    assert changed.user.email == new_addr.lower() and changed.user.new_email is None

    # Without secure email change, the new address's code alone switches it.
    settings_sql(platform, p, mailer_secure_email_change_enabled=False, smtp_max_frequency=0)
    third = email()
    sb.auth.update_user({"email": third})
    settings_sql(platform, p, smtp_max_frequency=60)
    deadline = time.time() + 10
    while len(sink.messages) < 4 and time.time() < deadline:
        time.sleep(0.1)
    to_third = sink.messages[3]
    assert "Confirm Email Change" in to_third and third.lower() in to_third.lower()
    changed = sb.auth.verify_otp({"email": third, "token": code_of(to_third), "type": "email_change"})
    assert changed.user.email == third.lower()

    # Resending within the send interval is refused with GoTrue's code.
    other = email()
    create_client(p.url, p.anon).auth.sign_up({"email": other, "password": PASSWORD})
    with pytest.raises(AuthApiError) as soon:
        create_client(p.url, p.anon).auth.resend({"type": "signup", "email": other})
    assert soon.value.status == 429 and soon.value.code == "over_email_send_rate_limit"
    assert len(sink.messages) == 5
