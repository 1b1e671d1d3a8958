//! Lambda mode end to end: Function URL events (API Gateway v2 payload format) go through the real
//! `lambda_http` runtime loop of [`rest::lambda::run`], the REST engine and a real PostgreSQL project
//! provisioned by the real tenant-manager, and the PostgREST responses come back as Function URL
//! responses.
//!
//! A FAKE stands in for one part: AWS's Lambda Runtime API (`/2018-06-01/runtime/invocation/next`,
//! `…/{id}/response`, `…/{id}/error`), served on loopback by this test, because Lambda itself cannot
//! run here. It hands out the events the test queues and returns what the function posts back.
//!
//! The runtime reads its endpoint and function settings from the process environment, so this file holds
//! a single test that sets them before any other thread exists.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use supactl_common::jwt;
use testkit::ControlPlane;
use tokio::sync::{mpsc, Mutex};

/// The loopback stand-in for the Lambda Runtime API (see the file docs).
struct RuntimeApi {
    events: Mutex<mpsc::Receiver<(String, Value)>>,
    results: mpsc::Sender<(String, &'static str, Value)>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> (HeaderMap, String) {
    let (id, event) = api
        .events
        .lock()
        .await
        .recv()
        .await
        .expect("the test keeps the event queue open");
    let mut h = HeaderMap::new();
    h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    h.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:rest-lambdatest"
            .parse()
            .unwrap(),
    );
    (h, event.to_string())
}

async fn done(
    State(api): State<Arc<RuntimeApi>>,
    Path((id, kind)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let kind = if kind == "response" {
        "response"
    } else {
        "error"
    };
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    api.results.send((id, kind, v)).await.unwrap();
    StatusCode::ACCEPTED
}

async fn init_error(body: Bytes) -> StatusCode {
    panic!("the function reported an init error: {body:?}");
}

/// A Function URL event as Lambda builds it (payload format 2.0).
fn event(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, bool)>,
) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("host".into(), json!("abc123.lambda-url.us-east-1.on.aws"));
    // What the Function URL's AWS_IAM auth saw: the gateway's SigV4 signature.
    h.insert(
        "authorization".into(),
        json!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"),
    );
    for (k, v) in headers {
        h.insert(k.to_string(), json!(v));
    }
    let mut e = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "abc123",
            "domainName": "abc123.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "supactl-gateway"
            },
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2024:00:00:00 +0000",
            "timeEpoch": 1704067200000i64
        },
        "isBase64Encoded": false
    });
    if let Some((b, base64)) = body {
        e["body"] = json!(b);
        e["isBase64Encoded"] = json!(base64);
    }
    e
}

struct Invoker {
    events: mpsc::Sender<(String, Value)>,
    results: mpsc::Receiver<(String, &'static str, Value)>,
    n: usize,
}

/// A Function URL response: status, lower-cased headers and the body as text.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: serde_json::Map<String, Value>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(Value::as_str)
    }
}

impl Invoker {
    async fn invoke(&mut self, event: Value) -> Reply {
        self.n += 1;
        let id = format!("invocation-{}", self.n);
        self.events.send((id.clone(), event)).await.unwrap();
        let (got, kind, v) = tokio::time::timeout(Duration::from_secs(30), self.results.recv())
            .await
            .expect("the function answers within 30 s")
            .unwrap();
        assert_eq!(got, id);
        assert_eq!(kind, "response", "the function reported an error: {v}");
        let body = v["body"].as_str().unwrap_or("").to_string();
        let body = if v["isBase64Encoded"] == json!(true) {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap(),
            )
            .unwrap()
        } else {
            body
        };
        let headers = v["headers"]
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Reply {
            status: v["statusCode"].as_u64().unwrap() as u16,
            headers,
            body,
        }
    }
}

#[test]
fn function_url_events_are_served_by_the_rest_lambda() {
    // The fake Runtime API's address must be in the environment before the runtime reads it, and
    // before any thread exists (hence a std listener and a runtime built by hand).
    let runtime_api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    runtime_api.set_nonblocking(true).unwrap();
    std::env::set_var(
        "AWS_LAMBDA_RUNTIME_API",
        runtime_api.local_addr().unwrap().to_string(),
    );
    std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "rest-lambdatest");
    std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512");
    std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        // The runtime loop's future is not Send: it runs on this thread's LocalSet.
        .block_on(tokio::task::LocalSet::new().run_until(scenario(runtime_api)));
}

async fn scenario(runtime_api: std::net::TcpListener) {
    // The platform: PostgreSQL, the tenant-manager, one project with a table.
    let cp = ControlPlane::start("http://127.0.0.1:1/p/{ref}").await;
    let tm_url = cp.admin_url.clone();
    let service_token = cp.service_token.clone();
    let project_ref = cp.create_project("Lambda", "lambdatest").await["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = cp.jwt_secret(&project_ref).await;
    let db = cp.project_db(&project_ref).await;
    db.batch_execute(
        "create table public.todos (id bigint generated always as identity primary key, \
           title text not null, done boolean not null default false);
         grant select, insert on public.todos to anon, authenticated, service_role;
         insert into public.todos (title) values ('write the lambda'), ('measure the cold start');",
    )
    .await
    .unwrap();
    let token = |role: &str, project: &str, key: &str| {
        let claims =
            json!({"role": role, "ref": project, "iat": jwt::now(), "exp": jwt::now() + 300});
        jwt::sign(claims.as_object().unwrap(), key.as_bytes())
    };

    // The fake Runtime API, then the function itself.
    let (events_tx, events_rx) = mpsc::channel(1);
    let (results_tx, results_rx) = mpsc::channel(1);
    let api = Arc::new(RuntimeApi {
        events: Mutex::new(events_rx),
        results: results_tx,
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(done))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api);
    let listener = tokio::net::TcpListener::from_std(runtime_api).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The function reads its config with the project's own token, as the tenant-manager sets it in the
    // function's environment (never the service token).
    let config = rest::lambda::LambdaConfig {
        project_ref: project_ref.clone(),
        tenant_manager_url: tm_url.clone(),
        token: supactl_common::tokens::project_token(&service_token, &project_ref),
        cache_ttl: Duration::from_secs(5),
        rest: rest::RestConfig::default(),
    };
    let function = tokio::task::spawn_local(rest::lambda::run(config));
    let mut fx = Invoker {
        events: events_tx,
        results: results_rx,
        n: 0,
    };
    let anon = format!("Bearer {}", token("anon", &project_ref, &secret));
    let service = format!("Bearer {}", token("service_role", &project_ref, &secret));

    // GET with an exact count: rows and Content-Range, no project header needed (one sent for another
    // project is overridden).
    let r = fx
        .invoke(event(
            "GET",
            "/todos",
            "select=id,title&order=id.asc",
            &[
                ("x-supactl-authorization", &anon),
                ("prefer", "count=exact"),
                ("x-supactl-project", "someone-else"),
            ],
            None,
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json(),
        json!([{"id": 1, "title": "write the lambda"}, {"id": 2, "title": "measure the cold start"}])
    );
    assert_eq!(r.header("content-range"), Some("0-1/2"), "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{r:?}"
    );

    // Filters and a Range header travel through the event too.
    let r = fx
        .invoke(event(
            "GET",
            "/todos",
            "select=title&title=like.*cold*",
            &[("x-supactl-authorization", &anon)],
            None,
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!([{"title": "measure the cold start"}]));
    assert_eq!(r.header("content-range"), Some("0-0/*"), "{r:?}");

    // POST with return=representation: 201 and the inserted row.
    let r = fx
        .invoke(event(
            "POST",
            "/todos",
            "select=id,title,done",
            &[
                ("x-supactl-authorization", &service),
                ("content-type", "application/json"),
                ("prefer", "return=representation"),
            ],
            Some((r#"{"title":"ship it"}"#, false)),
        ))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        r.json(),
        json!([{"id": 3, "title": "ship it", "done": false}])
    );
    assert_eq!(r.header("content-range"), Some("*/*"), "{r:?}");

    // A base64-encoded body (Function URLs encode bodies they do not take for text).
    let encoded = base64::engine::general_purpose::STANDARD.encode(r#"[{"title":"encoded"}]"#);
    let r = fx
        .invoke(event(
            "POST",
            "/todos",
            "",
            &[
                ("x-supactl-authorization", &service),
                ("content-type", "application/json"),
                ("prefer", "return=representation"),
            ],
            Some((&encoded, true)),
        ))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()[0]["title"], json!("encoded"), "{r:?}");
    let rows: i64 = db
        .query_one("select count(*) from public.todos", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 4);

    // A JWT signed with another secret: 401 with PostgREST's error shape.
    let forged = format!(
        "Bearer {}",
        token(
            "service_role",
            &project_ref,
            "not-the-project-secret-0123456789"
        )
    );
    let r = fx
        .invoke(event(
            "GET",
            "/todos",
            "",
            &[("x-supactl-authorization", &forged)],
            None,
        ))
        .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json()["code"], json!("PGRST301"), "{r:?}");

    // A valid JWT for another project is refused too.
    let other = format!("Bearer {}", token("anon", "other-project", &secret));
    let r = fx
        .invoke(event(
            "GET",
            "/todos",
            "",
            &[("x-supactl-authorization", &other)],
            None,
        ))
        .await;
    assert_eq!(r.status, 401, "{r:?}");

    // Without X-Supactl-Authorization nothing authenticates the request: the SigV4 `Authorization` the
    // Function URL saw is not a JWT, and is never taken for one.
    let r = fx.invoke(event("GET", "/todos", "", &[], None)).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("No JWT"), "{r:?}");
    // Nor is a JWT in `Authorization`: only X-Supactl-Authorization carries the caller's token.
    let r = fx
        .invoke(event(
            "GET",
            "/todos",
            "",
            &[("authorization", &anon)],
            None,
        ))
        .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("No JWT"), "{r:?}");

    // The header of older gateways (`X-Client-Authorization`) is not read either.
    let r = fx
        .invoke(event(
            "GET",
            "/todos",
            "",
            &[("x-client-authorization", &anon)],
            None,
        ))
        .await;
    assert_eq!(r.status, 401, "{r:?}");

    assert!(!function.is_finished(), "the runtime loop keeps polling");
    function.abort();
}
