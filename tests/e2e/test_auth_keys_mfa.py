"""Asymmetric signing keys and TOTP MFA end to end, with the real supabase-py client against `supactl up`:
a project rotated to an ES256 key issues user tokens signed with it (their `kid` in the project's JWKS),
which reach row-level security through the gateway; a user enrolls a TOTP factor, verifies a code computed
here and reaches `aal2`."""

import base64
import hashlib
import hmac
import json
import struct
import time
import uuid

import httpx
import pytest
from supabase import create_client
from supabase_auth.errors import AuthApiError

from conftest import NOTES

PASSWORD = "correct-horse-1"


def segment(token, i):
    part = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def totp(secret_b32, at=None):
    """RFC 6238 with HMAC-SHA1, 6 digits, 30-second steps (what authenticator apps compute)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // 30)
    h = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = h[-1] & 0x0F
    return f"{(struct.unpack('>I', h[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def email():
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture(scope="module")
def project(platform):
    p = platform.create_project("Keys and MFA")
    platform.sql(p, NOTES)
    return p


def eventually(check, what, limit=5.0):
    deadline = time.time() + limit
    while not check():
        assert time.time() < deadline, f"{what} did not happen within {limit}s"
        time.sleep(0.1)


def test_es256_user_tokens_reach_rls_and_the_jwks_lists_the_key(platform, project):
    jwks_url = f"{project.url}/auth/v1/.well-known/jwks.json"
    assert httpx.get(jwks_url).json() == {"keys": []}
    r = platform.admin("POST", f"/admin/v1/projects/{project.ref}/jwt-keys/standby", {"algorithm": "ES256"})
    assert r.status_code == 201, r.text
    kid = r.json()["data"]["id"]
    assert "d" not in r.json()["data"]["public_jwk"], "never the private key"
    r = platform.admin("POST", f"/admin/v1/projects/{project.ref}/jwt-keys/rotate", {"grace_seconds": 600})
    assert r.status_code == 200, r.text

    sb = create_client(project.url, project.anon)
    addr = email()
    sb.auth.sign_up({"email": addr, "password": PASSWORD})

    def es256():
        s = sb.auth.sign_in_with_password({"email": addr, "password": PASSWORD}).session
        return segment(s.access_token, 0)["alg"] == "ES256"
    eventually(es256, "ES256 user tokens")
    token = sb.auth.get_session().access_token
    assert segment(token, 0)["kid"] == kid
    keys = httpx.get(jwks_url).json()["keys"]
    assert [(k["kid"], k["kty"], k["crv"], k["alg"]) for k in keys] == [(kid, "EC", "P-256", "ES256")]
    assert all("d" not in k for k in keys)

    sb.table("notes").insert({"body": "signed with ES256"}).execute()
    rows = sb.table("notes").select("body").execute().data
    assert rows == [{"body": "signed with ES256"}]
    assert sb.auth.get_user().user.email == addr
    # Another user's ES256 token sees only its own rows.
    other = create_client(project.url, project.anon)
    other.auth.sign_up({"email": email(), "password": PASSWORD})
    assert other.table("notes").select("body").execute().data == []
    # A forged signature under the same kid is refused by REST and by auth.
    head, body, sig = token.split(".")
    forged = f"{head}.{body}.{sig[::-1]}"
    r = httpx.get(f"{project.url}/rest/v1/notes", headers={"apikey": project.anon, "Authorization": f"Bearer {forged}"})
    assert r.status_code == 401, r.text
    r = httpx.get(f"{project.url}/auth/v1/user", headers={"apikey": project.anon, "Authorization": f"Bearer {forged}"})
    assert r.status_code == 403 and r.json()["error_code"] == "bad_jwt", r.text


def test_totp_enroll_challenge_verify_aal2(platform, project):
    sb = create_client(project.url, project.anon)
    addr = email()
    sb.auth.sign_up({"email": addr, "password": PASSWORD})
    aal = sb.auth.mfa.get_authenticator_assurance_level()
    assert (aal.current_level, aal.next_level) == ("aal1", "aal1")

    enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "my phone", "issuer": "Acme"})
    assert enrolled.type == "totp"
    assert enrolled.totp.qr_code.startswith("data:image/svg+xml;utf-8,") and "<svg" in enrolled.totp.qr_code
    assert enrolled.totp.uri.startswith("otpauth://totp/Acme:")
    assert f"secret={enrolled.totp.secret}" in enrolled.totp.uri

    with pytest.raises(AuthApiError) as wrong:
        ch = sb.auth.mfa.challenge({"factor_id": enrolled.id})
        bad = "000000" if totp(enrolled.totp.secret) != "000000" else "111111"
        sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": ch.id, "code": bad})
    assert wrong.value.status == 422 and wrong.value.code == "mfa_verification_failed"

    ch = sb.auth.mfa.challenge({"factor_id": enrolled.id})
    sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": ch.id, "code": totp(enrolled.totp.secret)})
    aal = sb.auth.mfa.get_authenticator_assurance_level()
    assert (aal.current_level, aal.next_level) == ("aal2", "aal2")
    assert "totp" in [m.method for m in aal.current_authentication_methods]
    factors = sb.auth.mfa.list_factors()
    assert [f.id for f in factors.totp] == [enrolled.id]
    # The aal2 session's token reaches RLS, and SQL sees the claim.
    sb.table("notes").insert({"body": "after mfa"}).execute()
    assert sb.table("notes").select("body").execute().data == [{"body": "after mfa"}]

    # A fresh password sign-in is aal1 with aal2 next; the factor is listed for the admin.
    fresh = create_client(project.url, project.anon)
    fresh.auth.sign_in_with_password({"email": addr, "password": PASSWORD})
    aal = fresh.auth.mfa.get_authenticator_assurance_level()
    assert (aal.current_level, aal.next_level) == ("aal1", "aal2")
    admin = create_client(project.url, project.secret)
    uid = sb.auth.get_user().user.id
    listed = admin.auth.admin.mfa.list_factors({"user_id": uid})
    assert [(f.id, f.status) for f in listed] == [(enrolled.id, "verified")]

    assert sb.auth.mfa.unenroll({"factor_id": enrolled.id}).id == enrolled.id
    assert sb.auth.mfa.list_factors().all == []
    # The admin deletes a user's factor.
    spare = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "spare", "issuer": None})
    assert admin.auth.admin.mfa.delete_factor({"id": spare.id, "user_id": uid}).id == spare.id
    assert admin.auth.admin.mfa.list_factors({"user_id": uid}) == []
