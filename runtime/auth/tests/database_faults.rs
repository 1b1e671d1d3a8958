//! Auth when the database says no: a statement stopped by auth's statement timeout is GoTrue's 504
//! `request_timeout`, a backend terminated under a request is a 503, and the next request is served.
//! The slow statement is the project's own trigger on `auth.users` (a profile row per sign-up is the
//! usual one), sleeping as long as the sign-up's metadata asks.

mod common;

use common::env;
use http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

const SLOW_TRIGGER: &str = "
create function public.slow_profile() returns trigger language plpgsql security definer as $$
begin
  perform pg_sleep(coalesce((new.raw_user_meta_data->>'sleep')::float8, 0));
  return new;
end $$;
create trigger slow_profile after insert on auth.users
  for each row execute function public.slow_profile();
";

fn signup(email: &str, sleep: u32) -> serde_json::Value {
    json!({"email": email, "password": "fault-pass-1", "data": {"sleep": sleep}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_statements_time_out_and_terminated_backends_answer_503() {
    let env = env().await;
    let db = env.superuser().await;
    db.batch_execute(SLOW_TRIGGER).await.unwrap();
    let anon = env.minted("anon", json!({}));

    // Longer than auth's 8 s statement timeout.
    let (status, err) = env
        .call(
            "POST",
            "/signup",
            Some(&anon),
            true,
            signup("slow@example.com", 9),
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{err}");
    assert_eq!(err["code"], "request_timeout", "{err}");

    // Terminated while the trigger sleeps.
    let request = env.call(
        "POST",
        "/signup",
        Some(&anon),
        true,
        signup("cut@example.com", 5),
    );
    let terminate = async {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = db
                .execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity
                     where datname = current_database() and wait_event = 'PgSleep'",
                    &[],
                )
                .await
                .unwrap();
            if n == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sign-up never reached the trigger"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ((status, err), ()) = tokio::join!(request, terminate);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["code"], "unexpected_failure", "{err}");

    // The dead connection left the pool: the next sign-up is served.
    let (status, session) = env
        .call(
            "POST",
            "/signup",
            Some(&anon),
            true,
            signup("next@example.com", 0),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert!(session["access_token"].is_string(), "{session}");
}
