"""Realtime through the gateway with the real supabase-py async client: the WebSocket at
{api_url}/realtime/v1/websocket (Phoenix protocol, vsn 1.0.0), authenticated by the gateway from the
`apikey` query parameter. Broadcast (self, no echo by default, topics scoped per project), Presence,
the REST broadcast endpoint, a key that does not authenticate, postgres_changes with RLS, and user
tokens on joined channels (a new token changes what the channel receives; an expired one closes it
unless the client refreshes it). Across two gateway replicas: test_realtime_replicas.py."""

import asyncio
import uuid

import httpx
from supabase import AsyncClientOptions, acreate_client

from conftest import NOTES

PASSWORD = "correct-horse-1"
# auth's rate limits out of the way of a test that signs in and refreshes often
RELAXED_AUTH = ("update auth.supactl_settings set rate_limit_sign_in_sign_ups = 1000, "
                "rate_limit_token_refresh = 1000, rate_limit_verify = 1000")


async def wait_for(pred, within=5.0):
    deadline = asyncio.get_running_loop().time() + within
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def joined(client, topic, config=None, on=None, states=None):
    """A subscribed channel; `on(channel)` registers callbacks before the join. Every later state of the
    channel (with its error, if any) is appended to `states`."""
    ch = client.channel(topic, {"config": config or {}})
    if on:
        on(ch)
    states = [] if states is None else states
    await ch.subscribe(lambda state, err: states.append(f"{state.value} {err or ''}"))
    assert any("SUBSCRIBED" in s for s in states), states
    return ch


async def sign_up(client):
    """Signs a new user up through `client` (its realtime then carries the user's token); returns the
    email and the session."""
    email = f"rt-{uuid.uuid4().hex[:10]}@example.com"
    r = await client.auth.sign_up({"email": email, "password": PASSWORD})
    assert r.session, r
    await wait_for(lambda: client.realtime.access_token == r.session.access_token)
    return email, r.session


def test_broadcast_self_echo_and_isolation(platform):
    a, b = platform.create_project("rt-a"), platform.create_project("rt-b")

    async def run():
        alice, bob = await acreate_client(a.url, a.anon), await acreate_client(a.url, a.anon)
        other = await acreate_client(b.url, b.anon)
        got = {"alice": [], "bob": [], "other": []}
        on = lambda who: (lambda ch: ch.on_broadcast("msg", lambda m: got[who].append(m["payload"])))
        ch_alice = await joined(alice, "room", on=on("alice"))
        await joined(bob, "room", on=on("bob"))
        await joined(other, "room", on=on("other"))
        ch_self = await joined(bob, "echo", {"broadcast": {"self": True}}, on=on("bob"))

        await ch_alice.send_broadcast("msg", {"n": 1})
        await wait_for(lambda: got["bob"])
        assert got["bob"] == [{"n": 1}]
        await ch_self.send_broadcast("msg", {"n": 2})
        await wait_for(lambda: len(got["bob"]) == 2)
        await asyncio.sleep(0.3)
        assert got["alice"] == [], "no echo to the sender unless it asks"
        assert got["other"] == [], "the same topic in another project never meets"
        for c in (alice, bob, other):
            await c.realtime.close()

    asyncio.run(run())


def test_presence_join_sync_and_leave(platform):
    p = platform.create_project("rt-presence")

    async def run():
        watcher, walker = await acreate_client(p.url, p.anon), await acreate_client(p.url, p.anon)
        joins, leaves = [], []

        def on(ch):
            ch.on_presence_join(lambda key, cur, new: joins.append(key))
            ch.on_presence_leave(lambda key, cur, left: leaves.append(key))
        ch_watch = await joined(watcher, "lobby", {"presence": {"key": "watcher"}}, on=on)
        ch_walk = await joined(walker, "lobby", {"presence": {"key": "walker"}})
        await ch_walk.track({"status": "online"})
        await wait_for(lambda: "walker" in joins)
        state = ch_watch.presence_state()
        assert state["walker"][0]["status"] == "online", state
        await walker.realtime.close()
        await wait_for(lambda: "walker" in leaves, within=10)
        await watcher.realtime.close()

    asyncio.run(run())


def test_rest_broadcast_reaches_subscribers(platform):
    p = platform.create_project("rt-rest")

    async def run():
        sub = await acreate_client(p.url, p.anon)
        got = []
        await joined(sub, "news", on=lambda ch: ch.on_broadcast("flash", lambda m: got.append(m["payload"])))
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{p.url}/realtime/v1/api/broadcast",
                                headers={"apikey": p.secret},
                                json={"messages": [{"topic": "news", "event": "flash", "payload": {"x": 1}}]})
            assert r.status_code == 202, r.text
        await wait_for(lambda: got)
        assert got == [{"x": 1}]
        await sub.realtime.close()

    asyncio.run(run())


def test_a_key_that_does_not_authenticate_cannot_connect(platform):
    p = platform.create_project("rt-keys")
    ws = p.url.replace("http://", "ws://") + "/realtime/v1/websocket?vsn=1.0.0"
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    http_url = ws.replace("ws://", "http://")
    r = httpx.get(http_url + "&apikey=sb_publishable_nope", headers=upgrade)
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"
    r = httpx.get(http_url, headers=upgrade)
    assert r.status_code == 401
    other = platform.create_project("rt-keys-other")
    r = httpx.get(http_url + f"&apikey={other.anon}", headers=upgrade)
    assert r.status_code == 401
    # the project's key is handed over: 101 Switching Protocols
    with httpx.stream("GET", http_url + f"&apikey={p.anon}", headers=upgrade) as r:
        assert r.status_code == 101


def test_postgres_changes_with_a_filter_and_row_level_security(platform):
    p = platform.create_project("rt-changes")
    platform.sql(p, """
create table chat (id serial primary key, room text not null, body text);
alter table chat replica identity full;
create table vault (id serial primary key, secret text);
alter table vault enable row level security;
alter publication supabase_realtime add table chat, vault;
""")

    async def run():
        anon, admin = await acreate_client(p.url, p.anon), await acreate_client(p.url, p.secret)
        chat, anon_vault, admin_vault, ready = [], [], [], []

        def on(target, event, table, filter=None):
            def register(ch):
                ch.on_postgres_changes(event, target.append, table=table, schema="public", filter=filter)
                ch.on_system(lambda m: ready.append(m) if m.status == "ok" else None)
            return register
        await joined(anon, "db-chat", on=on(chat, "*", "chat", "room=eq.a"))
        await joined(anon, "db-vault", on=on(anon_vault, "INSERT", "vault"))
        await joined(admin, "db-vault", on=on(admin_vault, "INSERT", "vault"))
        # the capture slot exists once each channel is told "Subscribed to PostgreSQL"
        await wait_for(lambda: len(ready) == 3, within=10)

        platform.sql(p, "insert into chat (room, body) values ('b', 'elsewhere'), ('a', 'hi')")
        platform.sql(p, "update chat set body = 'edited' where room = 'a'")
        platform.sql(p, "delete from chat where room = 'a'")
        platform.sql(p, "insert into vault (secret) values ('s3cret')")
        await wait_for(lambda: len(chat) == 3 and admin_vault, within=10)
        await asyncio.sleep(0.5)

        kinds = [c["data"]["type"] for c in chat]
        assert kinds == ["INSERT", "UPDATE", "DELETE"], chat
        assert chat[0]["data"]["record"]["body"] == "hi"
        assert chat[1]["data"]["record"]["body"] == "edited"
        assert chat[1]["data"]["old_record"]["body"] == "hi"
        assert all(c["data"]["table"] == "chat" for c in chat)
        assert admin_vault[0]["data"]["record"]["secret"] == "s3cret"
        assert anon_vault == [], "anon may not SELECT the row, so it never receives it"
        for c in (anon, admin):
            await c.realtime.close()

    asyncio.run(run())


def test_a_new_user_token_on_a_joined_channel_changes_which_rows_it_receives(platform):
    p = platform.create_project("rt-token-rls")
    platform.sql(p, NOTES + "alter publication supabase_realtime add table notes;" + RELAXED_AUTH)

    async def run():
        client, other = await acreate_client(p.url, p.anon), await acreate_client(p.url, p.anon)
        _, a = await sign_up(client)
        b_email, b = await sign_up(other)
        got, ready = [], []

        def on(ch):
            ch.on_postgres_changes("INSERT", lambda m: got.append(m["data"]["record"]["body"]),
                                   table="notes", schema="public")
            ch.on_system(lambda m: ready.append(m) if m.status == "ok" else None)
        await joined(client, "db-notes", on=on)
        await wait_for(lambda: ready, within=10)

        def insert(*rows):
            values = ", ".join(f"('{owner}', '{body}')" for owner, body in rows)
            platform.sql(p, f"insert into notes (owner, body) values {values}")
        insert((a.user.id, "a1"), (b.user.id, "b1"))
        await wait_for(lambda: got, within=10)
        await asyncio.sleep(0.5)
        assert got == ["a1"], "the channel joined with A's token sees A's rows only"

        # supabase-py hands a new session's token to every joined channel (an access_token push)
        signed_in = await client.auth.sign_in_with_password({"email": b_email, "password": PASSWORD})
        await wait_for(lambda: client.realtime.access_token == signed_in.session.access_token)
        await asyncio.sleep(1)
        insert((a.user.id, "a2"), (b.user.id, "b2"))
        await wait_for(lambda: len(got) == 2, within=10)
        await asyncio.sleep(0.5)
        assert got == ["a1", "b2"], "the same channel, now B's, sees B's rows only"
        for c in (client, other):
            await c.realtime.close()

    asyncio.run(run())


def test_a_channel_outlives_its_first_token_only_when_the_client_refreshes_it(platform):
    p = platform.create_project("rt-token-expiry")
    # 11 s tokens: supabase-py refreshes a token 10 s before it expires, so about every second
    platform.sql(p, RELAXED_AUTH + ", jwt_exp = 11")

    async def run():
        kept = await acreate_client(p.url, p.anon)
        lapsed = await acreate_client(p.url, p.anon, AsyncClientOptions(auto_refresh_token=False))
        sender = await acreate_client(p.url, p.anon)
        _, first = await sign_up(kept)
        await sign_up(lapsed)
        got = {"kept": [], "lapsed": []}
        states = {"kept": [], "lapsed": []}
        on = lambda who: (lambda ch: ch.on_broadcast("tick", lambda m: got[who].append(m["payload"])))
        for who, client in (("kept", kept), ("lapsed", lapsed)):
            await joined(client, "clock", on=on(who), states=states[who])
        ch_send = await joined(sender, "clock")

        # The channel joined with a token that is never refreshed closes when it expires, as
        # Supabase closes it: a system error, then phx_close.
        await wait_for(lambda: any("CLOSED" in s for s in states["lapsed"]), within=25)
        errors = [s for s in states["lapsed"] if "CHANNEL_ERROR" in s]
        assert errors and "Token has expired" in errors[0], states["lapsed"]
        # The refreshed one is still joined past the first token's expiry.
        assert kept.realtime.access_token != first.access_token, "supabase-py refreshed the session"
        assert [s.split()[0] for s in states["kept"]] == ["SUBSCRIBED"], states
        await ch_send.send_broadcast("tick", {"n": 1})
        await wait_for(lambda: got["kept"])
        await asyncio.sleep(0.3)
        assert got == {"kept": [{"n": 1}], "lapsed": []}
        for c in (kept, lapsed, sender):
            await c.realtime.close()

    asyncio.run(run())
