//! PostgREST conformance: a table of requests against our own fixture schema (authors, books, tags and a
//! junction, a self-reference, views, functions, RLS) with the exact status, headers and body PostgREST's
//! documentation gives for each. Real parts only: a throwaway PostgreSQL cluster, the tenant-manager
//! provisioning a project from the real template (with `templates/rest.sql`), and the REST router driven
//! in-process with JWTs signed by the project's secret.

mod common;

pub use common::{Env, Reply};
use http::StatusCode;
use serde_json::json;
use std::time::Duration;

#[path = "conformance/cases.rs"]
mod cases;

const FIXTURE: &str = include_str!("conformance/fixture.sql");

/// Runs every case of [`cases::all`] in order and reports all failures at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let env = Env::start(FIXTURE).await;
    let cases = cases::all();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = case.run(&env).await {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Media types ([`cases::media`]): GeoJSON is 406 until PostGIS is installed in the project, then a
/// FeatureCollection; handlers declared in the database take part once the schema cache reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_types_geojson_and_handlers() {
    // PostGIS for the cluster's major version, as the project's scripts install it.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/setup.sh");
    let out = std::process::Command::new(script)
        .arg("postgis")
        .output()
        .expect("run scripts/setup.sh postgis");
    assert!(
        out.status.success(),
        "scripts/setup.sh postgis failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = Env::start(FIXTURE).await;
    let mut failures = Vec::new();
    for case in cases::media::before() {
        if let Err(e) = case.run(&env).await {
            failures.push(format!("before PostGIS, {}: {e}", case.name));
        }
    }
    env.db.batch_execute(cases::media::SETUP).await.unwrap();
    env.rest.pools().invalidate(&env.project_ref);
    for case in cases::media::after() {
        if let Err(e) = case.run(&env).await {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A table created after the cache was loaded is queryable within 2 s (event trigger → NOTIFY →
/// pooled connection's LISTEN), and `NOTIFY pgrst` by hand reloads too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_cache_reloads_after_ddl_and_notify() {
    let env = Env::start(FIXTURE).await;
    let t = env.token("service_role", None);
    let r = env
        .call("GET", "/authors?select=id&limit=1", &[], None, &t)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = env.call("GET", "/late", &[], None, &t).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["code"], "PGRST205");
    env.db
        .batch_execute("CREATE TABLE late (id int primary key); INSERT INTO late VALUES (7);")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let r = env.call("GET", "/late", &[], None, &t).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.json(), json!([{"id": 7}]));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "table not visible after 2 s: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Without the event trigger, a manual NOTIFY is what reloads.
    env.db
        .batch_execute(
            "ALTER EVENT TRIGGER pgrst_ddl_watch DISABLE; CREATE TABLE later (id int); \
             ALTER EVENT TRIGGER pgrst_ddl_watch ENABLE;",
        )
        .await
        .unwrap();
    env.db
        .batch_execute("NOTIFY pgrst, 'reload schema'")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let r = env.call("GET", "/later", &[], None, &t).await;
        if r.status == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(env.rest.pools().len(), 1);
}

/// PostgREST's in-database configuration per project: aggregates, a pre-request function, the
/// `tx=rollback` override and extra exposed schemas (Accept-Profile / Content-Profile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_settings_in_database() {
    let env = Env::start(FIXTURE).await;
    let t = env.token("service_role", None);
    let db = supactl_common::ident::database_name(&env.project_ref);
    env.db
        .batch_execute(&format!(
            "ALTER DATABASE {db} SET pgrst.db_aggregates_enabled = 'true';
             ALTER DATABASE {db} SET pgrst.db_pre_request = 'public.check_request';
             ALTER DATABASE {db} SET pgrst.db_tx_end = 'commit-allow-override';
             ALTER DATABASE {db} SET pgrst.db_schemas = 'public, api';
             CREATE FUNCTION public.check_request() RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
               IF current_setting('request.headers', true)::json->>'x-block' = 'yes' THEN
                 RAISE sqlstate 'PT403' USING message = 'blocked by pre-request';
               END IF;
               PERFORM set_config('response.headers', '[{{\"X-Pre\": \"ran\"}}]', true);
             END $$;
             CREATE SCHEMA api;
             GRANT USAGE ON SCHEMA api TO anon, authenticated, service_role;
             CREATE TABLE api.things (id int PRIMARY KEY, label text);
             GRANT ALL ON api.things TO anon, authenticated, service_role;
             INSERT INTO api.things VALUES (1, 'api thing');"
        ))
        .await
        .unwrap();
    // The CREATE SCHEMA above notified; make sure the reload happened before asserting.
    let mut r = env
        .call("GET", "/things", &[("accept-profile", "api")], None, &t)
        .await;
    for _ in 0..40 {
        if r.status == http::StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = env
            .call("GET", "/things", &[("accept-profile", "api")], None, &t)
            .await;
    }
    assert_eq!(
        r.json(),
        json!([{"id": 1, "label": "api thing"}]),
        "{}",
        r.text
    );
    assert_eq!(r.header("x-pre"), Some("ran"), "pre-request ran");

    let r = env
        .call("GET", "/authors", &[("x-block", "yes")], None, &t)
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    assert_eq!(r.json()["message"], "blocked by pre-request");

    let r = env
        .call("GET", "/things", &[("accept-profile", "nope")], None, &t)
        .await;
    assert_eq!(r.status.as_u16(), 406);
    assert_eq!(
        r.json()["message"],
        "The schema must be one of the following: public, api"
    );
    let r = env
        .call(
            "POST",
            "/things",
            &[
                ("content-profile", "api"),
                ("prefer", "return=representation"),
            ],
            Some(r#"{"id": 2, "label": "posted"}"#),
            &t,
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);

    let r = env
        .call(
            "GET",
            "/books?select=pages.sum(),total:price.max()::text",
            &[],
            None,
            &t,
        )
        .await;
    assert_eq!(
        r.json(),
        json!([{"sum": 1466, "total": "12.50"}]),
        "{}",
        r.text
    );
    let r = env
        .call(
            "GET",
            "/books?select=author_id,count()&author_id=not.is.null&order=author_id",
            &[],
            None,
            &t,
        )
        .await;
    assert_eq!(
        r.json(),
        json!([{"author_id": 1, "count": 2}, {"author_id": 2, "count": 2}, {"author_id": 3, "count": 1}]),
        "{}",
        r.text
    );

    // tx=rollback is honoured now, and says so.
    let r = env
        .call(
            "POST",
            "/kv",
            &[("prefer", "tx=rollback, return=representation")],
            Some(r#"{"k": "gone", "v": "1"}"#),
            &t,
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(
        r.header("preference-applied"),
        Some("return=representation, tx=rollback")
    );
    let r = env.call("GET", "/kv?k=eq.gone", &[], None, &t).await;
    assert_eq!(r.json(), json!([]));
}

/// `Prefer: count=planned` is the planner's estimate of the *filtered* relation (PostgREST runs
/// `EXPLAIN` of the count query): with fresh statistics on a small table the estimate is exact, and
/// limit/offset parameters the count does not use must not break the statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_count_estimates_the_filtered_relation() {
    let env = Env::start(FIXTURE).await;
    let t = env.token("service_role", None);
    env.db.batch_execute("ANALYZE books").await.unwrap();
    let planned = [("prefer", "count=planned")];
    let r = env
        .call(
            "GET",
            "/books?select=id&published=is.true",
            &planned,
            None,
            &t,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("content-range"), Some("0-3/4"));
    let r = env
        .call(
            "GET",
            "/books?select=id,title&published=is.true&order=id&limit=1&offset=1",
            &planned,
            None,
            &t,
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.text);
    assert_eq!(r.header("content-range"), Some("1-1/4"));
    assert_eq!(r.json(), json!([{"id": 2, "title": "The Dispossessed"}]));
    let r = env
        .call("GET", "/books?select=id&id=eq.3", &planned, None, &t)
        .await;
    assert_eq!(r.header("content-range"), Some("0-0/1"));
    let r = env
        .call("HEAD", "/books?published=is.false", &planned, None, &t)
        .await;
    assert_eq!(r.header("content-range"), Some("0-1/2"));
}

/// Reads leave their role and GUCs on the pooled session (two statements instead of four): requests
/// that follow on the same connection must never see them — a user after the service role, a write
/// after a read-only read, a function that leaves `response.headers` behind at session level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_never_leaks_between_requests() {
    let env = Env::start(FIXTURE).await;
    env.db
        .batch_execute(
            "CREATE FUNCTION leave_header() RETURNS int LANGUAGE sql AS $$
               SELECT 1 FROM (SELECT set_config('response.headers', '[{\"X-Left\": \"behind\"}]', false)) s $$;
             GRANT EXECUTE ON FUNCTION leave_header() TO anon, authenticated, service_role;
             NOTIFY pgrst, 'reload schema';",
        )
        .await
        .unwrap();
    let service = env.token("service_role", None);
    let alice = env.token(
        "authenticated",
        Some(json!({"sub": "11111111-1111-1111-1111-111111111111"})),
    );
    let anon = env.token("anon", None);
    for _ in 0..3 {
        // Sequential requests reuse the one pooled connection.
        let r = env
            .call("GET", "/secrets?select=id&order=id", &[], None, &service)
            .await;
        assert_eq!(r.json(), json!([{"id": 1}, {"id": 2}]));
        let r = env
            .call("GET", "/secrets?select=id&order=id", &[], None, &alice)
            .await;
        assert_eq!(r.json(), json!([{"id": 1}]), "the service role leaked");
        let r = env
            .call("GET", "/secrets?select=id", &[], None, &anon)
            .await;
        assert_eq!(r.json(), json!([]), "a user's claims leaked");
        let r = env
            .call(
                "POST",
                "/secrets",
                &[("prefer", "return=minimal")],
                Some(r#"{"id": 9, "owner": "11111111-1111-1111-1111-111111111111", "value": "w"}"#),
                &alice,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "a read left the session read-only: {}",
            r.text
        );
        let r = env
            .call("DELETE", "/secrets?id=eq.9", &[], None, &alice)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    let mut r = env
        .call("POST", "/rpc/leave_header", &[], Some("{}"), &anon)
        .await;
    for _ in 0..40 {
        if r.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = env
            .call("POST", "/rpc/leave_header", &[], Some("{}"), &anon)
            .await;
    }
    assert_eq!(r.header("x-left"), Some("behind"), "{}", r.text);
    let r = env
        .call("GET", "/books?select=id&id=eq.1", &[], None, &anon)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("x-left"),
        None,
        "response.headers leaked into the next read"
    );
    let r = env
        .call("POST", "/rpc/leave_header", &[], Some("{}"), &anon)
        .await;
    assert_eq!(r.header("x-left"), Some("behind"));
    let r = env
        .call(
            "POST",
            "/rpc/add_them",
            &[],
            Some(r#"{"a": 1, "b": 2}"#),
            &anon,
        )
        .await;
    assert_eq!(r.text, "3");
    assert_eq!(
        r.header("x-left"),
        None,
        "response.headers leaked into the next write"
    );
}

/// Plain reads set their GUCs for the session, so a function may change one for the session (by mistake
/// or on purpose): the next request on the connection still runs under its own values, never those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_changing_session_gucs_cannot_reach_the_next_request() {
    let env = Env::start(FIXTURE).await;
    env.db
        .batch_execute(
            "CREATE SEQUENCE whoami_calls;
             GRANT USAGE ON SEQUENCE whoami_calls TO authenticated;
             CREATE FUNCTION whoami(steal boolean DEFAULT false, unlock boolean DEFAULT false,
                                     write boolean DEFAULT false) RETURNS text LANGUAGE plpgsql STABLE AS $$
             DECLARE seen text := current_setting('request.jwt.claims', true)::json->>'sub';
             BEGIN
               IF steal THEN
                 PERFORM set_config('request.jwt.claims', '{\"role\": \"authenticated\", \"sub\": \"mallory\"}', false);
               END IF;
               IF unlock THEN
                 PERFORM set_config('default_transaction_read_only', 'off', false);
               END IF;
               IF write THEN
                 PERFORM nextval('whoami_calls');
               END IF;
               RETURN seen;
             END $$;
             GRANT EXECUTE ON FUNCTION whoami(boolean, boolean, boolean) TO authenticated;
             NOTIFY pgrst, 'reload schema';",
        )
        .await
        .unwrap();
    let alice = env.token("authenticated", Some(json!({"sub": "alice"})));
    let mut r = env.call("GET", "/rpc/whoami", &[], None, &alice).await;
    for _ in 0..40 {
        if r.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = env.call("GET", "/rpc/whoami", &[], None, &alice).await;
    }
    assert_eq!(r.json(), json!("alice"), "{}", r.text);
    // Sequential requests reuse the one pooled connection.
    for _ in 0..3 {
        let r = env.call("GET", "/rpc/whoami", &[], None, &alice).await;
        assert_eq!(r.json(), json!("alice"), "{}", r.text);
        let r = env
            .call("GET", "/rpc/whoami?steal=true", &[], None, &alice)
            .await;
        assert_eq!(r.json(), json!("alice"), "{}", r.text);
        let r = env.call("GET", "/rpc/whoami", &[], None, &alice).await;
        assert_eq!(
            r.json(),
            json!("alice"),
            "a function's claims reached the next request"
        );
    }
    // A read that turned `default_transaction_read_only` off leaves the next read read-only all the same.
    let r = env
        .call("GET", "/rpc/whoami?unlock=true", &[], None, &alice)
        .await;
    assert_eq!(r.json(), json!("alice"), "{}", r.text);
    let r = env
        .call("GET", "/rpc/whoami?write=true", &[], None, &alice)
        .await;
    assert_eq!(r.json()["code"], json!("25006"), "{}", r.text);
}

/// `pgrst.db_max_rows` (Supabase's "max rows", 1,000 on its platform): every read returns at most that
/// many rows whatever `limit` asks, and `count=estimated` counts exactly up to it and takes the
/// planner's estimate above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rows_caps_reads_and_estimated_counts() {
    let env = Env::start(FIXTURE).await;
    let t = env.token("service_role", None);
    let db = supactl_common::ident::database_name(&env.project_ref);
    env.db
        .batch_execute(&format!(
            "ALTER DATABASE {db} SET pgrst.db_max_rows = '2'; ANALYZE books; NOTIFY pgrst, 'reload config';"
        ))
        .await
        .unwrap();
    let mut r = env
        .call("GET", "/books?select=id&order=id", &[], None, &t)
        .await;
    for _ in 0..40 {
        if r.json() == json!([{"id": 1}, {"id": 2}]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = env
            .call("GET", "/books?select=id&order=id", &[], None, &t)
            .await;
    }
    assert_eq!(r.json(), json!([{"id": 1}, {"id": 2}]), "{}", r.text);
    let r = env
        .call(
            "GET",
            "/books?select=id&order=id&limit=5&offset=1",
            &[],
            None,
            &t,
        )
        .await;
    assert_eq!(r.json(), json!([{"id": 2}, {"id": 3}]));
    let r = env
        .call(
            "GET",
            "/books?select=id&order=id",
            &[("prefer", "count=exact")],
            None,
            &t,
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("0-1/6"));
    // Above the cap the estimate (exact here: fresh statistics), at or below it the exact count.
    let estimated = [("prefer", "count=estimated")];
    let r = env
        .call("GET", "/books?select=id&order=id", &estimated, None, &t)
        .await;
    assert_eq!(r.header("content-range"), Some("0-1/6"), "{}", r.text);
    let r = env
        .call(
            "GET",
            "/books?select=id&published=is.false",
            &estimated,
            None,
            &t,
        )
        .await;
    assert_eq!(r.header("content-range"), Some("0-1/2"));
    let r = env
        .call("GET", "/books?select=id&id=eq.1", &estimated, None, &t)
        .await;
    assert_eq!(r.header("content-range"), Some("0-0/1"));
    // Row-returning RPC results are capped too (three titles contain "the").
    let r = env
        .call(
            "GET",
            "/rpc/search_books?q=the&select=id&order=id",
            &[],
            None,
            &t,
        )
        .await;
    assert_eq!(r.json(), json!([{"id": 1}, {"id": 2}]), "{}", r.text);
    let r = env.call("GET", "/rpc/genre_list", &[], None, &t).await;
    assert_eq!(r.json(), json!(["classic", "historical"]), "{}", r.text);
}

/// Round two under project settings: aggregates (in embeds, grouped by to-one spreads and embedded
/// JSON, hoisted out of spreads), `pgrst.db_extra_search_path`, and `count=estimated` without
/// `db-max-rows` (PostgREST then takes the larger of the count and the planner's estimate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_two_under_project_settings() {
    let env = Env::start(FIXTURE).await;
    let t = env.token("service_role", None);
    let db = supactl_common::ident::database_name(&env.project_ref);
    env.db
        .batch_execute(&format!(
            "ALTER DATABASE {db} SET pgrst.db_aggregates_enabled = 'true';
             ALTER DATABASE {db} SET pgrst.db_plan_enabled = 'true';
             ALTER DATABASE {db} SET pgrst.db_extra_search_path = 'public, extensions, util';
             CREATE SCHEMA util;
             GRANT USAGE ON SCHEMA util TO anon, authenticated, service_role;
             CREATE FUNCTION util.twice(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 2 * x $$;
             CREATE FUNCTION public.quad(x int) RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN twice(twice(x)); END $$;
             CREATE TABLE shrunk (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
             INSERT INTO shrunk SELECT generate_series(1, 100);
             ANALYZE shrunk;
             DELETE FROM shrunk WHERE id > 10;
             NOTIFY pgrst, 'reload config';"
        ))
        .await
        .unwrap();
    let mut r = env.call("GET", "/rpc/quad?x=3", &[], None, &t).await;
    for _ in 0..40 {
        if r.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = env.call("GET", "/rpc/quad?x=3", &[], None, &t).await;
    }
    assert_eq!(
        r.text, "12",
        "the extra search path reaches util: {}",
        r.text
    );

    let cases = [
        (
            "/books?select=total:pages.sum(),...authors(country)&order=authors(country).nullslast",
            json!([{"total": 499, "country": "PL"}, {"total": 955, "country": "US"}, {"total": 12, "country": null}]),
        ),
        (
            "/books?select=...authors(country,n:id.count())&order=authors(country).nullslast",
            json!([{"country": "PL", "n": 2}, {"country": "US", "n": 3}, {"country": null, "n": 0}]),
        ),
        (
            "/books?select=...authors(country,count())&order=authors(country).nullslast",
            json!([{"country": "PL", "count": 2}, {"country": "US", "count": 3}, {"country": null, "count": 0}]),
        ),
        (
            "/books?select=author_id,total:pages.sum(),authors(name)&author_id=not.is.null&order=author_id",
            json!([
                {"author_id": 1, "total": 691, "authors": {"name": "Ursula K. Le Guin"}},
                {"author_id": 2, "total": 499, "authors": {"name": "Stanisław Lem"}},
                {"author_id": 3, "total": 264, "authors": {"name": "Octavia E. Butler"}}]),
        ),
        (
            "/authors?select=name,books(total:pages.sum()::text,avg_price:price.avg(),newest:id.max(),c:count()::text)&id=eq.1",
            json!([{"name": "Ursula K. Le Guin", "books": [{"total": "691", "avg_price": 11.245, "newest": 2, "c": "2"}]}]),
        ),
        (
            "/authors?select=name,books(count)&id=eq.4",
            json!([{"name": "Nobody", "books": [{"count": 0}]}]),
        ),
        ("/books?select=count()::text", json!([{"count": "6"}])),
    ];
    for (path, want) in cases {
        let r = env.call("GET", path, &[], None, &t).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.json(), want, "{path}: {}", r.text);
    }
    let r = env
        .call(
            "GET",
            "/authors?select=name,...books(pages.sum())",
            &[],
            None,
            &t,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"code": "PGRST127", "message": "Feature not implemented", "details": "Aggregates are not implemented for one-to-many or many-to-many spreads.", "hint": null}),
        "{}",
        r.text
    );

    // Execution plans, enabled by the project.
    let plan_json = [("accept", "application/vnd.pgrst.plan+json")];
    let r = env
        .call("GET", "/authors?select=id&id=eq.1", &plan_json, None, &t)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.pgrst.plan+json; for=\"application/json\"; charset=utf-8")
    );
    assert!(r.json()[0]["Plan"]["Node Type"].is_string(), "{}", r.text);
    assert!(r.header("content-range").is_none());
    let r = env
        .call(
            "GET",
            "/authors?select=id",
            &[(
                "accept",
                "application/vnd.pgrst.plan; for=\"text/csv\"; options=verbose",
            )],
            None,
            &t,
        )
        .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.pgrst.plan+text; for=\"text/csv\"; options=verbose; charset=utf-8")
    );
    assert!(
        r.text.contains("Output:"),
        "a verbose text plan: {}",
        r.text
    );
    // An analyzed write runs, and is rolled back.
    let r = env
        .call(
            "POST",
            "/kv",
            &[("accept", "application/vnd.pgrst.plan+json; options=analyze")],
            Some(r#"{"k": "planned", "v": "1"}"#),
            &t,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json()[0]["Plan"]["Actual Rows"].is_number(), "{}", r.text);
    let r = env.call("GET", "/kv?k=eq.planned", &[], None, &t).await;
    assert_eq!(r.json(), json!([]), "the analyzed insert was rolled back");
    let r = env
        .call(
            "POST",
            "/rpc/add_note",
            &[("accept", "application/vnd.pgrst.plan+json; options=analyze")],
            Some(r#"{"body": "planned"}"#),
            &t,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = env
        .call("GET", "/notes?body=eq.planned", &[], None, &t)
        .await;
    assert_eq!(r.json(), json!([]), "the analyzed call was rolled back");

    // 10 rows left of the 100 the statistics know: the estimate (100) is the larger.
    let estimated = [("prefer", "count=estimated")];
    let r = env
        .call("GET", "/shrunk?select=id", &estimated, None, &t)
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.text);
    assert_eq!(r.header("content-range"), Some("0-9/100"));
    assert_eq!(r.header("preference-applied"), Some("count=estimated"));
    let r = env
        .call(
            "GET",
            "/shrunk?select=id",
            &[("prefer", "count=exact")],
            None,
            &t,
        )
        .await;
    assert_eq!(r.header("content-range"), Some("0-9/10"));
}

/// The schema cache reads the catalog in one order: the OpenAPI document and an ambiguity error are
/// byte for byte the same after a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_cache_output_is_the_same_on_every_load() {
    let env = Env::start(FIXTURE).await;
    let t = env.token("service_role", None);
    let first = (
        env.call("GET", "/", &[], None, &t).await.text,
        env.call("GET", "/routes?select=addresses(*)", &[], None, &t)
            .await
            .text,
    );
    for _ in 0..3 {
        env.rest.pools().invalidate(&env.project_ref);
        let again = (
            env.call("GET", "/", &[], None, &t).await.text,
            env.call("GET", "/routes?select=addresses(*)", &[], None, &t)
                .await
                .text,
        );
        assert_eq!(again, first);
    }
    assert!(first.1.contains("PGRST201"), "{}", first.1);
}
