"""The REST engine through the gateway with the real supabase-py client: embedding, filters, `or_`,
ranges, counts, single/maybe_single, RPC, bulk insert and upsert, CSV, schema reload after DDL, GeoJSON
with PostGIS and media type handlers."""

import time

import pytest
from postgrest.exceptions import APIError
from supabase import create_client

SCHEMA = """
create table authors (id int primary key, name text not null, country text);
create table books (
  id int primary key, title text not null, author_id int references authors(id),
  pages int, genres text[] not null default '{}', summary text,
  search tsvector generated always as (to_tsvector('english', coalesce(summary, ''))) stored
);
create table tags (id int primary key, name text unique not null);
create table book_tags (book_id int references books(id), tag_id int references tags(id), primary key (book_id, tag_id));
create table employees (id int primary key, name text not null, manager_id int references employees(id));
create table kv (k text primary key, v text);
insert into authors values (1, 'Le Guin', 'US'), (2, 'Lem', 'PL'), (3, 'Butler', 'US');
insert into books (id, title, author_id, pages, genres, summary) values
  (1, 'The Left Hand of Darkness', 1, 304, '{scifi,classic}', 'a winter planet'),
  (2, 'The Dispossessed', 1, 387, '{scifi,utopia}', 'an anarchist moon'),
  (3, 'Solaris', 2, 204, '{scifi}', 'a living ocean planet'),
  (4, 'Kindred', 3, 264, '{historical}', 'pulled back in time');
insert into tags values (1, 'classic'), (2, 'award');
insert into book_tags values (1, 1), (1, 2), (3, 1);
insert into employees values (1, 'Ada', null), (2, 'Bob', 1);
create function add_them(a int, b int) returns int language sql immutable as $$ select a + b $$;
create function books_by(author int) returns setof books language sql stable as
  $$ select * from books where author_id = author order by id $$;
create function noop() returns void language sql as $$ select $$;
create function display_name(authors) returns text language sql stable as $$ select $1.name || ' (' || $1.country || ')' $$;
create function blurb(books) returns text language sql immutable as $$ select $1.title || ' ' || coalesce($1.summary, '') $$;
create function longest_book(authors) returns setof books rows 1 language sql stable as
  $$ select * from books where author_id = $1.id order by pages desc limit 1 $$;
"""


@pytest.fixture(scope="module")
def sb(platform):
    p = platform.create_project("REST e2e")
    platform.sql(p, SCHEMA)
    return create_client(p.url, p.secret)


def test_embedding_many_to_one_one_to_many_and_many_to_many(sb):
    rows = sb.table("books").select("title,authors(name)").eq("id", 3).execute().data
    assert rows == [{"title": "Solaris", "authors": {"name": "Lem"}}]
    rows = (sb.table("authors").select("name,books(title)").eq("id", 1)
            .order("id", foreign_table="books").execute().data)
    assert rows == [{"name": "Le Guin", "books": [{"title": "The Left Hand of Darkness"}, {"title": "The Dispossessed"}]}]
    rows = sb.table("books").select("id,tags(name)").eq("id", 1).order("id", foreign_table="tags").execute().data
    assert rows == [{"id": 1, "tags": [{"name": "classic"}, {"name": "award"}]}]
    # a self-reference, as PostgREST 12/13 read it: the key column names the parent, a hint by the key
    # column the children
    rows = sb.table("employees").select("name,manager:manager_id(name)").eq("id", 2).execute().data
    assert rows == [{"name": "Bob", "manager": {"name": "Ada"}}]
    rows = sb.table("employees").select("name,reports:employees!manager_id(name)").eq("id", 1).execute().data
    assert rows == [{"name": "Ada", "reports": [{"name": "Bob"}]}]
    rows = (sb.table("authors").select("name,books!inner(title)").eq("books.title", "Solaris").execute().data)
    assert rows == [{"name": "Lem", "books": [{"title": "Solaris"}]}]
    rows = sb.table("books").select("title,...authors(writer:name)").eq("id", 4).execute().data
    assert rows == [{"title": "Kindred", "writer": "Butler"}]
    rows = (sb.table("authors").select("id,books(id)").eq("id", 1)
            .order("id", desc=True, foreign_table="books").limit(1, foreign_table="books").execute().data)
    assert rows == [{"id": 1, "books": [{"id": 2}]}]
    # PostgREST 13's spread of a to-many relationship: one array per column
    rows = (sb.table("authors").select("name,...books(titles:title)").eq("id", 1)
            .order("id", foreign_table="books").execute().data)
    assert rows == [{"name": "Le Guin", "titles": ["The Left Hand of Darkness", "The Dispossessed"]}]


def test_a_page_of_rows_with_embeds(sb):
    # With range/limit the page is chosen before the embeds are joined; an !inner embed still filters
    # the rows first, and ordering by an embedded column still joins it first.
    res = (sb.table("books").select("id,authors(name),tags(name)", count="exact")
           .order("pages", desc=True).order("id", foreign_table="tags").range(1, 2).execute())
    assert res.data == [{"id": 1, "authors": {"name": "Le Guin"}, "tags": [{"name": "classic"}, {"name": "award"}]},
                        {"id": 4, "authors": {"name": "Butler"}, "tags": []}]
    assert res.count == 4
    rows = (sb.table("books").select("id,authors!inner(country)").eq("authors.country", "US")
            .order("id").range(1, 2).execute().data)
    assert [r["id"] for r in rows] == [2, 4]
    rows = (sb.table("books").select("id,authors(name)").order("authors(name)").order("id")
            .limit(2).execute().data)
    assert [r["id"] for r in rows] == [4, 1]


def test_computed_fields_and_relationships(sb):
    # Functions of a row: a computed field is selected, filtered (full-text too) and ordered by name;
    # a computed relationship embeds like a foreign key.
    rows = sb.table("authors").select("id,display_name").order("display_name", desc=True).execute().data
    assert rows == [{"id": 2, "display_name": "Lem (PL)"}, {"id": 1, "display_name": "Le Guin (US)"},
                    {"id": 3, "display_name": "Butler (US)"}]
    rows = sb.table("books").select("id").text_search("blurb", "ocean", options={"config": "english"}).execute().data
    assert rows == [{"id": 3}]
    rows = sb.table("authors").select("name,longest_book(title)").eq("display_name", "Le Guin (US)").execute().data
    assert rows == [{"name": "Le Guin", "longest_book": {"title": "The Dispossessed"}}]


def test_filters_and_or(sb):
    ids = lambda q: [r["id"] for r in q.order("id").execute().data]
    t = lambda: sb.table("books").select("id")
    assert ids(t().gt("pages", 300)) == [1, 2]
    assert ids(t().gte("pages", 264).lt("pages", 350)) == [1, 4]
    assert ids(t().neq("id", 1).lte("pages", 264)) == [3, 4]
    assert ids(t().like("title", "%Dark%")) == [1]
    assert ids(t().ilike("title", "%SOLARIS%")) == [3]
    assert ids(t().in_("id", [2, 4])) == [2, 4]
    assert ids(t().is_("author_id", "null")) == []
    assert ids(t().contains("genres", ["scifi", "utopia"])) == [2]
    assert ids(t().contained_by("genres", ["scifi", "classic", "utopia"])) == [1, 2, 3]
    assert ids(t().overlaps("genres", ["historical", "utopia"])) == [2, 4]
    assert ids(t().text_search("search", "planet", options={"config": "english"})) == [1, 3]
    assert ids(t().not_.eq("id", 1)) == [2, 3, 4]
    assert ids(t().or_("id.eq.1,pages.lt.210")) == [1, 3]
    assert ids(t().or_("id.eq.4,and(pages.gt.300,title.like.*Dis*)")) == [2, 4]
    assert ids(t().filter("title", "imatch", "^the")) == [1, 2]
    rows = (sb.table("authors").select("id,books(id)").eq("id", 2)
            .or_("id.eq.1,id.eq.3", reference_table="books").execute().data)
    assert rows == [{"id": 2, "books": [{"id": 3}]}]
    with pytest.raises(APIError) as e:
        sb.table("books").select("id").filter("id", "bogus", "1").execute()
    assert e.value.code == "PGRST100"


def test_range_count_single_and_maybe_single(sb):
    res = sb.table("books").select("id", count="exact").order("id").range(1, 2).execute()
    assert [r["id"] for r in res.data] == [2, 3]
    assert res.count == 4
    res = sb.table("books").select("id", count="exact", head=True).execute()
    assert res.count == 4 and not res.data
    # planned: the planner's estimate of the filtered rows (a primary-key lookup is one row)
    res = sb.table("books").select("id", count="planned").eq("id", 3).execute()
    assert res.data == [{"id": 3}] and res.count == 1
    one = sb.table("books").select("title").eq("id", 2).single().execute().data
    assert one == {"title": "The Dispossessed"}
    with pytest.raises(APIError) as e:
        sb.table("books").select("title").single().execute()
    assert e.value.code == "PGRST116"
    assert sb.table("books").select("title").eq("id", 99).maybe_single().execute() is None
    assert sb.table("books").select("title").eq("id", 1).maybe_single().execute().data == {
        "title": "The Left Hand of Darkness"}


def test_rpc(sb):
    assert sb.rpc("add_them", {"a": 2, "b": 3}).execute().data == 5
    assert sb.rpc("add_them", {"a": 2, "b": 3}, get=True).execute().data == 5
    rows = sb.rpc("books_by", {"author": 1}).select("id,title").gt("id", 1).execute().data
    assert rows == [{"id": 2, "title": "The Dispossessed"}]
    assert sb.rpc("noop").execute().data in (None, "", [])
    with pytest.raises(APIError) as e:
        sb.rpc("nope", {}).execute()
    assert e.value.code == "PGRST202"


def test_bulk_insert_upsert_update_delete_and_csv(sb):
    rows = sb.table("kv").insert([{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]).execute().data
    assert rows == [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]
    rows = sb.table("kv").upsert([{"k": "b", "v": "two"}, {"k": "c", "v": "3"}]).execute().data
    assert rows == [{"k": "b", "v": "two"}, {"k": "c", "v": "3"}]
    rows = sb.table("kv").upsert({"k": "c", "v": "ignored"}, ignore_duplicates=True).execute().data
    assert rows == []
    rows = sb.table("kv").upsert({"k": "a", "v": "uno"}, on_conflict="k").execute().data
    assert rows == [{"k": "a", "v": "uno"}]
    rows = sb.table("kv").insert([{"k": "d"}, {"k": "e", "v": "5"}], default_to_null=False).execute().data
    assert rows == [{"k": "d", "v": None}, {"k": "e", "v": "5"}]
    assert sb.table("kv").update({"v": "x"}).in_("k", ["d", "e"]).execute().data == [
        {"k": "d", "v": "x"}, {"k": "e", "v": "x"}]
    assert sb.table("kv").delete().eq("k", "e").execute().data == [{"k": "e", "v": "x"}]
    csv = sb.table("kv").select("k,v").order("k").csv().execute().data
    assert csv == "k,v\na,uno\nb,two\nc,3\nd,x"


def test_table_created_later_is_queryable_at_once(platform):
    p = platform.create_project("REST reload")
    client = create_client(p.url, p.secret)
    with pytest.raises(APIError) as e:
        client.table("fresh").select("*").execute()
    assert e.value.code == "PGRST205"
    platform.sql(p, "create table fresh (id int primary key); insert into fresh values (1);")
    deadline = time.time() + 2
    while True:
        try:
            assert client.table("fresh").select("*").execute().data == [{"id": 1}]
            break
        except APIError:
            assert time.time() < deadline, "not visible within 2 s"
            time.sleep(0.05)


MEDIA_SCHEMA = """
create extension postgis with schema extensions;
create table places (id int primary key, name text, geom extensions.geometry(Point, 4326));
insert into places values (1, 'origin', 'SRID=4326;POINT(0 0)'), (2, 'north', 'SRID=4326;POINT(0 10)');
create domain "text/plain" as text;
create function greeting() returns "text/plain" language sql as $$ select 'hello, world' $$;
create function plain() returns text language sql as $$ select 'no handler' $$;
create table memos (id int primary key, body text);
insert into memos values (1, null);
"""


def test_geojson_with_postgis_and_media_type_handlers(platform):
    """PostGIS installed through the admin SQL endpoint gives GeoJSON (406 before); a function returning
    a domain named like a media type answers it raw; a media type nothing produces is 406 (PGRST107);
    `vnd.pgrst.object+json;nulls=stripped`."""
    p = platform.create_project("REST media")
    platform.sql(p, "create table things (id int primary key);")
    sb = create_client(p.url, p.secret)
    q = sb.table("things").select("*")
    q.request.headers["Accept"] = "application/geo+json"
    with pytest.raises(APIError) as e:
        q.execute()
    assert e.value.code == "PGRST107"

    platform.sql(p, MEDIA_SCHEMA)
    q = sb.table("places").select("*").order("id")
    q.request.headers["Accept"] = "application/geo+json"
    features = q.execute().data
    assert features["type"] == "FeatureCollection"
    assert [f["geometry"]["coordinates"] for f in features["features"]] == [[0, 0], [0, 10]]
    assert features["features"][1]["properties"] == {"id": 2, "name": "north"}

    r = sb.rpc("greeting", get=True)
    r.request.headers["Accept"] = "text/plain"
    assert r.execute().data == "hello, world"
    r = sb.rpc("plain", get=True)
    r.request.headers["Accept"] = "text/plain"
    with pytest.raises(APIError) as e:
        r.execute()
    assert e.value.code == "PGRST107"
    assert e.value.message == "None of these media types are available: text/plain"

    single = sb.table("memos").select("*").eq("id", 1).strip_nulls().single().execute()
    assert single.data == {"id": 1}
