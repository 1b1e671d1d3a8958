"""Phone sign-in and phone MFA factors end to end with the real supabase-py client against `supactl up`: the
project's Send SMS hook points at a receiver started here on 127.0.0.1, which checks each call's Standard
Webhooks signature itself (HMAC-SHA256 over `id.timestamp.body` with the secret's decoded bytes) and keeps the
code a user would get by SMS. `sign_up(phone=…)` → `verify_otp(type="sms")`, `sign_in_with_otp({"phone"})`,
the password sign-in by number, `mfa.enroll(factor_type="phone")` → challenge → verify (aal2, `mfa/phone`),
and a hook whose secret is not the receiver's."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError

PASSWORD = "phone-pass-1"


def make_secret():
    key = hashlib.sha256(uuid.uuid4().bytes).digest()
    return f"v1,whsec_{base64.b64encode(key).decode()}", key


class Receiver:
    """A Send SMS hook on loopback: checks signatures, keeps payloads."""

    def __init__(self):
        self.secret, self.key = make_secret()
        self.payloads, self.refused = [], 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if not receiver.signed(self.headers, body):
                    receiver.refused += 1
                    self.answer(401, {"error": {"http_code": 401, "message": "bad signature"}})
                    return
                receiver.payloads.append(json.loads(body))
                self.answer(200, {})

            def answer(self, status, doc):
                raw = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/sms"

    def signed(self, headers, body):
        msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
        if not msg_id or abs(time.time() - int(ts)) > 300:
            return False
        mac = hmac.new(self.key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        return expected in headers.get("webhook-signature", "").split(" ")

    def code_for(self, phone):
        sent = [p for p in self.payloads if p["sms"]["phone"] == phone]
        assert sent, f"no code was sent to {phone}"
        return sent[-1]["sms"]["otp"]


@pytest.fixture(scope="module")
def phone_project(platform):
    p = platform.create_project("Phone")
    platform.sql(p, "UPDATE auth.supactl_settings SET phone_enabled = true, mfa_phone_enabled = true, "
                    "sms_max_frequency = 0")
    rx = Receiver()
    r = platform.admin("PUT", f"/admin/v1/projects/{p.ref}/auth/hooks/send_sms", {"uri": rx.uri, "secret": rx.secret})
    assert r.status_code == 200, r.text
    assert "whsec_" not in r.text and r.json()["data"]["secret_set"] is True
    yield p, rx
    rx.server.shutdown()


def claims(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def number():
    return "+1555" + str(uuid.uuid4().int)[:7]


def test_sign_up_with_a_phone_then_verify_the_sms_code(phone_project):
    project, rx = phone_project
    sb = create_client(project.url, project.anon)
    phone = number()
    res = sb.auth.sign_up({"phone": phone, "password": PASSWORD})
    digits = phone.lstrip("+")
    assert res.session is None and res.user.phone == digits and res.user.phone_confirmed_at is None
    code = rx.code_for(digits)
    assert len(code) == 6 and code.isdigit()
    with pytest.raises(AuthApiError) as wrong:
        sb.auth.verify_otp({"phone": phone, "token": "000000" if code != "000000" else "111111", "type": "sms"})
    assert wrong.value.status == 403 and wrong.value.code == "otp_expired"
    res = sb.auth.verify_otp({"phone": phone, "token": code, "type": "sms"})
    assert res.session is not None and res.user.phone_confirmed_at is not None
    assert [i.provider for i in res.user.identities] == ["phone"]
    assert sb.auth.get_user().user.phone == digits
    again = create_client(project.url, project.anon)
    res = again.auth.sign_in_with_password({"phone": phone, "password": PASSWORD})
    assert res.user.id == sb.auth.get_user().user.id


def test_sign_in_with_otp_by_phone(phone_project):
    project, rx = phone_project
    sb = create_client(project.url, project.anon)
    phone = number()
    sb.auth.sign_in_with_otp({"phone": phone})
    res = sb.auth.verify_otp({"phone": phone, "token": rx.code_for(phone.lstrip("+")), "type": "sms"})
    assert res.session.user.phone == phone.lstrip("+")
    assert [a["method"] for a in claims(res.session.access_token)["amr"]] == ["otp"]
    with pytest.raises(AuthApiError) as unknown:
        sb.auth.sign_in_with_otp({"phone": number(), "options": {"should_create_user": False}})
    assert unknown.value.code == "otp_disabled"


def test_phone_mfa_factor_reaches_aal2(phone_project):
    project, rx = phone_project
    sb = create_client(project.url, project.anon)
    sb.auth.sign_up({"email": f"phone-mfa-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD})
    phone = number()
    enrolled = sb.auth.mfa.enroll({"factor_type": "phone", "phone": phone, "friendly_name": "mobile"})
    assert enrolled.type == "phone"
    ch = sb.auth.mfa.challenge({"factor_id": enrolled.id, "channel": "sms"})
    payload = rx.payloads[-1]
    assert payload["sms"]["sms_type"] == "mfa" and payload["sms"]["phone"] == phone.lstrip("+")
    sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": ch.id, "code": payload["sms"]["otp"]})
    aal = sb.auth.mfa.get_authenticator_assurance_level()
    assert (aal.current_level, aal.next_level) == ("aal2", "aal2")
    assert "mfa/phone" in [m.method for m in aal.current_authentication_methods]
    assert [f.id for f in sb.auth.mfa.list_factors().phone] == [enrolled.id]


def test_a_hook_refusing_the_signature_is_gotrues_error(platform, phone_project):
    project, rx = phone_project
    wrong, _ = make_secret()
    path = f"/admin/v1/projects/{project.ref}/auth/hooks/send_sms"
    assert platform.admin("PUT", path, {"uri": rx.uri, "secret": wrong}).status_code == 200
    try:
        refused = rx.refused
        sb = create_client(project.url, project.anon)
        with pytest.raises(AuthApiError) as err:
            sb.auth.sign_in_with_otp({"phone": number()})
        assert err.value.status == 500 and err.value.message == "Hook requires authorization token"
        assert rx.refused == refused + 1
    finally:
        assert platform.admin("PUT", path, {"uri": rx.uri, "secret": rx.secret}).status_code == 200
