//! TLS to PostgreSQL against real clusters that serve TLS (`ssl = on`, pg_hba.conf `hostssl` only) with a
//! certificate from a CA made in the test: what each sslmode verifies, how a worker registration with
//! wrong TLS settings is refused, and the whole platform (tenant-manager, gateway, REST and auth) serving
//! a project over TLS. And Redis over TLS (`redis-server` with a certificate from a test CA): verified.

use http::{Method, StatusCode};
use pgcluster::TestCluster;
use serde_json::{json, Value};
use std::time::Duration;
use supactl_common::invalidation::Publisher;
use supactl_common::pg;
use supactl_common::pg_tls::{PgTls, SslMode};
use testkit::tls::TestCa;
use testkit::{listen, ControlPlane};

fn tls(sslmode: SslMode, ca: Option<&TestCa>) -> PgTls {
    PgTls {
        sslmode,
        ssl_root_cert: ca.map(|c| c.cert_pem.clone()),
    }
}

/// Connects and answers whether the session is encrypted, or the error's text.
async fn session_ssl(cfg: &tokio_postgres::Config, tls: &PgTls) -> Result<bool, String> {
    let c = pg::connect(cfg, tls)
        .await
        .map_err(|e| pg::connect_error(&e, tls))?;
    let row = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn each_sslmode_verifies_what_libpq_verifies() {
    let ca = TestCa::new("right-ca");
    let wrong = TestCa::new("wrong-ca");
    let server = ca.server_cert(&["127.0.0.1", "localhost"]);
    let cluster = tokio::task::spawn_blocking(move || {
        TestCluster::start_with_ssl(&server.cert_pem, &server.key_pem, true)
    })
    .await
    .unwrap();
    let url = cluster.url("postgres");
    let by_ip: tokio_postgres::Config = url.parse().unwrap();
    // the same server, expected to be named db.other.example (its certificate names 127.0.0.1 and localhost)
    let mut other_name: tokio_postgres::Config = url
        .replace("127.0.0.1", "db.other.example")
        .parse()
        .unwrap();
    other_name.hostaddr("127.0.0.1".parse().unwrap());

    // the right CA and host: encrypted
    assert_eq!(
        session_ssl(&by_ip, &tls(SslMode::VerifyFull, Some(&ca))).await,
        Ok(true)
    );
    assert_eq!(
        session_ssl(&by_ip, &tls(SslMode::VerifyCa, Some(&ca))).await,
        Ok(true)
    );

    // another CA, or the built-in Amazon RDS bundle: refused, saying why
    for t in [
        tls(SslMode::VerifyFull, Some(&wrong)),
        tls(SslMode::VerifyCa, Some(&wrong)),
        tls(SslMode::VerifyFull, None),
    ] {
        let e = session_ssl(&by_ip, &t).await.unwrap_err();
        assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
        assert!(e.contains(&format!("sslmode {}", t.sslmode)), "{e}");
    }
    let e = session_ssl(&by_ip, &tls(SslMode::VerifyFull, None))
        .await
        .unwrap_err();
    assert!(e.contains("the built-in Amazon RDS bundle"), "{e}");

    // a certificate for another host name: verify-full refuses it, verify-ca accepts it
    let e = session_ssl(&other_name, &tls(SslMode::VerifyFull, Some(&ca)))
        .await
        .unwrap_err();
    assert!(e.contains("not valid for name \"db.other.example\""), "{e}");
    assert_eq!(
        session_ssl(&other_name, &tls(SslMode::VerifyCa, Some(&ca))).await,
        Ok(true)
    );

    // require encrypts without verifying anything: even a certificate from another CA passes
    assert_eq!(
        session_ssl(&by_ip, &tls(SslMode::Require, Some(&wrong))).await,
        Ok(true)
    );

    // disable against a server that takes TLS only: refused, with what to do
    let e = session_ssl(&by_ip, &PgTls::disabled()).await.unwrap_err();
    assert!(e.contains("no encryption"), "{e}");
    assert!(
        e.contains("accepts only TLS connections") && e.contains("verify-full"),
        "{e}"
    );
}

/// The superuser password of a test cluster, from its URL.
fn password(cp: &ControlPlane) -> String {
    let cfg: tokio_postgres::Config = cp.db.cluster.url("postgres").parse().unwrap();
    String::from_utf8(cfg.get_password().unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn workers_carry_their_tls_settings_and_wrong_ones_are_refused_at_registration() {
    let cp = ControlPlane::start_tls("http://127.0.0.1:9/p/{ref}").await;
    let ca = cp.db.ca.as_ref().unwrap();
    let wrong = TestCa::new("wrong-ca");
    let register = |identifier: &str, extra: Value| {
        let mut body = json!({
            "identifier": identifier, "host": "127.0.0.1", "port": cp.db.cluster.cluster.port(),
            "admin_password": password(&cp),
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        cp.admin(Method::POST, "/admin/v1/workers", Some(body))
    };
    let refused = |(s, v): (StatusCode, Value), wanted: &str| {
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let m = v["message"].as_str().unwrap_or_default();
        assert!(m.contains(wanted), "{m}");
    };

    // plain TCP to a server that takes TLS only
    refused(
        register("plain", json!({})).await,
        "accepts only TLS connections",
    );
    // a certificate from another CA
    refused(
        register(
            "wrong-ca",
            json!({"sslmode": "verify-full", "ssl_root_cert": wrong.cert_pem}),
        )
        .await,
        "UnknownIssuer",
    );
    refused(
        register(
            "garbage",
            json!({"sslmode": "verify-full", "ssl_root_cert": "not pem"}),
        )
        .await,
        "ssl_root_cert: no CA certificate found",
    );
    refused(
        register("prefer", json!({"sslmode": "prefer"})).await,
        "sslmode: prefer falls back to plain text",
    );

    let (s, v) = register(
        "tls",
        json!({"sslmode": "verify-full", "ssl_root_cert": ca.cert_pem}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["data"]["sslmode"], "verify-full");
    assert_eq!(v["data"]["ssl_root_cert"], ca.cert_pem.as_str());
    // changing the TLS settings tests the connection again
    let id = v["data"]["id"].as_i64().unwrap();
    let path = format!("/admin/v1/workers/{id}");
    refused(
        cp.admin(Method::PATCH, &path, Some(json!({"sslmode": "disable"})))
            .await,
        "accepts only TLS connections",
    );
    let (s, v) = cp
        .admin(Method::PATCH, &path, Some(json!({"sslmode": "verify-ca"})))
        .await;
    assert_eq!(
        (s, v["data"]["sslmode"].as_str()),
        (StatusCode::OK, Some("verify-ca")),
        "{v}"
    );
}

#[tokio::test]
async fn the_platform_serves_a_project_over_tls_end_to_end() {
    let (gw_l, gateway_url) = listen().await;
    let template = format!("{gateway_url}/p/{{ref}}");
    let cp = ControlPlane::start_tls(&template).await;
    // What `supactl up` runs: REST and auth behind the gateway, the change hook registered.
    cp.serve_data_plane(gw_l, &template);

    // provisioning and the SQL endpoint: the tenant-manager's admin connections to the worker
    let p = cp.create_project("Tls", "tlsref").await;
    let api_url = p["api_url"].as_str().unwrap().to_string();
    let key = |t: &str| {
        p["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["type"] == t)
            .unwrap()["opaque_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (secret, anon) = (key("secret"), key("publishable"));
    let (s, v) = cp
        .admin(
            Method::POST,
            "/admin/v1/projects/tlsref/database/query",
            Some(json!({"query": "create table notes (id serial primary key, body text); grant all on notes to anon; grant usage on sequence notes_id_seq to anon"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // the data plane learns the worker's TLS settings from the project's config
    let auth_header = format!("Bearer {}", cp.service_token);
    let (s, v) = cp
        .call(
            Method::GET,
            &format!("{}/internal/v1/projects/tlsref/config", cp.admin_url),
            &[("authorization", &auth_header)],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["db"]["sslmode"], "verify-full");
    let role = v["data"]["db"]["user"].as_str().unwrap().to_string();

    // REST and auth through the gateway, on the project's own pools
    let cp = &cp;
    let rest_call = |method: Method, path: &str, key: &str, body: Option<Value>| {
        let headers = [
            ("apikey", key.to_string()),
            ("content-type", "application/json".to_string()),
            ("prefer", "return=representation".to_string()),
        ];
        let url = format!("{api_url}/rest/v1/{path}");
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            cp.call(method, &url, &h, body).await
        }
    };
    let (s, v) = rest_call(
        Method::POST,
        "notes",
        &anon,
        Some(json!({"body": "over tls"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = rest_call(Method::GET, "notes?select=body", &secret, None).await;
    assert_eq!((s, v), (StatusCode::OK, json!([{"body": "over tls"}])));
    let (s, v) = cp
        .call(
            Method::POST,
            &format!("{api_url}/auth/v1/signup"),
            &[("apikey", &anon), ("content-type", "application/json")],
            Some(json!({"email": "tls@example.com", "password": "correct-horse-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // the project role's sessions (REST's and auth's pools) are encrypted, and so is every other one
    let su = cp.connect("postgres").await;
    let row = su
        .query_one(
            "SELECT count(*) FILTER (WHERE a.usename = $1), count(*) FILTER (WHERE a.usename = $1 AND s.ssl),
                    count(*) FILTER (WHERE NOT s.ssl)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'client backend'",
            &[&role],
        )
        .await
        .unwrap();
    let (project_sessions, encrypted, plain): (i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2));
    assert!(
        project_sessions >= 2,
        "{project_sessions} sessions of {role}"
    );
    assert_eq!((encrypted, plain), (project_sessions, 0));
}

/// A `redis-server` serving TLS only, with the last server certificate `ca` made; killed on drop.
struct RedisTls {
    child: std::process::Child,
    port: u16,
}

impl RedisTls {
    fn start(ca: &TestCa) -> RedisTls {
        let (cert, key) = ca.server_files();
        let port = pgcluster::free_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(ca.cert_path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run redis-server (apt-get install redis-server)");
        // killed on drop, a panic below included
        let redis = RedisTls { child, port };
        // bounded wait for the listener
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on {port}");
    }
}

impl Drop for RedisTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn redis_over_tls_verifies_the_server_and_refuses_insecure() {
    // as the binary does (two rustls providers are compiled into this workspace)
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = TestCa::new("redis-ca");
    ca.server_cert(&["127.0.0.1", "localhost"]);
    let redis = RedisTls::start(&ca);
    let url = format!("rediss://127.0.0.1:{}", redis.port);

    // a certificate from a CA that is not among the roots: refused
    let e = Publisher::connect(&url).await.err().unwrap().to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // turning verification off: refused
    let e = Publisher::connect(&format!("{url}/#insecure"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("#insecure turns off certificate verification"),
        "{e}"
    );
    // with the CA among the roots (the images point SSL_CERT_FILE at their bundle): published
    std::env::set_var("SSL_CERT_FILE", ca.cert_path());
    let p = Publisher::connect(&url).await.unwrap();
    p.publish("tlsref").await.unwrap();
}
