//! The tenant-manager's secrets and audit against a real PostgreSQL cluster, over its real HTTP API
//! (served with connect info, as `supactl` serves it): failed admin authentications are audited by
//! fingerprint and rate limited; ciphertexts are bound to their row (a swapped one fails cleanly); a
//! platform database written in the earlier, version-less format is re-sealed at start-up; `Debug`
//! output carries no secret.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use pgcluster::TestCluster;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use supactl_common::crypto::Cipher;
use supactl_common::http_client::HttpClient;
use supactl_common::keys;
use tenant_manager::{Config, TenantManager, WorkerSpec};
use tokio::net::TcpListener;

const ADMIN_KEY: &str = "test-admin-key-0123456789";
const SERVICE_TOKEN: &str = "test-service-token-0123456789";
const ENCRYPTION_KEY: &str = "test-encryption-key";

fn config(cluster: &TestCluster) -> Config {
    let db_url = cluster.url("postgres");
    Config {
        database_url: db_url.clone(),
        admin_key: ADMIN_KEY.into(),
        service_token: SERVICE_TOKEN.into(),
        encryption_key: ENCRYPTION_KEY.into(),
        api_url_template: "http://127.0.0.1:9/p/{ref}".into(),
        local_worker: Some(WorkerSpec::from_url("local", &db_url).unwrap()),
        redis_url: None,
        project_connection_limit: tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
        capacity: tenant_manager::Capacity::default(),
    }
}

/// A tenant-manager over `cluster` on a loopback port; its admin URL.
async fn start(cluster: &TestCluster) -> String {
    let tm = TenantManager::start(config(cluster)).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = tenant_manager::router(tm).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn call(
    method: Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map(|v| v.to_string()).unwrap_or_default();
    let (status, bytes) = HttpClient::new(Duration::from_secs(60))
        .send(b.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    )
}

async fn admin(url: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    call(method, &format!("{url}{path}"), Some(ADMIN_KEY), body).await
}

async fn platform_db(cluster: &TestCluster) -> tokio_postgres::Client {
    let (c, conn) =
        tokio_postgres::connect(&cluster.url("supactl_platform"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    c
}

/// The project's config from the internal endpoint.
async fn internal_config(url: &str, project_ref: &str) -> (StatusCode, Value) {
    call(
        Method::GET,
        &format!("{url}/internal/v1/projects/{project_ref}/config"),
        Some(SERVICE_TOKEN),
        None,
    )
    .await
}

fn fingerprint(key: &str) -> String {
    format!(
        "admin-key:{}",
        &hex::encode(Sha256::digest(key.as_bytes()))[..12]
    )
}

async fn audit(url: &str) -> Vec<Value> {
    let (s, v) = admin(url, Method::GET, "/admin/v1/audit?limit=1000", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn failed_admin_authentication_is_audited_by_fingerprint_and_rate_limited() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url = start(&cluster).await;
    let wrong = "wrong-admin-key-abcdef0123456789";
    let projects = format!("{url}/admin/v1/projects");

    let (s, v) = call(Method::GET, &projects, Some(wrong), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _) = call(Method::GET, &projects, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        Method::POST,
        &projects,
        Some(wrong),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let entries = audit(&url).await;
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e["outcome"] == "unauthorized")
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["method"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            (fingerprint(wrong), "POST".to_string()),
            ("none".to_string(), "GET".to_string()),
            (fingerprint(wrong), "GET".to_string()),
        ],
        "newest first: {entries:?}"
    );
    for e in entries.iter().filter(|e| e["outcome"] == "unauthorized") {
        assert_eq!(e["path"], "/admin/v1/projects", "{e}");
        assert_eq!(e["status"], 401, "{e}");
        assert_eq!(e["client_addr"], "127.0.0.1", "{e}");
        assert_eq!(e["attempts"], 1, "{e}");
    }

    // A flood: every attempt is refused, but only a burst is recorded one by one; the rest are
    // counted into `suppressed` rows, which in the end account for every attempt.
    let flood = 40;
    let started = Instant::now();
    let answers = join_all((0..flood).map(|i| {
        let projects = projects.clone();
        async move {
            call(
                Method::GET,
                &projects,
                Some(&format!("flood-key-{i}")),
                None,
            )
            .await
            .0
        }
    }))
    .await;
    let elapsed = started.elapsed();
    assert!(answers.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    let total = flood + 3;
    let deadline = Instant::now() + Duration::from_secs(60);
    let entries = loop {
        let entries = audit(&url).await;
        let counted: i64 = entries
            .iter()
            .filter(|e| e["outcome"] == "unauthorized" || e["outcome"] == "suppressed")
            .map(|e| e["attempts"].as_i64().unwrap())
            .sum();
        assert!(counted <= total, "{entries:?}");
        if counted == total {
            break entries;
        }
        assert!(
            Instant::now() < deadline,
            "the suppressed attempts were never summarised: {entries:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let one_by_one = entries
        .iter()
        .filter(|e| e["outcome"] == "unauthorized")
        .count() as u64;
    // The limit: a burst of 10, then one record per second (plus one for a partly elapsed second).
    assert!(
        one_by_one <= 10 + elapsed.as_secs() + 1,
        "{one_by_one} rows in {elapsed:?}"
    );
    let summaries: Vec<_> = entries
        .iter()
        .filter(|e| e["outcome"] == "suppressed")
        .collect();
    if one_by_one < total as u64 {
        assert!(!summaries.is_empty(), "{entries:?}");
    }
    for e in &summaries {
        assert_eq!(
            (e["status"].clone(), e["actor"].clone()),
            (json!(401), json!("unrecorded"))
        );
    }

    // No key in clear anywhere in the table.
    let db = platform_db(&cluster).await;
    let rows: Vec<String> = db
        .query("SELECT a::text FROM supactl.audit_log a", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let table = rows.join("\n");
    assert!(!table.contains(wrong) && !table.contains("flood-key-") && !table.contains(ADMIN_KEY));
    assert!(table.contains(&fingerprint(wrong)[10..]), "{table}");

    // A correct key still works, and a mutation still records who made it and from where.
    let (s, v) = admin(
        &url,
        Method::PUT,
        "/admin/v1/placement",
        Some(json!({"strategy": "hash"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let newest = &audit(&url).await[0];
    assert_eq!(
        (
            newest["actor"].clone(),
            newest["outcome"].clone(),
            newest["client_addr"].clone()
        ),
        (
            json!(fingerprint(ADMIN_KEY)),
            json!("success"),
            json!("127.0.0.1")
        )
    );
}

/// Runs the futures concurrently and collects their outputs in order.
async fn join_all<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A project created through the admin API: `(publishable key, secret key)`.
async fn create_project(url: &str, project_ref: &str) -> (String, String) {
    let (s, v) = admin(
        url,
        Method::POST,
        "/admin/v1/projects",
        Some(json!({"name": project_ref, "ref": project_ref})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = |t: &str| {
        v["data"]["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["type"] == t)
            .unwrap()["opaque_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (key("publishable"), key("secret"))
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_does_not_decrypt() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url = start(&cluster).await;
    create_project(&url, "swap-a").await;
    let (b_publishable, b_secret) = create_project(&url, "swap-b").await;
    let (_, a) = internal_config(&url, "swap-a").await;
    let (_, b) = internal_config(&url, "swap-b").await;
    let secrets: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|c| {
            [
                c["data"]["jwt_secrets"][0].as_str().unwrap().to_string(),
                c["data"]["db"]["password"].as_str().unwrap().to_string(),
            ]
        })
        .chain([b_publishable.clone(), b_secret.clone()])
        .collect();

    // Project a's JWT secret and database password moved into b's rows: b's config no longer
    // decrypts, a's (now holding b's ciphertexts) neither; a clean 500, no secret in it.
    let db = platform_db(&cluster).await;
    db.batch_execute(
        "WITH s AS (SELECT project_ref, secret_enc FROM supactl.jwt_secrets WHERE status = 'current')
         UPDATE supactl.jwt_secrets j SET secret_enc = o.secret_enc FROM s o
         WHERE j.status = 'current' AND o.project_ref <> j.project_ref;",
    )
    .await
    .unwrap();
    for project_ref in ["swap-a", "swap-b"] {
        let (s, v) = internal_config(&url, project_ref).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
        assert_eq!(v["code"], "internal_error", "{v}");
        assert!(
            secrets.iter().all(|x| !v.to_string().contains(x.as_str())),
            "{v}"
        );
    }

    // Within one project: its publishable key's ciphertext swapped with its secret key's.
    db.batch_execute(
        "WITH k AS (SELECT id, key_enc FROM supactl.api_keys WHERE project_ref = 'swap-b')
         UPDATE supactl.api_keys a SET key_enc = o.key_enc FROM k o
         WHERE a.project_ref = 'swap-b' AND o.id <> a.id;
         WITH p AS (SELECT ref, db_password FROM supactl.projects)
         UPDATE supactl.projects x SET db_password = o.db_password FROM p o WHERE o.ref <> x.ref;",
    )
    .await
    .unwrap();
    let (s, v) = admin(
        &url,
        Method::GET,
        "/admin/v1/projects/swap-b/api-keys?reveal=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert!(
        secrets.iter().all(|x| !v.to_string().contains(x.as_str())),
        "{v}"
    );
    let (s, v) = admin(&url, Method::GET, "/admin/v1/projects/swap-a/health", None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");

    // The service is still up, and a restart does not take the moved ciphertexts for old-format ones.
    let (s, _) = call(Method::GET, &format!("{url}/health"), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let url = start(&cluster).await;
    let (s, v) = internal_config(&url, "swap-b").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
}

/// Seals the way releases before associated data did: `nonce ‖ AES-256-GCM(SHA-256(key))`.
fn legacy_seal(plaintext: &str) -> Vec<u8> {
    let key = Sha256::digest(ENCRYPTION_KEY.as_bytes());
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&keys::random_base62(12).as_bytes()[..12]);
    let ct = Aes256Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
        .unwrap();
    [&nonce[..], &ct[..]].concat()
}

/// Every ciphertext in the platform database, with where it is.
async fn ciphertexts(db: &tokio_postgres::Client) -> Vec<(String, Vec<u8>)> {
    let sql = "SELECT 'w:' || identifier, admin_password FROM supactl.workers
               UNION ALL SELECT 'p:' || ref, db_password FROM supactl.projects
               UNION ALL SELECT 'k:' || id, key_enc FROM supactl.api_keys
               UNION ALL SELECT 'j:' || id, secret_enc FROM supactl.jwt_secrets
               UNION ALL SELECT 's:' || project_ref || '/' || name, value_enc FROM supactl.project_secrets
               ORDER BY 1";
    db.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn an_old_format_platform_database_is_resealed_at_startup() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let url = start(&cluster).await;
    let (publishable, secret) = create_project(&url, "legacy").await;
    let (s, _) = admin(
        &url,
        Method::POST,
        "/admin/v1/projects/legacy/secrets",
        Some(json!([{"name": "STRIPE_KEY", "value": "stripe-value-0123"}])),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, before) = internal_config(&url, "legacy").await;
    let jwt_secret = before["data"]["jwt_secrets"][0]
        .as_str()
        .unwrap()
        .to_string();
    let db_password = before["data"]["db"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let worker_password = WorkerSpec::from_url("local", &cluster.url("postgres"))
        .unwrap()
        .admin_password;

    // Make the database what today's releases leave behind: every secret in the version-less form
    // without associated data, and the schema before migration 5.
    let db = platform_db(&cluster).await;
    let key_id = |t: &str| format!("SELECT id FROM supactl.api_keys WHERE type = '{t}'");
    let rewrites = [
        (
            "UPDATE supactl.workers SET admin_password = $1".to_string(),
            worker_password,
        ),
        (
            "UPDATE supactl.projects SET db_password = $1".to_string(),
            db_password.clone(),
        ),
        (
            format!(
                "UPDATE supactl.api_keys SET key_enc = $1 WHERE id = ({})",
                key_id("publishable")
            ),
            publishable.clone(),
        ),
        (
            format!(
                "UPDATE supactl.api_keys SET key_enc = $1 WHERE id = ({})",
                key_id("secret")
            ),
            secret.clone(),
        ),
        (
            "UPDATE supactl.jwt_secrets SET secret_enc = $1".to_string(),
            jwt_secret.clone(),
        ),
        (
            "UPDATE supactl.project_secrets SET value_enc = $1".to_string(),
            "stripe-value-0123".to_string(),
        ),
    ];
    for (sql, plain) in &rewrites {
        assert_eq!(
            db.execute(sql.as_str(), &[&legacy_seal(plain)])
                .await
                .unwrap(),
            1,
            "{sql}"
        );
    }
    db.batch_execute(
        "ALTER TABLE supactl.audit_log DROP COLUMN client_addr, DROP COLUMN attempts,
           DROP CONSTRAINT audit_log_outcome_check;
         DELETE FROM supactl.audit_log WHERE outcome NOT IN ('success', 'failure');
         ALTER TABLE supactl.audit_log ADD CONSTRAINT audit_log_outcome_check CHECK (outcome IN ('success', 'failure'));
         DELETE FROM supactl.schema_migrations WHERE version = 5;",
    )
    .await
    .unwrap();
    let legacy = ciphertexts(&db).await;
    assert_eq!(legacy.len(), 6);

    // The upgraded tenant-manager starts, re-seals everything for its row, and serves the same secrets.
    let url = start(&cluster).await;
    let resealed = ciphertexts(&db).await;
    for ((place, old), (place2, new)) in legacy.iter().zip(&resealed) {
        assert_eq!(place, place2);
        assert_ne!(old, new, "{place} was not re-sealed");
        assert_eq!(new[0], supactl_common::crypto::VERSION, "{place}");
    }
    let (s, after) = internal_config(&url, "legacy").await;
    assert_eq!(s, StatusCode::OK, "{after}");
    assert_eq!(after["data"]["jwt_secrets"], json!([jwt_secret]));
    assert_eq!(after["data"]["db"]["password"], json!(db_password));
    let (s, v) = admin(
        &url,
        Method::GET,
        "/admin/v1/projects/legacy/api-keys?reveal=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut revealed: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["opaque_key"].as_str().unwrap())
        .collect();
    revealed.sort();
    let mut expected = vec![publishable.as_str(), secret.as_str()];
    expected.sort();
    assert_eq!(revealed, expected);
    // The worker's password and the project's own role work: the database answers as the project.
    let (_, v) = admin(&url, Method::GET, "/admin/v1/projects/legacy/health", None).await;
    assert_eq!(v["data"]["database"]["healthy"], true, "{v}");
    let secret_row = resealed.iter().find(|(p, _)| p.starts_with("s:")).unwrap();
    assert_eq!(
        Cipher::new(ENCRYPTION_KEY)
            .open_string(
                &secret_row.1,
                b"supactl.project_secrets.value_enc:legacy/STRIPE_KEY"
            )
            .unwrap(),
        "stripe-value-0123"
    );
    // Migration 5 applied over the old schema: failed authentications are audited again.
    let (s, _) = call(Method::GET, &format!("{url}/admin/v1/projects"), None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(audit(&url).await[0]["outcome"], "unauthorized");

    // A second start finds nothing to do (the local worker's row aside: every start registers it
    // again, sealed afresh).
    start(&cluster).await;
    let not_worker = |c: Vec<(String, Vec<u8>)>| {
        c.into_iter()
            .filter(|(place, _)| !place.starts_with("w:"))
            .collect::<Vec<_>>()
    };
    assert_eq!(not_worker(ciphertexts(&db).await), not_worker(resealed));
}

#[test]
fn debug_output_carries_no_secret() {
    let spec = WorkerSpec::from_url(
        "w1",
        "postgres://admin:worker-password-0123@10.0.0.5:5432/postgres",
    )
    .unwrap();
    let config = Config {
        database_url: "postgres://postgres:platform-password-0123@127.0.0.1/postgres".into(),
        admin_key: "admin-key-value-0123".into(),
        service_token: "service-token-value-0123".into(),
        encryption_key: "encryption-key-value-0123".into(),
        api_url_template: "http://127.0.0.1:54321/p/{ref}".into(),
        local_worker: Some(spec.clone()),
        redis_url: Some("redis://:redis-password-0123@127.0.0.1:6379".into()),
        project_connection_limit: tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
        capacity: tenant_manager::Capacity::default(),
    };
    for text in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{spec:?}"),
        format!("{spec:#?}"),
    ] {
        for secret in [
            "worker-password-0123",
            "platform-password-0123",
            "admin-key-value-0123",
            "service-token-value-0123",
            "encryption-key-value-0123",
            "redis-password-0123",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("10.0.0.5") && text.contains("<redacted>"),
            "{text}"
        );
    }
}
