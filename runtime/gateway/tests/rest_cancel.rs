//! A client that gives up on a slow REST request over a real socket (closes its connection) does not
//! leave the statement running: the gateway's server drops the request, and the REST engine cancels
//! the statement and closes its database connection.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const SLOW: &str = "create function slow(secs float8) returns int language sql as
  $$ select 1 from pg_sleep(secs) $$;";

/// Backends of `p`'s database sleeping in `pg_sleep`, as the superuser sees them.
async fn sleepers(db: &tokio_postgres::Client, p: &Project) -> i64 {
    db.query_one(
        "select count(*) from pg_stat_activity where datname = $1 and wait_event = 'PgSleep'",
        &[&supactl_common::ident::database_name(&p.project_ref)],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_cancels_its_statement() {
    let pf = Platform::start().await;
    let p = pf.create("hangup").await;
    let (s, v) = pf.sql(&p, SLOW).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let db = pf.superuser().await;

    let url: http::Uri = format!("{}/rest/v1/rpc/slow", p.api_url).parse().unwrap();
    let mut socket = tokio::net::TcpStream::connect(url.authority().unwrap().as_str())
        .await
        .unwrap();
    let body = r#"{"secs": 30}"#;
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\napikey: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        url.path(),
        url.authority().unwrap(),
        p.secret,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleepers(&db, &p).await == 0 {
        assert!(Instant::now() < deadline, "the statement never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(socket);

    // The service role's 8 s statement timeout would stop it only after these 5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleepers(&db, &p).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the statement still runs after its client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, v) = pf
        .rest(
            &p,
            Method::POST,
            "rpc/slow",
            &p.secret,
            &[],
            Some(json!({"secs": 0})),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!(1)));
}
