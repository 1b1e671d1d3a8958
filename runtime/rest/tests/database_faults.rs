//! What a request meets when the database says no: the role's statement timeout (per project, never a
//! role setting), a backend terminated under it, and a request abandoned while its statement runs.
//! Real parts: a throwaway cluster, the tenant-manager's project (default limits: anon 3 s, the
//! service role 8 s) and the REST router in-process.

mod common;

use common::Env;
use http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

const FIXTURE: &str = "
create table items (id int primary key);
insert into items values (1);
create function slow(secs float8) returns int language sql as $$ select 1 from pg_sleep(secs) $$;
-- Drops the statement timeout for the whole session, as a careless (or hostile) function might.
create function unbound() returns text language sql as
  $$ select set_config('statement_timeout', '0', false) $$;
grant execute on function slow(float8), unbound() to anon, authenticated, service_role;
";

/// `slow(secs)` called with `method`: arguments in the body of a POST, in the query of a GET.
async fn slow(env: &Env, method: &str, secs: u32, token: &str) -> common::Reply {
    let body = format!(r#"{{"secs": {secs}}}"#);
    match method {
        "POST" => env.call("POST", "/rpc/slow", &[], Some(&body), token).await,
        _ => {
            let path = format!("/rpc/slow?secs={secs}");
            env.call(method, &path, &[], None, token).await
        }
    }
}

/// Backends of the project's database sleeping in `pg_sleep`.
async fn sleepers(env: &Env) -> i64 {
    env.db
        .query_one(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event = 'PgSleep'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Waits (at most `within`) until `sleepers` equals `n`; returns whether it did.
async fn until_sleepers(env: &Env, n: i64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if sleepers(env).await == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn assert_timed_out(r: &common::Reply, timeout: &str) {
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    let v = r.json();
    assert_eq!(v["code"], "57014", "{v}");
    assert_eq!(v["message"], "canceling statement due to statement timeout");
    assert_eq!(
        v["hint"],
        format!("statements of the anon role may run for {timeout} on this project")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_run_under_the_statement_timeout_of_their_role() {
    let env = Env::start(FIXTURE).await;
    let anon = env.token("anon", None);
    let service = env.token("service_role", None);

    // The transaction path (POST) and the plain-read path (GET) alike.
    let r = slow(&env, "POST", 4, &anon).await;
    assert_timed_out(&r, "3s");
    let r = slow(&env, "GET", 4, &anon).await;
    assert_timed_out(&r, "3s");
    let r = slow(&env, "POST", 4, &service).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!(1)),
        "{}",
        r.text
    );
    let r = slow(&env, "GET", 4, &service).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!(1)),
        "{}",
        r.text
    );

    // A function that drops the timeout for its session does not free the next request on that
    // connection (sequential requests share the one pooled connection), whichever path it took.
    for method in ["GET", "POST"] {
        let r = env
            .call(method, "/rpc/unbound", &[], Some("{}"), &anon)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = slow(&env, "GET", 4, &anon).await;
        assert_timed_out(&r, "3s");
    }
    // And anon's read after the service role's one, with the same connection, runs under 3 s again.
    let r = slow(&env, "GET", 0, &service).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = slow(&env, "GET", 4, &anon).await;
    assert_timed_out(&r, "3s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_backend_answers_503_and_the_next_request_is_served() {
    let env = Env::start(FIXTURE).await;
    let service = env.token("service_role", None);
    for method in ["POST", "GET"] {
        let request = slow(&env, method, 6, &service);
        let terminate = async {
            assert!(
                until_sleepers(&env, 1, Duration::from_secs(5)).await,
                "the statement never started"
            );
            env.db
                .execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity
                     where datname = current_database() and wait_event = 'PgSleep'",
                    &[],
                )
                .await
                .unwrap();
        };
        let (r, ()) = tokio::join!(request, terminate);
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method}: {}",
            r.text
        );
        assert_eq!(r.json()["code"], "PGRST000", "{}", r.text);
        let r = env
            .call("GET", "/items?select=id", &[], None, &service)
            .await;
        assert_eq!(
            (r.status, r.json()),
            (StatusCode::OK, json!([{"id": 1}])),
            "{}",
            r.text
        );
    }
}

/// A request dropped while its statement runs (the client gave up, a deadline fired) cancels the
/// statement instead of leaving it to run for nobody. The statement would otherwise sleep 30 s, and
/// the service role's 8 s timeout would stop it only after the 5 s this test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_cancels_its_statement() {
    let env = Env::start(FIXTURE).await;
    let service = env.token("service_role", None);
    for method in ["POST", "GET"] {
        let request = slow(&env, method, 30, &service);
        let gave_up = tokio::time::timeout(Duration::from_secs(1), request).await;
        assert!(
            gave_up.is_err(),
            "{method}: the request finished within 1 s"
        );
        assert!(
            until_sleepers(&env, 0, Duration::from_secs(5)).await,
            "{method}: the abandoned statement still runs"
        );
        let r = env
            .call("GET", "/items?select=id", &[], None, &service)
            .await;
        assert_eq!(
            (r.status, r.json()),
            (StatusCode::OK, json!([{"id": 1}])),
            "{}",
            r.text
        );
    }
}
