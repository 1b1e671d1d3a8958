//! The conformance cases, in the order they run (writes come after the reads they would disturb).
//! Expected statuses, headers and bodies follow PostgREST's API reference and error table.

use super::Env;
use serde_json::{json, Value};

#[path = "round2.rs"]
mod round2;

#[path = "media.rs"]
pub mod media;

pub enum Check {
    /// The body parses to exactly this JSON.
    Json(Value),
    /// The error code.
    Code(&'static str),
    /// A JSON pointer into the body equals this value.
    Ptr(&'static str, Value),
    /// A response header has exactly this value.
    Header(&'static str, &'static str),
    /// A response header is absent.
    NoHeader(&'static str),
    /// The raw body is exactly this.
    Text(&'static str),
}

pub struct Case {
    pub name: String,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<String>,
    role: &'static str,
    claims: Option<Value>,
    status: u16,
    checks: Vec<Check>,
}

fn case(method: &'static str, path: &str) -> Case {
    Case {
        name: format!("{method} {path}"),
        method,
        path: path.to_string(),
        headers: Vec::new(),
        body: None,
        role: "service_role",
        claims: None,
        status: 200,
        checks: Vec::new(),
    }
}

fn get(path: &str) -> Case {
    case("GET", path)
}

fn post(path: &str, body: &str) -> Case {
    case("POST", path).body(body)
}

impl Case {
    fn status(mut self, s: u16) -> Case {
        self.status = s;
        self
    }
    fn json(mut self, v: Value) -> Case {
        self.checks.push(Check::Json(v));
        self
    }
    fn code(mut self, c: &'static str) -> Case {
        self.checks.push(Check::Code(c));
        self
    }
    fn ptr(mut self, p: &'static str, v: Value) -> Case {
        self.checks.push(Check::Ptr(p, v));
        self
    }
    fn header(mut self, k: &'static str, v: &'static str) -> Case {
        self.checks.push(Check::Header(k, v));
        self
    }
    fn no_header(mut self, k: &'static str) -> Case {
        self.checks.push(Check::NoHeader(k));
        self
    }
    fn text(mut self, t: &'static str) -> Case {
        self.checks.push(Check::Text(t));
        self
    }
    fn h(mut self, k: &'static str, v: &'static str) -> Case {
        self.headers.push((k, v));
        self
    }
    fn body(mut self, b: &str) -> Case {
        self.body = Some(b.to_string());
        self
    }
    fn role(mut self, r: &'static str) -> Case {
        self.role = r;
        self
    }
    fn claims(mut self, c: Value) -> Case {
        self.claims = Some(c);
        self
    }
    fn named(mut self, n: &str) -> Case {
        self.name = format!("{n} ({})", self.name);
        self
    }

    pub async fn run(&self, env: &Env) -> Result<(), String> {
        let token = env.token(self.role, self.claims.clone());
        let r = env
            .call(
                self.method,
                &self.path,
                &self.headers,
                self.body.as_deref(),
                &token,
            )
            .await;
        if r.status.as_u16() != self.status {
            return Err(format!(
                "status {} (expected {}): {}",
                r.status, self.status, r.text
            ));
        }
        for c in &self.checks {
            match c {
                Check::Json(v) => {
                    if r.json() != *v {
                        return Err(format!("body {} (expected {v})", r.text));
                    }
                }
                Check::Code(code) => {
                    if r.json()["code"] != *code {
                        return Err(format!("code in {} (expected {code})", r.text));
                    }
                }
                Check::Ptr(p, v) => {
                    let got = r.json().pointer(p).cloned().unwrap_or(Value::Null);
                    if got != *v {
                        return Err(format!("{p} = {got} (expected {v}) in {}", r.text));
                    }
                }
                Check::Header(k, v) => {
                    if r.header(k) != Some(*v) {
                        return Err(format!("header {k} = {:?} (expected {v})", r.header(k)));
                    }
                }
                Check::NoHeader(k) => {
                    if r.header(k).is_some() {
                        return Err(format!("header {k} present: {:?}", r.header(k)));
                    }
                }
                Check::Text(t) => {
                    if r.text != *t {
                        return Err(format!("text {:?} (expected {t:?})", r.text));
                    }
                }
            }
        }
        Ok(())
    }
}

fn ids(v: &[i64]) -> Value {
    Value::Array(v.iter().map(|i| json!({"id": i})).collect())
}

const JSON_CT: &str = "application/json; charset=utf-8";
const ALICE: &str = "11111111-1111-1111-1111-111111111111";

pub fn all() -> Vec<Case> {
    let mut c = Vec::new();
    c.extend(reads());
    c.extend(operators());
    c.extend(logic_and_order());
    c.extend(embedding());
    c.extend(pagination_and_count());
    c.extend(media_and_errors());
    c.extend(rpc());
    c.extend(writes());
    c.extend(security());
    c.extend(round2::all());
    c
}

fn reads() -> Vec<Case> {
    vec![
        get("/authors?select=id&order=id")
            .json(ids(&[1, 2, 3, 4]))
            .header("content-type", JSON_CT)
            .header("content-range", "0-3/*"),
        get("/authors?select=id,name&id=eq.3")
            .json(json!([{"id": 3, "name": "Octavia E. Butler"}])),
        get("/authors?select=writer:name&id=eq.2").json(json!([{"writer": "Stanisław Lem"}])),
        get("/books?select=id,pages::text&id=eq.1").json(json!([{"id": 1, "pages": "304"}])),
        get("/books?select=id,cost:price::text&id=eq.1").json(json!([{"id": 1, "cost": "9.99"}])),
        get("/books?select=price&id=eq.2").json(json!([{"price": 12.50}])),
        get("/books?select=genres&id=eq.1").json(json!([{"genres": ["scifi", "classic"]}])),
        get("/books?select=published&id=eq.4").json(json!([{"published": false}])),
        get("/authors?select=bio&id=eq.3").json(json!([{"bio": null}])),
        get("/authors?select=born&id=eq.1").json(json!([{"born": "1929-10-21"}])),
        get("/authors?select=*&id=eq.4")
            .json(json!([{"id": 4, "name": "Nobody", "country": null, "bio": null, "born": null}])),
        get("/authors?id=eq.4")
            .json(json!([{"id": 4, "name": "Nobody", "country": null, "bio": null, "born": null}])),
        get("/authors?select=id,*&id=eq.4").ptr("/0/name", json!("Nobody")),
        get("/authors?select=bio->awards&id=eq.1").json(json!([{"awards": {"hugo": 5}}])),
        get("/authors?select=bio->awards->>hugo&id=eq.1").json(json!([{"hugo": "5"}])),
        get("/authors?select=bio->awards->hugo&id=eq.1").json(json!([{"hugo": 5}])),
        get("/authors?select=first_lang:bio->langs->>0&id=eq.2")
            .json(json!([{"first_lang": "pl"}])),
        get("/authors?select=second:bio->langs->1&id=eq.2")
            .json(json!([{"second": "en"}]))
            .named("json array index"),
        get("/authors?select=id&bio->awards->>hugo=eq.5").json(ids(&[1])),
        get("/authors?select=id&bio->>missing=is.null&order=id").json(ids(&[1, 2, 3, 4])),
        get("/authors?select=id&bio->awards->hugo=gt.1")
            .json(ids(&[1]))
            .named("jsonb comparison on -> path"),
        get("/authors?select=id&order=bio->awards->>hugo.desc.nullslast,id")
            .json(ids(&[1, 2, 3, 4])),
        get("/book_titles?select=id,title&id=eq.3").json(json!([{"id": 3, "title": "Solaris"}])),
        get("/us_authors?select=name&order=id")
            .json(json!([{"name": "Ursula K. Le Guin"}, {"name": "Octavia E. Butler"}])),
        get("/authors?select=id&id=eq.99")
            .json(json!([]))
            .header("content-range", "*/*"),
        get("/authors?select=%22name%22&id=eq.1")
            .json(json!([{"name": "Ursula K. Le Guin"}]))
            .named("quoted column name"),
        get("/books?select=released&id=eq.1")
            .json(json!([{"released": "[1969-01-01,1970-01-01)"}])),
        case("HEAD", "/authors?select=id")
            .text("")
            .header("content-range", "0-3/*"),
        case("HEAD", "/authors")
            .h("prefer", "count=exact")
            .header("content-range", "0-3/4"),
    ]
}

fn operators() -> Vec<Case> {
    let q = |f: &str| get(&format!("/books?select=id&order=id&{f}"));
    vec![
        q("id=eq.3").json(ids(&[3])),
        q("id=neq.3").json(ids(&[1, 2, 4, 5, 6])),
        q("pages=gt.300").json(ids(&[1, 2])),
        q("pages=gte.295").json(ids(&[1, 2, 4])),
        q("pages=lt.204").json(ids(&[6])),
        q("pages=lte.204").json(ids(&[3, 6])),
        q("title=like.*Dark*").json(ids(&[1])),
        q("title=like.The%20*").json(ids(&[1, 2, 4])),
        q("title=ilike.*dark*").json(ids(&[1])),
        q("title=match.^S").json(ids(&[3])),
        q("title=imatch.^s").json(ids(&[3])),
        q("id=in.(1,3,5)").json(ids(&[1, 3, 5])),
        q("id=in.()").json(ids(&[])),
        q("title=in.(Solaris,%22The%20Dispossessed%22)").json(ids(&[2, 3])),
        q("title=in.(%22a,b%22)")
            .json(ids(&[]))
            .named("quoted comma inside in"),
        q("price=is.null").json(ids(&[4])),
        q("price=not.is.null").json(ids(&[1, 2, 3, 5, 6])),
        q("price=is.not_null").json(ids(&[1, 2, 3, 5, 6])),
        q("published=is.true").json(ids(&[1, 2, 3, 5])),
        q("published=is.false").json(ids(&[4, 6])),
        q("published=is.unknown").json(ids(&[])),
        q("author_id=isdistinct.1").json(ids(&[3, 4, 5, 6])),
        q("genres=cs.{scifi}").json(ids(&[1, 2, 3, 4])),
        q("genres=cs.{scifi,classic}").json(ids(&[1])),
        q("genres=cd.{scifi,humor}").json(ids(&[3, 4, 6])),
        q("genres=ov.{utopia,historical}").json(ids(&[2, 5])),
        q("released=sl.[1975-01-01,1976-01-01)").json(ids(&[1, 2, 3])),
        q("released=sr.[1970-01-01,1971-01-01)").json(ids(&[2, 5])),
        q("released=nxr.[1970-01-01,1970-06-01)").json(ids(&[1, 3])),
        q("released=nxl.[1975-01-01,1976-01-01)").json(ids(&[5])),
        q("released=adj.[1970-01-01,1971-01-01)").json(ids(&[1])),
        q("released=cs.[1974-06-01,1974-06-02)")
            .json(ids(&[2]))
            .named("range contains range"),
        q("search=fts.planet").json(ids(&[1, 2, 3])),
        q("search=fts(english).planets").json(ids(&[1, 2, 3])),
        q("search=plfts.living%20ocean").json(ids(&[3])),
        q("search=phfts(english).living%20ocean").json(ids(&[3])),
        q("search=wfts(english).planet%20-winter").json(ids(&[2, 3])),
        q("summary=fts(english).robot")
            .json(ids(&[4]))
            .named("fts on a text column"),
        q("search=not.fts.planet").json(ids(&[4, 5, 6])),
        q("id=not.eq.1&id=not.eq.2").json(ids(&[3, 4, 5, 6])),
        q("id=not.in.(1,2,3)").json(ids(&[4, 5, 6])),
        q("title=like(any).{*Dark*,Sol*}").json(ids(&[1, 3])),
        q("title=like(all).{The*,*Dis*}").json(ids(&[2])),
        q("id=eq(any).{2,4}").json(ids(&[2, 4])),
        q("id=gt(all).{1,4}").json(ids(&[5, 6])),
        q("title=ilike(any).{*SOL*,*kindred*}").json(ids(&[3, 5])),
        q("pages=gt.200&pages=lt.300").json(ids(&[3, 4, 5])),
        q("title=eq.Solaris&title=eq.Kindred").json(ids(&[])),
        q("title=eq.The%20Cyberiad").json(ids(&[4])),
        q("title=eq.a%2Cb")
            .json(ids(&[]))
            .named("encoded comma in a value"),
        q("price=gte.9.99").json(ids(&[1, 2, 5])),
        q("id=bogus.1").status(400).code("PGRST100"),
        q("id=eq").status(400).code("PGRST100"),
        q("id=is.maybe").status(400).code("PGRST100"),
        q("id=gt(any).3").status(400).code("PGRST100"),
        q("id=eq.notanumber").status(400).code("22P02"),
        q("nope=eq.1").status(400).code("42703"),
    ]
}

fn logic_and_order() -> Vec<Case> {
    let q = |f: &str| get(&format!("/books?select=id&order=id&{f}"));
    vec![
        q("or=(id.eq.1,id.eq.3)").json(ids(&[1, 3])),
        q("or=(pages.gt.300,price.is.null)").json(ids(&[1, 2, 4])),
        q("and=(pages.gt.200,pages.lt.300)").json(ids(&[3, 4, 5])),
        q("or=(id.eq.6,and(pages.gt.300,price.lt.10))").json(ids(&[1, 6])),
        q("not.or=(id.eq.1,id.eq.2)").json(ids(&[3, 4, 5, 6])),
        q("not.and=(published.is.true,pages.gt.250)").json(ids(&[3, 4, 6])),
        q("or=(id.eq.1,not.and(id.gt.2,id.lt.6))").json(ids(&[1, 2, 6])),
        q("or=(title.eq.%22The%20Dispossessed%22,title.in.(Solaris,%22x,y%22))").json(ids(&[2, 3])),
        q("or=(id.not.eq.1,id.eq.1)").json(ids(&[1, 2, 3, 4, 5, 6])),
        q("or=(genres.cs.{utopia},genres.cs.{humor})").json(ids(&[2, 4])),
        q("or=(title.like.*Dark*,title.ilike.*KIN*)").json(ids(&[1, 5])),
        q("or=(search.fts.robot,id.eq.6)").json(ids(&[4, 6])),
        q("or=(id.eq(any).{1,2},id.eq.6)").json(ids(&[1, 2, 6])),
        q("or=(id.eq.1,id.eq.2)&or=(id.eq.2,id.eq.3)").json(ids(&[2])),
        q("or=id.eq.1").status(400).code("PGRST100"),
        q("or=(id.eq.1").status(400).code("PGRST100"),
        q("or=(id.zz.1)").status(400).code("PGRST100"),
        get("/books?select=id&order=pages.desc").json(ids(&[2, 1, 4, 5, 3, 6])),
        get("/books?select=id&order=price.desc&limit=2")
            .json(ids(&[4, 2]))
            .named("nulls first on desc by default"),
        get("/books?select=id&order=price.desc.nullslast&limit=2").json(ids(&[2, 5])),
        get("/books?select=id&order=price.asc.nullsfirst&limit=2").json(ids(&[4, 6])),
        get("/books?select=id&order=price.nullsfirst&limit=1").json(ids(&[4])),
        get("/books?select=id&order=published,id.desc").json(ids(&[6, 4, 5, 3, 2, 1])),
        get("/books?select=id&order=author_id.desc.nullslast,pages").json(ids(&[5, 3, 4, 1, 2, 6])),
        get("/books?select=id&order=id.sideways")
            .status(400)
            .code("PGRST100"),
        get("/books?select=id&order=nope").status(400).code("42703"),
    ]
}

fn embedding() -> Vec<Case> {
    vec![
        get("/books?select=title,authors(name)&id=eq.1").json(json!([{"title": "The Left Hand of Darkness", "authors": {"name": "Ursula K. Le Guin"}}])),
        get("/books?select=title,author:authors(name)&id=eq.3").json(json!([{"title": "Solaris", "author": {"name": "Stanisław Lem"}}])),
        get("/books?select=id,authors(name)&id=eq.6").json(json!([{"id": 6, "authors": null}])),
        get("/books?select=id,author_id(name)&id=eq.5").json(json!([{"id": 5, "author_id": {"name": "Octavia E. Butler"}}])).named("embed by fk column"),
        get("/books?select=id,writer:books_author_id_fkey(name)&id=eq.5").json(json!([{"id": 5, "writer": {"name": "Octavia E. Butler"}}])).named("embed by constraint"),
        get("/books?select=id,authors!books_author_id_fkey(id)&id=eq.2").json(json!([{"id": 2, "authors": {"id": 1}}])),
        get("/books?select=id,authors!author_id(id)&id=eq.2").json(json!([{"id": 2, "authors": {"id": 1}}])),
        get("/authors?select=name,books(title)&id=eq.2&books.order=id").json(json!([{"name": "Stanisław Lem", "books": [{"title": "Solaris"}, {"title": "The Cyberiad"}]}])),
        get("/authors?select=id,books(id)&id=eq.4").json(json!([{"id": 4, "books": []}])),
        get("/authors?select=id,books(id)&order=id&books.order=id.desc&books.limit=1").json(json!([{"id": 1, "books": [{"id": 2}]}, {"id": 2, "books": [{"id": 4}]}, {"id": 3, "books": [{"id": 5}]}, {"id": 4, "books": []}])),
        get("/authors?select=id,books(id)&id=eq.1&books.order=id&books.offset=1").json(json!([{"id": 1, "books": [{"id": 2}]}])),
        get("/authors?select=id,books(id)&id=eq.1&books.pages=gt.300&books.price=gt.10").json(json!([{"id": 1, "books": [{"id": 2}]}])),
        get("/authors?select=id,books(id)&order=id&books.or=(id.eq.3,id.eq.5)").json(json!([{"id": 1, "books": []}, {"id": 2, "books": [{"id": 3}]}, {"id": 3, "books": [{"id": 5}]}, {"id": 4, "books": []}])),
        get("/authors?select=id,books!inner(id)&order=id&books.published=is.false").json(json!([{"id": 2, "books": [{"id": 4}]}])),
        get("/authors?select=id,books!inner(id)&order=id").ptr("/3", Value::Null).ptr("/2/id", json!(3)),
        get("/books?select=id,authors!inner(country)&authors.country=eq.PL&order=id").json(json!([{"id": 3, "authors": {"country": "PL"}}, {"id": 4, "authors": {"country": "PL"}}])),
        get("/books?select=id,authors(country)&authors.country=eq.PL&order=id&limit=2").json(json!([{"id": 1, "authors": null}, {"id": 2, "authors": null}])).named("embedded filter without inner keeps parents"),
        get("/books?select=id,authors!left(id)&id=eq.6").json(json!([{"id": 6, "authors": null}])),
        // Embeds joined after the page of rows is chosen (offset, a sort on a plain column, nested).
        get("/books?select=id,authors(name)&order=pages.desc&limit=2&offset=1").json(json!([{"id": 1, "authors": {"name": "Ursula K. Le Guin"}}, {"id": 4, "authors": {"name": "Stanisław Lem"}}])).named("to-one embed after offset and sort"),
        get("/authors?select=id,books(id)&order=id&limit=2&offset=1&books.order=id").json(json!([{"id": 2, "books": [{"id": 3}, {"id": 4}]}, {"id": 3, "books": [{"id": 5}]}])).named("to-many embed after offset"),
        get("/authors?select=id,books(id,authors(id))&id=eq.2&books.order=id&books.limit=1&books.offset=1").json(json!([{"id": 2, "books": [{"id": 4, "authors": {"id": 2}}]}])).named("nested embed after a nested offset"),
        get("/books?select=id,authors!inner(country)&authors.country=eq.PL&order=id&limit=1&offset=1").json(json!([{"id": 4, "authors": {"country": "PL"}}])).named("inner embed filters before offset"),
        get("/books?select=id,authors(id)&authors=not.is.null&order=id.desc&limit=1&offset=1").json(json!([{"id": 4, "authors": {"id": 2}}])).named("null filter on embed before offset"),
        get("/books?select=id,writer:authors!inner(name)&writer.country=eq.PL&order=id").json(json!([{"id": 3, "writer": {"name": "Stanisław Lem"}}, {"id": 4, "writer": {"name": "Stanisław Lem"}}])).named("filter on an aliased embed"),
        get("/rpc/books_by?author=1&select=id,authors(name)&order=id").json(json!([{"id": 1, "authors": {"name": "Ursula K. Le Guin"}}, {"id": 2, "authors": {"name": "Ursula K. Le Guin"}}])).named("embed from rpc rows"),
        get("/authors?select=id,books(id)&books.id=eq.3&order=id&limit=2").json(json!([{"id": 1, "books": []}, {"id": 2, "books": [{"id": 3}]}])).named("embed filter without inner keeps parents"),
        get("/events?select=at")
            .h("prefer", "timezone=America/New_York")
            .json(json!([{"at": "2024-01-01T07:00:00-05:00"}]))
            .header("preference-applied", "timezone=America/New_York"),
        get("/events?select=at").json(json!([{"at": "2024-01-01T12:00:00+00:00"}])).named("time zone is per request"),
        get("/events?select=at")
            .h("prefer", "timezone=Mars/Olympus")
            .json(json!([{"at": "2024-01-01T12:00:00+00:00"}]))
            .header("preference-applied", "handling=lenient"),
        get("/events?select=at")
            .h("prefer", "handling=strict, timezone=Mars/Olympus")
            .status(400)
            .code("PGRST122")
            .ptr("/details", json!("Invalid preferences: timezone=Mars/Olympus")),
        // Computed fields: functions of the row, selected, filtered and ordered by name; never in `*`.
        get("/authors?select=id,display_name&id=in.(1,4)&order=id").json(json!([{"id": 1, "display_name": "Ursula K. Le Guin (US)"}, {"id": 4, "display_name": "Nobody"}])).named("computed field in select"),
        get("/authors?select=id&display_name=like.*(PL)").json(json!([{"id": 2}])).named("filter on a computed field"),
        get("/authors?select=id&order=display_name.desc&limit=2").json(json!([{"id": 1}, {"id": 2}])).named("order by a computed field"),
        get("/authors?select=*,display_name&id=eq.4").json(json!([{"id": 4, "name": "Nobody", "country": null, "bio": null, "born": null, "display_name": "Nobody"}])).named("star leaves computed fields out"),
        get("/books?select=id,display_name&id=eq.3").json(json!([{"id": 3, "display_name": "SOLARIS"}])).named("computed field overloaded per relation"),
        get("/books?select=id&title_words=fts(english).darkness").json(json!([{"id": 1}])).named("fts on a computed tsvector"),
        get("/books?select=id,authors(display_name)&id=eq.3").json(json!([{"id": 3, "authors": {"display_name": "Stanisław Lem (PL)"}}])).named("computed field of an embed"),
        get("/authors?select=id,display_name,books(id)&order=id&limit=1&offset=1&books.order=id").json(json!([{"id": 2, "display_name": "Stanisław Lem (PL)", "books": [{"id": 3}, {"id": 4}]}])).named("computed field with embeds after an offset"),
        get("/rpc/books_by?author=2&select=id,display_name,title_words&title_words=fts.cyberiad").json(json!([{"id": 4, "display_name": "THE CYBERIAD", "title_words": "'cyberiad':2"}])).named("computed field on rpc rows"),
        // Computed relationships: functions from a row to rows of a relation.
        get("/authors?select=id,top_book(title)&order=id").json(json!([{"id": 1, "top_book": {"title": "The Dispossessed"}}, {"id": 2, "top_book": {"title": "The Cyberiad"}}, {"id": 3, "top_book": {"title": "Kindred"}}, {"id": 4, "top_book": null}])).named("computed to-one (ROWS 1)"),
        get("/authors?select=id,long_books(id)&id=in.(1,2)&order=id&long_books.order=id.desc").json(json!([{"id": 1, "long_books": [{"id": 2}, {"id": 1}]}, {"id": 2, "long_books": [{"id": 4}]}])).named("computed to-many with order"),
        get("/authors?select=id,long_books!inner(id)&long_books.pages=gt.300&long_books.order=id.desc&order=id").json(json!([{"id": 1, "long_books": [{"id": 2}, {"id": 1}]}])).named("computed inner embed"),
        get("/authors?select=id,...top_book(pages)&id=eq.3").json(json!([{"id": 3, "pages": 264}])).named("spread of a computed to-one"),
        get("/tags?select=name,first_author(name,display_name)&id=eq.3").json(json!([{"name": "favourite", "first_author": {"name": "Octavia E. Butler", "display_name": "Octavia E. Butler (US)"}}])).named("computed relationship returning one row"),
        get("/shelves?select=shelf_books(title)").json(json!([{"shelf_books": [{"title": "shown"}]}])).named("computed relationship replaces the key"),
        get("/shelves?select=shelf_books!shelf_books_shelf_id_fkey(title)&shelf_books.order=id").json(json!([{"shelf_books": [{"title": "shown"}]}])).named("a computed relationship replaces the key even with a hint (PostgREST 13)"),
        get("/authors?select=id,books()&books.id=eq.3").ptr("/0/id", json!(1)).ptr("/0/books", Value::Null).named("empty embed has no key"),
        get("/authors?select=id,books()&books=not.is.null&books.id=eq.3").json(ids(&[2])),
        get("/authors?select=id,books(id)&books=is.null").json(json!([{"id": 4, "books": []}])),
        get("/authors?select=id,books(id)&books=eq.1").status(400).code("PGRST120"),
        get("/books?select=id,tags(name)&id=eq.1&tags.order=id").json(json!([{"id": 1, "tags": [{"name": "classic"}, {"name": "award"}]}])).named("many-to-many"),
        get("/tags?select=name,books(id)&id=eq.2&books.order=id").json(json!([{"name": "award", "books": [{"id": 1}, {"id": 2}]}])),
        get("/books?select=id,tags!book_tags(name)&id=eq.5").json(json!([{"id": 5, "tags": [{"name": "favourite"}]}])),
        get("/books?select=id,tags!inner(name)&tags.name=eq.classic&order=id").json(json!([{"id": 1, "tags": [{"name": "classic"}]}, {"id": 3, "tags": [{"name": "classic"}]}])),
        get("/books?select=id,book_tags(tag_id)&id=eq.1&book_tags.order=tag_id").json(json!([{"id": 1, "book_tags": [{"tag_id": 1}, {"tag_id": 2}]}])),
        get("/book_tags?select=books(id),tags(name)&book_id=eq.5").json(json!([{"books": {"id": 5}, "tags": {"name": "favourite"}}])),
        get("/authors?select=name,books(title,tags(name))&id=eq.3").json(json!([{"name": "Octavia E. Butler", "books": [{"title": "Kindred", "tags": [{"name": "favourite"}]}]}])).named("nested embed"),
        get("/authors?select=id,books(id,tags(id))&id=eq.1&books.order=id&books.tags.order=id.desc").json(json!([{"id": 1, "books": [{"id": 1, "tags": [{"id": 2}, {"id": 1}]}, {"id": 2, "tags": [{"id": 2}]}]}])).named("nested order"),
        get("/tags?select=id,books(authors(name))&id=eq.3").json(json!([{"id": 3, "books": [{"authors": {"name": "Octavia E. Butler"}}]}])),
        get("/books?select=title,...authors(name,country)&id=eq.3").json(json!([{"title": "Solaris", "name": "Stanisław Lem", "country": "PL"}])).named("spread"),
        get("/books?select=id,...authors(writer:name)&id=eq.6").json(json!([{"id": 6, "writer": null}])),
        get("/authors?select=name,...books(titles:title,pages)&id=in.(1,4)&order=id&books.order=id.desc").json(json!([
            {"name": "Ursula K. Le Guin", "titles": ["The Dispossessed", "The Left Hand of Darkness"], "pages": [387, 304]},
            {"name": "Nobody", "titles": [], "pages": []}])).named("spread on to-many (PostgREST 13)"),
        get("/books?select=title,...tags(tags:name)&id=eq.1&tags.order=id").json(json!([{"title": "The Left Hand of Darkness", "tags": ["classic", "award"]}])).named("spread on many-to-many"),
        get("/employees?select=name,manager:manager_id(name)&id=eq.4").json(json!([{"name": "Di", "manager": {"name": "Bob"}}])).named("self-reference: the key column embeds the parent"),
        get("/employees?select=name,employees(name)&id=eq.1&employees.order=id").json(json!([{"name": "Ada", "employees": [{"name": "Bob"}, {"name": "Cy"}]}])).named("self-reference: the table's name embeds the children"),
        get("/orders?select=name,addresses(line)").status(300).code("PGRST201")
            .ptr("/details/0/cardinality", json!("many-to-one"))
            .ptr("/hint", json!("Try changing 'addresses' to one of the following: 'addresses!billing', 'addresses!shipping'. Find the desired relationship in the 'details' key.")),
        get("/orders?select=name,billing:addresses!billing(line),shipping:addresses!shipping(line)").json(json!([{"name": "Lamp", "billing": {"line": "Billing St 1"}, "shipping": {"line": "Shipping Rd 2"}}])),
        get("/addresses?select=id,billed:orders!billing(name)&order=id").json(json!([{"id": 1, "billed": [{"name": "Lamp"}]}, {"id": 2, "billed": []}])),
        get("/books?select=id,tags(id)&id=eq.1&tags.id=eq.2").json(json!([{"id": 1, "tags": [{"id": 2}]}])),
        get("/books?select=id,nope(id)").status(400).code("PGRST200").ptr("/message", json!("Could not find a relationship between 'books' and 'nope' in the schema cache")),
        get("/books?select=id,employees(id)").status(400).code("PGRST200"),
        get("/books?select=id&authors.name=eq.x").status(400).code("PGRST108"),
        get("/book_titles?select=title,authors(name)&id=eq.5").json(json!([{"title": "Kindred", "authors": {"name": "Octavia E. Butler"}}])).named("view to table"),
        get("/us_authors?select=name,books(id)&id=eq.3").json(json!([{"name": "Octavia E. Butler", "books": [{"id": 5}]}])).named("view one-to-many"),
        get("/authors?select=id,book_titles(id)&id=eq.2&book_titles.order=id").json(json!([{"id": 2, "book_titles": [{"id": 3}, {"id": 4}]}])),
        get("/books?select=id,authors(name)&order=authors(name).desc.nullslast,id&limit=3").json(json!([{"id": 1, "authors": {"name": "Ursula K. Le Guin"}}, {"id": 2, "authors": {"name": "Ursula K. Le Guin"}}, {"id": 3, "authors": {"name": "Stanisław Lem"}}])).named("order by a to-one embed"),
        get("/authors?select=id,books(id)&order=books(id)").status(400).code("PGRST118"),
        get("/books?select=id,authors(name)&or=(authors.is.null,id.eq.1)&order=id").json(json!([{"id": 1, "authors": {"name": "Ursula K. Le Guin"}}, {"id": 6, "authors": null}])),
        get("/books?select=id,authors(*)&id=eq.5").ptr("/0/authors/born", json!("1947-06-22")),
        get("/books?select=id,authors(id,nope)").status(400).code("42703"),
    ]
}

fn pagination_and_count() -> Vec<Case> {
    vec![
        get("/books?select=id&order=id&limit=2")
            .json(ids(&[1, 2]))
            .header("content-range", "0-1/*"),
        get("/books?select=id&order=id&limit=2&offset=2")
            .json(ids(&[3, 4]))
            .header("content-range", "2-3/*"),
        get("/books?select=id&order=id&offset=5")
            .json(ids(&[6]))
            .header("content-range", "5-5/*"),
        get("/books?select=id&order=id&limit=0")
            .json(ids(&[]))
            .header("content-range", "*/*"),
        get("/books?select=id&order=id&limit=-1")
            .status(400)
            .code("PGRST100"),
        get("/books?select=id&order=id&limit=x")
            .status(400)
            .code("PGRST100"),
        get("/books?select=id&order=id")
            .h("range", "0-1")
            .json(ids(&[1, 2]))
            .header("content-range", "0-1/*"),
        get("/books?select=id&order=id")
            .h("range", "2-3")
            .h("range-unit", "items")
            .json(ids(&[3, 4])),
        get("/books?select=id&order=id")
            .h("range", "4-")
            .json(ids(&[5, 6]))
            .header("content-range", "4-5/*"),
        get("/books?select=id&order=id&limit=1")
            .h("range", "1-4")
            .json(ids(&[2])),
        get("/books?select=id&order=id")
            .h("prefer", "count=exact")
            .status(200)
            .header("content-range", "0-5/6")
            .header("preference-applied", "count=exact"),
        get("/books?select=id&order=id&limit=2")
            .h("prefer", "count=exact")
            .status(206)
            .header("content-range", "0-1/6"),
        get("/books?select=id&order=id&limit=2&offset=4")
            .h("prefer", "count=exact")
            .status(206)
            .header("content-range", "4-5/6"),
        get("/books?select=id&published=is.true&limit=1")
            .h("prefer", "count=exact")
            .status(206)
            .header("content-range", "0-0/4"),
        get("/books?select=id&id=eq.99")
            .h("prefer", "count=exact")
            .json(json!([]))
            .header("content-range", "*/0"),
        get("/books?select=id&order=id&offset=10")
            .h("prefer", "count=exact")
            .status(416)
            .code("PGRST103"),
        get("/books?select=id&id=eq.1")
            .h("prefer", "count=planned")
            .header("preference-applied", "count=planned")
            .header("content-range", "0-0/1")
            .named("planned count of a primary-key lookup (a unique index: one row)"),
        get("/books?select=id")
            .h("prefer", "count=estimated")
            .header("content-range", "0-5/6"),
        get("/authors?select=id,books!inner(id)&books.published=is.false")
            .h("prefer", "count=exact")
            .header("content-range", "0-0/1")
            .named("count respects inner embeds"),
        case("HEAD", "/books?published=is.false")
            .h("prefer", "count=exact")
            .text("")
            .header("content-range", "0-1/2"),
    ]
}

fn media_and_errors() -> Vec<Case> {
    vec![
        get("/authors?select=id,name&id=eq.1")
            .h("accept", "application/vnd.pgrst.object+json")
            .json(json!({"id": 1, "name": "Ursula K. Le Guin"}))
            .header(
                "content-type",
                "application/vnd.pgrst.object+json; charset=utf-8",
            ),
        get("/authors?select=id&id=eq.99")
            .h("accept", "application/vnd.pgrst.object+json")
            .status(406)
            .code("PGRST116")
            .ptr("/details", json!("The result contains 0 rows")),
        get("/authors?select=id")
            .h("accept", "application/vnd.pgrst.object+json")
            .status(406)
            .code("PGRST116")
            .ptr("/details", json!("The result contains 4 rows")),
        get("/kv?select=k,v&order=k")
            .h("accept", "text/csv")
            .text("k,v\na,1\nb,2")
            .header("content-type", "text/csv; charset=utf-8"),
        get("/books?select=id,title&id=eq.2")
            .h("accept", "text/csv")
            .text("id,title\n2,\"The Dispossessed\""),
        get("/kv?select=k&k=eq.zz").h("accept", "text/csv").text(""),
        get("/authors")
            .h("accept", "text/xml")
            .status(406)
            .code("PGRST107"),
        get("/authors?select=id&id=eq.1")
            .h("accept", "application/json, text/csv")
            .json(ids(&[1])),
        get("/authors?select=id&id=eq.1")
            .h("accept", "*/*")
            .json(ids(&[1])),
        get("/nope").status(404).code("PGRST205").ptr(
            "/message",
            json!("Could not find the table 'public.nope' in the schema cache"),
        ),
        get("/authors?select=id")
            .h("accept-profile", "private")
            .status(406)
            .code("PGRST106")
            .ptr(
                "/message",
                json!("The schema must be one of the following: public"),
            ),
        get("/authors?select=id&id=eq.1")
            .h("accept-profile", "public")
            .json(ids(&[1])),
        get("/a/b").status(404).code("PGRST125"),
        get("/authors?select=id,name,").status(400).code("PGRST100"),
        get("/authors?select=id,books(id")
            .status(400)
            .code("PGRST100"),
        get("/authors?select=na%22me").status(400).code("PGRST100"),
        get("/authors?select=id::te;xt")
            .status(400)
            .code("PGRST100"),
        get("/authors?select=id.sum()")
            .status(400)
            .code("PGRST123")
            .named("aggregates disabled by default"),
        get("/authors?select=count()").status(400).code("PGRST123"),
        case("TRACE", "/authors").status(405).code("PGRST117"),
        get("/authors?select=id")
            .h("prefer", "handling=strict, bogus=1")
            .status(400)
            .code("PGRST122"),
        get("/authors?select=id&id=eq.1")
            .h("prefer", "handling=lenient, bogus=1")
            .json(ids(&[1]))
            .header("preference-applied", "handling=lenient"),
        get("/authors?select=nope")
            .status(400)
            .code("42703")
            .ptr("/message", json!("column authors.nope does not exist"))
            .header("proxy-status", "PostgREST; error=42703"),
        get("/")
            .ptr("/swagger", json!("2.0"))
            .ptr("/definitions/authors/properties/id/type", json!("integer"))
            .ptr(
                "/definitions/authors/description",
                json!("People who write books"),
            )
            .header("content-type", "application/openapi+json; charset=utf-8"),
        get("/")
            .ptr("/paths/~1rpc~1add_them/get/parameters/0/name", json!("a"))
            .ptr("/definitions/books/properties/genres/type", json!("array")),
        get("/")
            .ptr("/definitions/books/required", json!(["id", "title"]))
            .ptr(
                "/paths/~1books/post/responses/201/description",
                json!("Created"),
            ),
    ]
}

fn rpc() -> Vec<Case> {
    vec![
        post("/rpc/add_them", r#"{"a": 1, "b": 2}"#).text("3").header("content-type", JSON_CT),
        get("/rpc/add_them?a=4&b=5").text("9"),
        get("/rpc/add_them?a=4").status(404).code("PGRST202").ptr("/message", json!("Could not find the function public.add_them(a) in the schema cache")),
        post("/rpc/nope", "{}").status(404).code("PGRST202").ptr("/message", json!("Could not find the function public.nope without parameters in the schema cache")),
        post("/rpc/add_them", r#"{"a": 1, "c": 2}"#).status(404).code("PGRST202"),
        post("/rpc/add_them", r#"{"a": "x", "b": 2}"#).status(400).code("22P02"),
        post("/rpc/add_them", r#"{"a": 1,"#).status(400).code("PGRST102"),
        post("/rpc/books_by", r#"{"author": 2}"#).ptr("/0/id", json!(3)).ptr("/1/title", json!("The Cyberiad")),
        get("/rpc/books_by?author=1&select=id,title").json(json!([{"id": 1, "title": "The Left Hand of Darkness"}, {"id": 2, "title": "The Dispossessed"}])),
        get("/rpc/books_by?author=1&select=id&id=gt.1").json(ids(&[2])).named("filter on rpc result"),
        get("/rpc/books_by?author=1&select=id&order=id.desc&limit=1").json(ids(&[2])),
        get("/rpc/books_by?author=1&select=id,authors(name)&limit=1").json(json!([{"id": 1, "authors": {"name": "Ursula K. Le Guin"}}])).named("embed on rpc result"),
        get("/rpc/books_by?author=2&select=id").h("prefer", "count=exact").header("content-range", "0-1/2"),
        get("/rpc/books_by?author=1&select=id&id=eq.1").h("accept", "application/vnd.pgrst.object+json").json(json!({"id": 1})),
        get("/rpc/book_count").text("6"),
        post("/rpc/book_count", "").text("6").named("empty body is no arguments"),
        post("/rpc/noop", "{}").status(204).text("").no_header("content-type"),
        post("/rpc/echo_json", r#"{"x": [1, 2]}"#).json(json!({"x": [1, 2]})).named("single unnamed json parameter"),
        post("/rpc/sum_json", r#"{"a": 2, "b": 3}"#).h("prefer", "params=single-object").text("5"),
        post("/rpc/sum_all", r#"{"nums": [1, 2, 3]}"#).text("6").named("variadic by post"),
        get("/rpc/sum_all?nums=1&nums=2&nums=4").text("7").named("variadic by repeated get"),
        get("/rpc/sum_all?nums=5").text("5"),
        post("/rpc/overloaded", r#"{"a": 1}"#).json(json!("one 1")),
        post("/rpc/overloaded", r#"{"a": 1, "b": 2}"#).json(json!("two 3")),
        post("/rpc/ambiguous", r#"{"x": 1}"#).status(300).code("PGRST203"),
        post("/rpc/get_author", r#"{"aid": 3}"#).json(json!({"id": 3, "name": "Octavia E. Butler", "country": "US", "bio": null, "born": "1947-06-22"})).named("single composite is an object"),
        post("/rpc/with_default", r#"{"a": 1}"#).text("11"),
        post("/rpc/with_default", r#"{"a": 1, "b": 1}"#).text("2"),
        get("/rpc/genre_list").json(json!(["classic", "historical", "humor", "scifi", "utopia"])).named("setof scalar"),
        get("/rpc/search_books?q=the&select=title&order=id.desc&limit=1").json(json!([{"title": "The Cyberiad"}])).named("returns table"),
        post("/rpc/search_books", r#"{"q": "sol"}"#).json(json!([{"id": 3, "title": "Solaris"}])),
        post("/rpc/arr_len", r#"{"items": [4, 5, 6]}"#).text("3"),
        get("/rpc/arr_len?items={4,5}").text("2"),
        post("/rpc/payment_required", "{}").status(402).code("PT402").ptr("/details", json!("Quota exceeded")).ptr("/hint", json!("Upgrade your plan")),
        post("/rpc/custom_error", "{}").status(418).json(json!({"code": "123", "message": "Teapot", "details": "short and stout", "hint": "pour"})).header("x-powered-by", "Nerd Rage"),
        post("/rpc/just_fail", "{}").status(400).json(json!({"code": "P0001", "message": "I refuse!", "details": "Pretty simple", "hint": "There is nothing you can do."})),
        post("/rpc/set_response", "{}").status(202).text("1").header("x-custom", "yes").header("cache-control", "no-store"),
        post("/rpc/request_info", "{}").h("x-test-header", "hello").h("cookie", "flavour=choc; size=big").role("authenticated").claims(json!({"sub": ALICE}))
            .json(json!({"method": "POST", "path": "/rpc/request_info", "agent": "hello", "cookie": "choc", "role": "authenticated", "sub": ALICE})),
        get("/rpc/request_info").role("anon").ptr("/method", json!("GET")).ptr("/role", json!("anon")),
        get("/rpc/add_note?body=x").status(405).code("25006").named("get runs read-only"),
        case("PUT", "/rpc/add_them").body("{}").status(405).code("PGRST101"),
        post("/rpc/add_them", r#"{"a": 1, "b": 2}"#).h("content-profile", "nope").status(406).code("PGRST106"),
    ]
}

fn writes() -> Vec<Case> {
    vec![
        post("/kv", r#"{"k": "c", "v": "3"}"#)
            .status(201)
            .text("")
            .header("content-range", "*/*")
            .no_header("content-type"),
        post("/kv", r#"{"k": "d", "v": "4"}"#)
            .h("prefer", "return=representation")
            .status(201)
            .json(json!([{"k": "d", "v": "4"}]))
            .header("preference-applied", "return=representation"),
        post(
            "/kv?select=k",
            r#"[{"k": "e", "v": "5"}, {"k": "f", "v": "6"}]"#,
        )
        .h("prefer", "return=representation")
        .status(201)
        .json(json!([{"k": "e"}, {"k": "f"}])),
        post("/kv", r#"{"k": "g", "v": "7"}"#)
            .h("prefer", "return=headers-only")
            .status(201)
            .header("location", "/kv?k=eq.g")
            .text(""),
        post("/kv", r#"{"k": "a", "v": "dup"}"#)
            .status(409)
            .code("23505"),
        post("/kv", r#"[{"k": "h"}, {"k": "i", "v": "9"}]"#)
            .status(400)
            .code("PGRST102")
            .ptr("/message", json!("All object keys must match")),
        post(
            "/kv?columns=k,v",
            r#"[{"k": "h"}, {"k": "i", "v": "9", "extra": 1}]"#,
        )
        .h("prefer", "return=representation")
        .status(201)
        .json(json!([{"k": "h", "v": null}, {"k": "i", "v": "9"}]))
        .named("columns= ignores other keys"),
        post("/kv?columns=%22k%22,%22v%22", r#"{"k": "j", "v": "10"}"#)
            .status(201)
            .named("quoted columns from supabase-py"),
        post("/kv", r#"{"k": "z", "nope": 1}"#)
            .status(400)
            .code("PGRST204")
            .ptr(
                "/message",
                json!("Could not find the 'nope' column of 'kv' in the schema cache"),
            ),
        post("/kv", "not json").status(400).code("PGRST102"),
        post("/kv", "42").status(400).code("PGRST102"),
        post("/kv", "[]")
            .h("prefer", "return=representation")
            .status(201)
            .json(json!([])),
        post(
            "/notes?columns=body,rating",
            r#"[{"body": "x"}, {"body": "y", "rating": 1}]"#,
        )
        .h("prefer", "return=representation,missing=default")
        .status(201)
        .ptr("/0/rating", json!(3))
        .ptr("/1/rating", json!(1))
        .header(
            "preference-applied",
            "missing=default, return=representation",
        ),
        post("/notes?select=body,rating", r#"{}"#)
            .h("prefer", "return=representation")
            .status(201)
            .json(json!([{"body": "empty", "rating": 3}]))
            .named("empty object inserts defaults"),
        post("/kv", r#"{"k": "a", "v": "merged"}"#)
            .h(
                "prefer",
                "resolution=merge-duplicates,return=representation",
            )
            .status(200)
            .json(json!([{"k": "a", "v": "merged"}]))
            .named("an upsert that only updates is 200"),
        post(
            "/kv",
            r#"[{"k": "a", "v": "ignored"}, {"k": "k", "v": "11"}]"#,
        )
        .h(
            "prefer",
            "resolution=ignore-duplicates,return=representation",
        )
        .status(201)
        .json(json!([{"k": "k", "v": "11"}])),
        post("/tags?on_conflict=name", r#"{"id": 2, "name": "award"}"#)
            .h(
                "prefer",
                "resolution=merge-duplicates,return=representation",
            )
            .status(200)
            .json(json!([{"id": 2, "name": "award"}])),
        post(
            "/tags?on_conflict=name&select=id",
            r#"{"id": 9, "name": "award"}"#,
        )
        .h(
            "prefer",
            "resolution=ignore-duplicates,return=representation",
        )
        .status(201)
        .json(json!([])),
        post("/tags?on_conflict=nope", r#"{"id": 9, "name": "award"}"#)
            .h("prefer", "resolution=merge-duplicates")
            .status(400)
            .code("PGRST204"),
        post("/kv", "k,v\nl,12\nm,\"1,3\"\nn,NULL\n")
            .h("content-type", "text/csv")
            .h("prefer", "return=representation")
            .status(201)
            .json(json!([{"k": "l", "v": "12"}, {"k": "m", "v": "1,3"}, {"k": "n", "v": null}]))
            .named("csv input"),
        post("/kv?select=k,v", r#"{"k": "o", "v": "x,y"}"#)
            .h("prefer", "return=representation")
            .h("accept", "text/csv")
            .status(201)
            .text("k,v\no,\"x,y\""),
        post("/kv", r#"{"k": "p", "v": "1"}"#)
            .h("prefer", "return=representation")
            .h("accept", "application/vnd.pgrst.object+json")
            .status(201)
            .json(json!({"k": "p", "v": "1"})),
        post("/kv", r#"[{"k": "q"}, {"k": "r"}]"#)
            .h("prefer", "return=representation")
            .h("accept", "application/vnd.pgrst.object+json")
            .status(406)
            .code("PGRST116"),
        get("/kv?k=in.(q,r)")
            .json(json!([]))
            .named("singular write rolled back"),
        case("PATCH", "/kv?k=eq.b")
            .body(r#"{"v": "two"}"#)
            .status(204)
            .text("")
            .header("content-range", "0-0/*"),
        case("PATCH", "/kv?k=eq.b")
            .body(r#"{"v": "deux"}"#)
            .h("prefer", "return=representation")
            .json(json!([{"k": "b", "v": "deux"}])),
        case("PATCH", "/kv?select=v&k=in.(c,d)")
            .body(r#"{"v": "many"}"#)
            .h("prefer", "return=representation")
            .json(json!([{"v": "many"}, {"v": "many"}])),
        case("PATCH", "/kv?k=eq.none")
            .body(r#"{"v": "x"}"#)
            .h("prefer", "return=representation")
            .json(json!([])),
        case("PATCH", "/kv?k=eq.b")
            .body(r#"{"nope": "x"}"#)
            .status(400)
            .code("PGRST204"),
        case("PATCH", "/kv?k=in.(c,d)")
            .body(r#"{"v": "x"}"#)
            .h("accept", "application/vnd.pgrst.object+json")
            .h("prefer", "return=representation")
            .status(406)
            .code("PGRST116"),
        get("/kv?select=v&k=eq.c")
            .json(json!([{"v": "many"}]))
            .named("singular patch rolled back"),
        // `max-affected` under strict handling: more rows than allowed roll the write back.
        case("PATCH", "/kv?k=in.(c,d)")
            .body(r#"{"v": "capped"}"#)
            .h("prefer", "handling=strict, max-affected=1")
            .status(400)
            .json(json!({"code": "PGRST124", "message": "Query result exceeds max-affected preference constraint", "details": "The query affects 2 rows", "hint": null})),
        case("DELETE", "/kv?k=in.(c,d)")
            .h("prefer", "handling=strict, max-affected=0, return=representation")
            .status(400)
            .code("PGRST124")
            .ptr("/details", json!("The query affects 2 rows")),
        get("/kv?select=k,v&k=in.(c,d)&order=k")
            .json(json!([{"k": "c", "v": "many"}, {"k": "d", "v": "many"}]))
            .named("max-affected rolled back"),
        case("PATCH", "/kv?k=in.(c,d)")
            .body(r#"{"v": "within"}"#)
            .h("prefer", "handling=strict, max-affected=2")
            .status(204)
            .header("preference-applied", "handling=strict, max-affected=2"),
        case("PATCH", "/kv?k=in.(c,d)")
            .body(r#"{"v": "lenient"}"#)
            .h("prefer", "max-affected=1, return=representation")
            .json(json!([{"k": "c", "v": "lenient"}, {"k": "d", "v": "lenient"}]))
            .header("preference-applied", "return=representation")
            .named("max-affected ignored without strict handling"),
        post("/rpc/books_by", r#"{"author": 1}"#)
            .h("prefer", "handling=strict, max-affected=1")
            .status(400)
            .code("PGRST124")
            .ptr("/details", json!("The query affects 2 rows")),
        post("/rpc/book_count", "{}")
            .h("prefer", "handling=strict, max-affected=1")
            .status(400)
            .json(json!({"code": "PGRST128", "message": "Function must return SETOF or TABLE when max-affected preference is used with handling=strict", "details": null, "hint": null})),
        case("PATCH", "/notes?select=id,authors(name)&id=eq.1")
            .body(r#"{"rating": 1}"#)
            .h("prefer", "return=representation")
            .json(json!([{"id": 1, "authors": {"name": "Ursula K. Le Guin"}}]))
            .named("embed in representation"),
        case("DELETE", "/kv?k=eq.e").status(204).text(""),
        case("DELETE", "/kv?k=in.(f,g)")
            .h("prefer", "return=representation")
            .json(json!([{"k": "f", "v": "6"}, {"k": "g", "v": "7"}])),
        case("DELETE", "/kv?k=eq.e")
            .h("prefer", "return=representation")
            .json(json!([])),
        case("DELETE", "/authors?id=eq.1").status(409).code("23503"),
        case("PUT", "/kv?k=eq.put")
            .body(r#"{"k": "put", "v": "new"}"#)
            .status(204),
        case("PUT", "/kv?k=eq.put")
            .body(r#"{"k": "put", "v": "replaced"}"#)
            .h("prefer", "return=representation")
            .json(json!([{"k": "put", "v": "replaced"}])),
        case("PUT", "/kv?k=eq.put")
            .body(r#"{"k": "other", "v": "x"}"#)
            .status(400)
            .code("PGRST115"),
        case("PUT", "/kv?v=eq.x")
            .body(r#"{"k": "x", "v": "x"}"#)
            .status(405)
            .code("PGRST105"),
        case("PUT", "/kv?k=gt.put")
            .body(r#"{"k": "put", "v": "x"}"#)
            .status(405)
            .code("PGRST105"),
        case("PUT", "/kv?k=eq.put&limit=1")
            .body(r#"{"k": "put", "v": "x"}"#)
            .status(400)
            .code("PGRST114"),
        post("/kv", r#"{"k": "tx", "v": "1"}"#)
            .h("prefer", "tx=rollback")
            .status(201)
            .no_header("preference-applied")
            .named("tx override not allowed by default"),
        get("/kv?k=eq.tx").json(json!([{"k": "tx", "v": "1"}])),
        post("/book_titles", r#"{"id": 7, "title": "Via View"}"#)
            .h("prefer", "return=representation")
            .status(201)
            .json(json!([{"id": 7, "title": "Via View", "author_id": null}]))
            .named("insert through a view"),
        case("DELETE", "/book_titles?id=eq.7").status(204),
        case("PATCH", "/authors?id=eq.4&select=id,display_name")
            .body(r#"{"name": "Nobody"}"#)
            .h("prefer", "return=representation")
            .json(json!([{"id": 4, "display_name": "Nobody"}]))
            .named("computed field read back from a write"),
        post("/rpc/add_note", r#"{"body": "via rpc"}"#)
            .ptr("/body", json!("via rpc"))
            .ptr("/rating", json!(3)),
    ]
}

fn security() -> Vec<Case> {
    vec![
        get("/secrets?select=id,value")
            .role("authenticated")
            .claims(json!({"sub": ALICE}))
            .json(json!([{"id": 1, "value": "alice secret"}]))
            .named("rls filters rows"),
        get("/secrets?select=id")
            .role("anon")
            .json(json!([]))
            .named("rls hides everything from anon"),
        get("/secrets?select=id&order=id")
            .json(ids(&[1, 2]))
            .named("service role bypasses rls"),
        post(
            "/secrets",
            r#"{"id": 3, "owner": "22222222-2222-2222-2222-222222222222", "value": "x"}"#,
        )
        .role("authenticated")
        .claims(json!({"sub": ALICE}))
        .status(403)
        .code("42501"),
        post("/readonly_things", r#"{"id": 2}"#)
            .role("anon")
            .status(401)
            .code("42501"),
        get("/readonly_things").role("anon").json(ids(&[1])),
        get("/authors?select=id&id=eq.1;select%20pg_sleep(1)")
            .status(400)
            .code("22P02")
            .named("values are bound"),
        get("/authors?select=id&name=eq.x%27%20or%20%271%27=%271").json(json!([])),
        get("/authors?select=id%22;drop%20table%20x")
            .status(400)
            .code("PGRST100"),
        get("/authors?select=id::text);drop")
            .status(400)
            .code("PGRST100"),
        get("/authors?select=id&bio->>a%27=eq.1")
            .json(json!([]))
            .named("json keys are bound"),
    ]
}
