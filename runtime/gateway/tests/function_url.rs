//! REST on Lambda through the gateway: projects whose config names a Function URL get their `/rest/v1`
//! requests forwarded there, signed with SigV4 (`aws-sigv4`), the minted JWT in `X-Supactl-Authorization`.
//!
//! A STAND-IN replaces one part: the Function URL itself is a loopback HTTP listener of this test that
//! records what it receives and answers canned responses, because Lambda Function URLs cannot run here
//! (and moto's Invoke of Image functions is not implemented). Everything else is real: PostgreSQL, the
//! tenant-manager's internal endpoint (the URL is recorded in the platform database as Lambda mode
//! records it), the gateway over a real socket, and the signature is checked against an independent
//! implementation: **botocore's `SigV4Auth`** (Python, from the moto venv of `scripts/moto-venv.sh`)
//! computing the Authorization header for the same method, URL, headers, body, credentials and time.

mod common;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use common::Platform;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supactl_common::jwt;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLE-session-token/with+odd=chars";
const REGION: &str = "eu-central-1";

/// A request as the stand-in Function URL received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query exactly as sent.
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The stand-in Function URL (see the file docs): records the request, then answers by path.
async fn function_url(State(log): State<Log>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers.clone(),
        body,
    });
    match parts.uri.path() {
        // A Lambda-level failure (the function crashed): AWS's text answer with its error type.
        "/crash" => (
            StatusCode::BAD_GATEWAY,
            [
                ("content-type", "text/plain"),
                ("x-amzn-errortype", "Function.Unhandled"),
            ],
            "Internal Server Error: stack trace with secrets",
        )
            .into_response(),
        // IAM refused the signature.
        "/forbidden" => (
            StatusCode::FORBIDDEN,
            [
                ("content-type", "application/json"),
                ("x-amzn-errortype", "AccessDeniedException"),
            ],
            r#"{"Message":"Forbidden"}"#,
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::OK.into_response()
        }
        // What the REST engine answers: a PostgREST error (JSON) passes through as it is.
        "/missing" => (
            StatusCode::NOT_FOUND,
            [("content-type", "application/json; charset=utf-8")],
            r#"{"code":"PGRST205","message":"Could not find the table 'public.missing' in the schema cache","details":null,"hint":null}"#,
        )
            .into_response(),
        _ => {
            let mut res = (
                StatusCode::PARTIAL_CONTENT,
                r#"[{"id":1,"title":"write the lambda"}]"#,
            )
                .into_response();
            let h = res.headers_mut();
            h.insert("content-type", "application/json; charset=utf-8".parse().unwrap());
            h.insert("content-range", "0-0/2".parse().unwrap());
            h.insert("preference-applied", "count=exact".parse().unwrap());
            h.insert("location", "/todos?id=eq.1".parse().unwrap());
            h.append("set-cookie", "a=1; Path=/".parse().unwrap());
            h.append("set-cookie", "b=2; Path=/".parse().unwrap());
            h.insert("x-amzn-requestid", "0f1e2d3c".parse().unwrap());
            h.insert("x-amzn-trace-id", "Root=1-abc".parse().unwrap());
            res
        }
    }
}

/// The moto venv's Python (botocore).
fn venv_python() -> PathBuf {
    testkit::moto::executable().with_file_name("python")
}

/// botocore's SigV4Auth (service `lambda`) for this request, at the time of its X-Amz-Date.
const BOTOCORE_SIGN: &str = r#"
import base64, datetime, json, sys
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
i = json.load(sys.stdin)
when = datetime.datetime.strptime(i["amz_date"], "%Y%m%dT%H%M%SZ")
botocore.auth.get_current_datetime = lambda *a, **k: when
req = AWSRequest(method=i["method"], url=i["url"], headers=i["headers"], data=base64.b64decode(i["body"]))
SigV4Auth(Credentials(i["access_key"], i["secret_key"], i["token"]), "lambda", i["region"]).add_auth(req)
print(req.headers["Authorization"])
"#;

fn botocore_authorization(python: &PathBuf, seen: &Seen, port: u16) -> String {
    // The headers the gateway signed, as received; botocore adds X-Amz-Date and X-Amz-Security-Token
    // itself from the time and the credentials.
    let mut headers = serde_json::Map::new();
    for name in ["host", "content-type", "x-supactl-authorization"] {
        if let Some(v) = seen.headers.get(name) {
            headers.insert(name.into(), json!(v.to_str().unwrap()));
        }
    }
    let input = json!({
        "method": seen.method,
        "url": format!("http://127.0.0.1:{port}{}", seen.target),
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&seen.body),
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "token": SESSION_TOKEN,
        "region": REGION,
        "amz_date": seen.headers["x-amz-date"].to_str().unwrap(),
    });
    let mut child = Command::new(python)
        .args(["-c", BOTOCORE_SIGN])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the venv's python");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore signing failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn set_function_url(p: &Platform, project_ref: &str, url: &str) {
    let (db, conn) =
        tokio_postgres::connect(&p.db.cluster.url("supactl_platform"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    let n = db
        .execute(
            "UPDATE supactl.projects SET rest_function_name = $2, rest_function_url = $3 WHERE ref = $1",
            &[&project_ref, &format!("rest-{project_ref}"), &url],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
}

async fn send(
    p: &Platform,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    // The platform's client returns no headers: a plain hyper client here.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let res = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .unwrap()
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    let _ = &p.http;
    (parts.status, parts.headers, body)
}

#[tokio::test]
async fn rest_on_lambda_is_signed_with_sigv4_and_keeps_responses() {
    let python = tokio::task::spawn_blocking(venv_python).await.unwrap();

    // The stand-in Function URL.
    let log: Log = Arc::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let app = axum::Router::new()
        .fallback(function_url)
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(l, app).await });

    let credentials = Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        Some(SESSION_TOKEN.to_string()),
        None,
        "test",
    );
    let function_urls = gateway::FunctionUrls::new(
        SharedCredentialsProvider::new(credentials),
        gateway::FunctionUrlConfig {
            // A loopback host names no region: the configured one (AWS_REGION) is used.
            region: Some(REGION.into()),
            timeout: Duration::from_secs(2),
            ..gateway::FunctionUrlConfig::default()
        },
    )
    .unwrap();
    let p = Platform::start_with(Some(function_urls)).await;
    let project = p.create("fnurl").await;
    set_function_url(
        &p,
        &project.project_ref,
        &format!("http://127.0.0.1:{port}/"),
    )
    .await;
    let secret = p.jwt_secret(&project).await;
    let rest = format!("{}/rest/v1", project.api_url);

    // 1. A write with a body, a PostgREST query with characters SigV4 encodes, and headers a client
    //    must not be able to set (they are dropped or replaced).
    let body = r#"{"title":"ship it","tags":["a+b","ü"]}"#;
    let (status, headers, got) = send(
        &p,
        Method::POST,
        &format!("{rest}/todos?select=id,title&title=like.*cold*&order=id.desc"),
        &[
            ("apikey", &project.secret),
            ("content-type", "application/json"),
            ("prefer", "return=representation,count=exact"),
            ("x-supactl-authorization", "Bearer forged"),
            ("x-amz-security-token", "forged"),
            ("x-amz-date", "20000101T000000Z"),
        ],
        body,
    )
    .await;

    // The response is the function's: status, every header that matters (several Set-Cookie too), body;
    // AWS's own x-amzn-* headers stay behind.
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got, r#"[{"id":1,"title":"write the lambda"}]"#);
    assert_eq!(headers["content-range"], "0-0/2");
    assert_eq!(headers["preference-applied"], "count=exact");
    assert_eq!(headers["location"], "/todos?id=eq.1");
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
    assert!(headers.get("x-amzn-requestid").is_none());
    assert!(headers.get("x-amzn-trace-id").is_none());
    assert!(
        headers.get("access-control-allow-origin").is_some(),
        "CORS is the gateway's"
    );

    // What the function received.
    let seen = log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.target,
        "/todos?select=id%2Ctitle&title=like.%2Acold%2A&order=id.desc"
    );
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(seen.headers["host"], format!("127.0.0.1:{port}").as_str());
    assert_eq!(seen.headers["prefer"], "return=representation,count=exact");
    assert_eq!(seen.headers["x-amz-security-token"], SESSION_TOKEN);
    assert_ne!(seen.headers["x-amz-date"], "20000101T000000Z");
    assert_eq!(seen.headers["x-supactl-project"], "fnurl");
    // The minted JWT, in its own header, never the client's; `apikey` is not passed on.
    assert!(seen.headers.get("apikey").is_none());
    let jwt_header = seen.headers["x-supactl-authorization"].to_str().unwrap();
    assert_eq!(
        seen.headers
            .get_all("x-supactl-authorization")
            .iter()
            .count(),
        1
    );
    let token = jwt_header.strip_prefix("Bearer ").unwrap();
    let claims = jwt::verify(token, &[secret.as_bytes()], jwt::now()).unwrap();
    assert_eq!(claims["role"], "service_role");
    assert_eq!(claims["ref"], "fnurl");
    // Authorization is the SigV4 signature over host, content-type, the JWT header, the date, the
    // session token and the payload's SHA-256, for service lambda in the configured region.
    let authorization = seen.headers["authorization"].to_str().unwrap();
    let date = &seen.headers["x-amz-date"].to_str().unwrap()[..8];
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{date}/{REGION}/lambda/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-supactl-authorization, \
             Signature="
        )),
        "{authorization}"
    );
    // The independent check: botocore signs the same request to the same header.
    let expected = tokio::task::spawn_blocking({
        let (python, seen) = (python.clone(), seen.clone());
        move || botocore_authorization(&python, &seen, port)
    })
    .await
    .unwrap();
    assert_eq!(authorization, expected);

    // 2. A GET with no body, `+` (a space to the engine), a percent-encoded plus and non-ASCII, with a
    //    user-less publishable key (anon).
    let (status, _, _) = send(
        &p,
        Method::GET,
        &format!("{rest}/todos?title=eq.a+b&note=eq.1%2B1&name=eq.%C3%BC&select=*"),
        &[("apikey", &project.anon)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let seen = log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        seen.target,
        "/todos?title=eq.a%20b&note=eq.1%2B1&name=eq.%C3%BC&select=%2A"
    );
    assert!(seen.headers.get("content-type").is_none());
    let claims = jwt::verify(
        seen.headers["x-supactl-authorization"]
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap(),
        &[secret.as_bytes()],
        jwt::now(),
    )
    .unwrap();
    assert_eq!(claims["role"], "anon");
    let authorization = seen.headers["authorization"].to_str().unwrap().to_string();
    assert!(
        authorization.contains(
            "SignedHeaders=host;x-amz-date;x-amz-security-token;x-supactl-authorization,"
        ),
        "{authorization}"
    );
    let expected = tokio::task::spawn_blocking({
        let (python, seen) = (python.clone(), seen.clone());
        move || botocore_authorization(&python, &seen, port)
    })
    .await
    .unwrap();
    assert_eq!(authorization, expected);

    // 3. The REST engine's own errors pass through as they are (JSON, its status).
    let (status, headers, got) = send(
        &p,
        Method::GET,
        &format!("{rest}/missing"),
        &[("apikey", &project.anon)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&got).unwrap()["code"],
        "PGRST205"
    );

    // 4. Lambda-level failures become a clear JSON 502/504 that leaks nothing.
    for (path, want, code) in [
        ("/crash", StatusCode::BAD_GATEWAY, "rest_function_failed"),
        (
            "/forbidden",
            StatusCode::BAD_GATEWAY,
            "rest_function_failed",
        ),
        (
            "/slow",
            StatusCode::GATEWAY_TIMEOUT,
            "rest_function_timeout",
        ),
    ] {
        let (status, headers, got) = send(
            &p,
            Method::GET,
            &format!("{rest}{path}"),
            &[("apikey", &project.anon)],
            "",
        )
        .await;
        assert_eq!(status, want, "{path}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(v["code"], code, "{path}: {v}");
        let text = String::from_utf8_lossy(&got);
        assert!(
            !text.contains("stack trace") && !text.contains("Forbidden"),
            "{text}"
        );
    }

    // 5. A function that cannot be reached at all (nothing listens): 502.
    let down = p.create("fnurl-down").await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    set_function_url(
        &p,
        &down.project_ref,
        &format!("http://127.0.0.1:{closed}/"),
    )
    .await;
    let (status, _, got) = send(
        &p,
        Method::GET,
        &format!("{}/rest/v1/todos", down.api_url),
        &[("apikey", &down.anon)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let v: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(v["code"], "rest_function_unavailable", "{v}");

    // 6. Keys still decide before anything is forwarded: no key, no call.
    let before = log.lock().unwrap().len();
    let (status, _, _) = send(&p, Method::GET, &format!("{rest}/todos"), &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(
        &p,
        Method::GET,
        &format!("{rest}/todos"),
        &[("apikey", &down.anon)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another project's key");
    assert_eq!(log.lock().unwrap().len(), before);

    // 7. Every call counted by outcome, IAM's refusal as a SigV4 error (this process's metrics).
    let text = supactl_common::metrics::metrics().render();
    let count = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        count(r#"supactl_lambda_invocations_total{outcome="ok"}"#) >= 3.0,
        "{text}"
    );
    for outcome in ["function_error", "rejected", "timeout", "unreachable"] {
        let series = format!(r#"supactl_lambda_invocations_total{{outcome="{outcome}"}}"#);
        assert!(count(&series) >= 1.0, "{series}: {text}");
    }
    assert!(
        count(r#"supactl_lambda_sigv4_errors_total{kind="rejected"}"#) >= 1.0,
        "{text}"
    );
    assert!(
        count("supactl_lambda_invocation_duration_seconds_count") >= 7.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_gateway_without_the_function_url_upstream_answers_502() {
    let p = Platform::start().await;
    let project = p.create("fnurl-none").await;
    set_function_url(
        &p,
        &project.project_ref,
        "https://abc.lambda-url.us-east-1.on.aws/",
    )
    .await;
    let (status, _, got) = send(
        &p,
        Method::GET,
        &format!("{}/rest/v1/todos", project.api_url),
        &[("apikey", &project.anon)],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let v: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(v["code"], "rest_function_unavailable", "{v}");
}
