//! What a request leaves on its pooled session never reaches the next request on it: a function that
//! changes the role, search path, timeout or response GUCs for the session — plainly, or hidden behind
//! a `SET LOCAL` of the very value the request had, so that anything reading them back at the end of
//! the request sees nothing amiss — must not change what the next read, function call or write on
//! that connection runs as or answers. These hold for any scheme that sets less than everything on
//! every request.

mod common;

use common::{Env, Reply};
use http::StatusCode;
use serde_json::{json, Value};

/// `session_seen` shows a read of a relation what the session is; `session_probe()` shows the same
/// to a function call. `meddle(masked)` changes role, search path, timeout and response GUCs for the
/// session and, when `masked`, sets the request's own values back for the transaction only (so that
/// anything reading them at the end of the request sees nothing amiss).
const FIXTURE: &str = r#"
CREATE TABLE probes (id int PRIMARY KEY);
INSERT INTO probes VALUES (1);
CREATE VIEW session_seen AS
  SELECT current_user::text AS "role", current_setting('search_path') AS search_path,
         current_setting('statement_timeout') AS timeout, pg_backend_pid() AS pid
  FROM probes;
GRANT SELECT ON session_seen TO anon, authenticated, service_role;
CREATE FUNCTION session_probe() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object('role', current_user::text, 'search_path', current_setting('search_path'),
                           'timeout', current_setting('statement_timeout'), 'pid', pg_backend_pid()) $$;
CREATE FUNCTION meddle(masked boolean) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  was_role text := current_user;
  was_path text := current_setting('search_path');
  was_timeout text := current_setting('statement_timeout');
BEGIN
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog', false);
  PERFORM pg_catalog.set_config('statement_timeout', '123s', false);
  PERFORM pg_catalog.set_config('response.headers', '[{"X-Left": "behind"}]', false);
  SET ROLE service_role;
  IF masked THEN
    PERFORM pg_catalog.set_config('role', was_role, true);
    PERFORM pg_catalog.set_config('search_path', was_path, true);
    PERFORM pg_catalog.set_config('statement_timeout', was_timeout, true);
    PERFORM pg_catalog.set_config('response.headers', '', true);
  END IF;
  RETURN pg_catalog.pg_backend_pid();
END $$;
GRANT EXECUTE ON FUNCTION session_probe(), meddle(boolean) TO anon, authenticated, service_role;
"#;

/// What a probe saw, without the backend's pid; and that pid.
fn seen(r: &Reply) -> (Value, i64) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.header("x-left"),
        None,
        "response.headers leaked: {}",
        r.text
    );
    let mut v = r.json();
    if let Value::Array(rows) = v {
        v = rows.into_iter().next().expect("one row");
    }
    let pid = v["pid"].as_i64().expect("a pid");
    v.as_object_mut().unwrap().remove("pid");
    (v, pid)
}

/// Every way a request can run (a read of a relation, a function call by GET, one by POST) sees the
/// session as it should be after a function meddled with it through each of those ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_changing_the_session_cannot_reach_the_next_request() {
    let env = Env::start(FIXTURE).await;
    let alice = env.token("authenticated", Some(json!({"sub": "alice"})));
    let probe = |method: &'static str, path: &'static str| {
        let env = &env;
        let alice = &alice;
        async move {
            let body = (method == "POST").then_some("{}");
            seen(&env.call(method, path, &[], body, alice).await)
        }
    };
    let (expected, _) = probe("GET", "/session_seen").await;
    assert_eq!(expected["role"], json!("authenticated"));
    assert_eq!(probe("GET", "/rpc/session_probe").await.0, expected);
    assert_eq!(probe("POST", "/rpc/session_probe").await.0, expected);
    let meddlers = [
        ("GET", "/rpc/meddle?masked=false", None),
        ("GET", "/rpc/meddle?masked=true", None),
        ("POST", "/rpc/meddle", Some(r#"{"masked": false}"#)),
        ("POST", "/rpc/meddle", Some(r#"{"masked": true}"#)),
    ];
    for (method, path, body) in meddlers {
        for (probe_method, probe_path) in [
            ("GET", "/session_seen"),
            ("GET", "/rpc/session_probe"),
            ("POST", "/rpc/session_probe"),
        ] {
            // Sequential requests reuse the one pooled connection.
            let r = env.call(method, path, &[], body, &alice).await;
            assert_eq!(r.status, StatusCode::OK, "{method} {path}: {}", r.text);
            let meddled_on = r.json().as_i64().expect("meddle returns its pid");
            let (now, pid) = probe(probe_method, probe_path).await;
            assert_eq!(
                pid, meddled_on,
                "{probe_method} {probe_path} ran on another connection"
            );
            assert_eq!(
                now, expected,
                "{probe_method} {probe_path} after {method} {path} {body:?}"
            );
        }
    }
}

/// A read of a relation that reaches such a function (through a view) leaves nothing for the next
/// request; the function's response GUCs still reach its own response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_a_relation_leaves_nothing_behind() {
    let env = Env::start(&format!(
        "{FIXTURE}
         CREATE VIEW meddling AS SELECT meddle(false) AS pid FROM probes;
         GRANT SELECT ON meddling TO authenticated;"
    ))
    .await;
    let alice = env.token("authenticated", Some(json!({"sub": "alice"})));
    let (expected, _) = seen(&env.call("GET", "/session_seen", &[], None, &alice).await);
    for _ in 0..3 {
        let r = env.call("GET", "/meddling", &[], None, &alice).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.header("x-left"), Some("behind"), "its own response");
        let meddled_on = r.json()[0]["pid"].as_i64().expect("a pid");
        for path in ["/session_seen", "/rpc/session_probe"] {
            let (now, pid) = seen(&env.call("GET", path, &[], None, &alice).await);
            assert_eq!(pid, meddled_on, "{path} ran on another connection");
            assert_eq!(now, expected, "{path}");
        }
    }
    // Another role on the same connection, then the first again.
    let anon = env.token("anon", None);
    let (as_anon, _) = seen(&env.call("GET", "/session_seen", &[], None, &anon).await);
    assert_eq!(as_anon["role"], json!("anon"));
    let (again, _) = seen(&env.call("GET", "/session_seen", &[], None, &alice).await);
    assert_eq!(again, expected);
    // The schema cache is loaded on that connection as the login role, with its own settings.
    env.rest.pools().invalidate(&env.project_ref);
    let (reloaded, _) = seen(&env.call("GET", "/session_seen", &[], None, &alice).await);
    assert_eq!(reloaded, expected, "after a schema cache load");
}

/// A read sees its own request GUCs (method, path, cookies, claims), never those of the request
/// before it on the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_read_sees_its_own_request() {
    let env = Env::start(&format!(
        "{FIXTURE}
         CREATE VIEW request_seen AS
           SELECT current_setting('request.method') AS method, current_setting('request.path') AS path,
                  current_setting('request.cookies') AS cookies,
                  current_setting('request.jwt.claims')::json->>'sub' AS sub, pg_backend_pid() AS pid
           FROM probes;
         GRANT SELECT ON request_seen TO authenticated;"
    ))
    .await;
    let alice = env.token("authenticated", Some(json!({"sub": "alice"})));
    let bob = env.token("authenticated", Some(json!({"sub": "bob"})));
    let read = |headers: &'static [(&'static str, &'static str)], token: &str| {
        let token = token.to_string();
        let env = &env;
        async move {
            seen(
                &env.call("GET", "/request_seen", headers, None, &token)
                    .await,
            )
            .0
        }
    };
    let first = read(&[], &alice).await;
    assert_eq!(first["method"], json!("GET"));
    assert!(
        first["path"].as_str().unwrap().ends_with("/request_seen"),
        "{first}"
    );
    assert_eq!(first["cookies"], json!("{}"));
    assert_eq!(first["sub"], json!("alice"));
    let with_cookie = read(&[("cookie", "flavour=mint")], &bob).await;
    assert_eq!(with_cookie["cookies"], json!(r#"{"flavour":"mint"}"#));
    assert_eq!(with_cookie["sub"], json!("bob"));
    assert_eq!(
        read(&[], &alice).await,
        first,
        "the cookie or the claims stayed"
    );
    // Another path on the connection, then this one again.
    let (other, _) = seen(&env.call("GET", "/session_seen", &[], None, &alice).await);
    assert_eq!(other["role"], json!("authenticated"));
    assert_eq!(read(&[], &alice).await, first, "the other path stayed");
    // A function call sets its own, at session level; a read after it sets the baseline again.
    let r = env
        .call(
            "POST",
            "/rpc/meddle",
            &[],
            Some(r#"{"masked": false}"#),
            &alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        read(&[("cookie", "a=1")], &alice).await["cookies"],
        json!(r#"{"a":"1"}"#)
    );
    assert_eq!(read(&[], &alice).await, first);
}
