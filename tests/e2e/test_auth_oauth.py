"""OAuth sign-in end to end with the real supabase-py client against `supactl up` and a real OpenID provider
on loopback (the npm package `oidc-provider`, `tests/oidc/provider.mjs`, installed by `scripts/setup.sh
oidc-provider`): `sign_in_with_oauth` with the PKCE flow gives the authorize URL, a browser stand-in (httpx
following redirects with its cookie jar) signs in at the provider, and `exchange_code_for_session` turns the
code the app receives into a session that reaches the user endpoint. Identity linking: `link_identity`,
`get_user_identities` and `unlink_identity` (GoTrue's manual linking, turned on for the project)."""

import contextlib
import os
import pathlib
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP = "http://app.test"
CLIENT_ID = "supactl-e2e-app"
CLIENT_SECRET = "e2e-client-secret-0123456789"
# supabase-py accepts only the provider names it knows; a generic OIDC provider configured by its issuer takes
# one of them, as GoTrue's Keycloak provider is configured by its URL.
PROVIDER = "keycloak"
LINKED = "gitlab"


@contextlib.contextmanager
def oidc_provider(platform, p, names):
    """The local OpenID provider as the project's providers `names` (one client, one user); stopped on exit."""
    platform.sql(p, f"UPDATE auth.supactl_settings SET site_url = '{APP}', uri_allow_list = '{{{APP}/**}}'")
    setup = subprocess.run([str(ROOT / "scripts/setup.sh"), "oidc-provider"], capture_output=True, text=True)
    assert setup.returncode == 0, setup.stderr
    env = dict(os.environ, OIDC_PROVIDER_DIR=setup.stdout.strip(), CLIENT_ID=CLIENT_ID,
               CLIENT_SECRET=CLIENT_SECRET, REDIRECT_URI=f"{p.url}/auth/v1/callback")
    node = subprocess.Popen(["node", str(ROOT / "tests/oidc/provider.mjs")], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        issuer = node.stdout.readline().strip().removeprefix("issuer ")
        assert issuer.startswith("http://127.0.0.1:"), issuer
        for name in names:
            r = platform.admin("PUT", f"/admin/v1/projects/{p.ref}/auth/providers/{name}",
                               {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": issuer})
            assert r.status_code == 200, r.text
            assert CLIENT_SECRET not in r.text
        yield issuer
    finally:
        node.terminate()
        node.wait(timeout=10)


@pytest.fixture(scope="module")
def provider(platform):
    p = platform.create_project("OAuth")
    # A second name for the same provider: the same person is a second identity to link.
    with oidc_provider(platform, p, [PROVIDER, LINKED]):
        yield p


def browse(url, stop):
    """Follows redirects (keeping cookies) until one points at `stop`; returns that URL."""
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        for _ in range(10):
            r = browser.get(url)
            assert r.is_redirect, f"{url}: {r.status_code} {r.text}"
            url = str(r.next_request.url) if r.next_request else r.headers["location"]
            if url.startswith(stop):
                return url
    raise AssertionError("too many redirects")


def test_supabase_py_pkce_sign_in_with_an_oidc_provider(provider):
    client = create_client(provider.url, provider.anon, ClientOptions(flow_type="pkce"))
    res = client.auth.sign_in_with_oauth({"provider": PROVIDER, "options": {"redirect_to": f"{APP}/welcome"}})
    query = parse_qs(urlsplit(res.url).query)
    assert query["provider"] == [PROVIDER] and query["code_challenge_method"] == ["s256"], res.url
    back = browse(res.url, APP)
    assert back.startswith(f"{APP}/welcome?code="), back
    code = parse_qs(urlsplit(back).query)["code"][0]
    session = client.auth.exchange_code_for_session({"auth_code": code})
    assert session.user.email == "oidc.user@example.com"
    assert session.user.app_metadata["provider"] == PROVIDER
    assert [i.provider for i in session.user.identities] == [PROVIDER]
    assert client.auth.get_user().user.id == session.user.id


def test_the_implicit_flow_puts_the_session_in_the_fragment(provider):
    client = create_client(provider.url, provider.anon, ClientOptions(flow_type="implicit"))
    res = client.auth.sign_in_with_oauth({"provider": PROVIDER, "options": {"redirect_to": f"{APP}/welcome"}})
    assert "code_challenge" not in res.url
    back = browse(res.url, APP)
    fragment = parse_qs(urlsplit(back).fragment)
    assert fragment["token_type"] == ["bearer"], back
    session = client.auth.set_session(fragment["access_token"][0], fragment["refresh_token"][0])
    assert session.user.email == "oidc.user@example.com"


def test_supabase_py_links_and_unlinks_identities(provider, platform):
    client = create_client(provider.url, provider.anon, ClientOptions(flow_type="pkce"))
    client.auth.sign_up({"email": "linker@example.com", "password": "correct-horse-1"})
    with pytest.raises(AuthApiError) as off:
        client.auth.link_identity({"provider": LINKED, "options": {"redirect_to": f"{APP}/linked"}})
    assert off.value.code == "manual_linking_disabled"

    platform.sql(provider, "UPDATE auth.supactl_settings SET security_manual_linking_enabled = true")
    res = client.auth.link_identity({"provider": LINKED, "options": {"redirect_to": f"{APP}/linked"}})
    back = browse(res.url, APP)
    assert back.startswith(f"{APP}/linked?code="), back
    session = client.auth.exchange_code_for_session({"auth_code": parse_qs(urlsplit(back).query)["code"][0]})
    assert session.user.email == "linker@example.com"
    identities = client.auth.get_user_identities().identities
    assert [i.provider for i in identities] == ["email", LINKED]
    linked = identities[1]
    assert linked.id == "oidc-user-1" and linked.user_id == session.user.id
    assert linked.identity_data["email"] == "oidc.user@example.com"

    client.auth.unlink_identity(linked)
    assert [i.provider for i in client.auth.get_user_identities().identities] == ["email"]
    with pytest.raises(AuthApiError) as last:
        client.auth.unlink_identity(identities[0])
    assert last.value.code == "single_identity_not_deletable"
