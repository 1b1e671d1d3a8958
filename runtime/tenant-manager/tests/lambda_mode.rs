//! The tenant-manager in Lambda mode against real parts: a throwaway PostgreSQL cluster and the AWS
//! emulator (`moto_server` 5.2.5 from the venv of `scripts/moto-venv.sh`) on loopback, reached through
//! aws-config's standard chain exactly as in production (`AWS_ENDPOINT_URL`, `AWS_REGION` and static
//! credentials in the environment).
//!
//! Project create makes `rest-<ref>` (Image, role, VPC, memory, timeout, environment with the project's
//! token and never the service token, tags) and its `AWS_IAM` Function URL, records and returns the URL;
//! a function AWS refuses (a role that does not exist) leaves no database, role, row or function, and
//! neither does a failure after the function and its URL exist (keys refused by a trigger); a same-named
//! function that is not ours is left alone; delete
//! removes URL and function (also when they are already gone); the project token reads its own
//! project's config and nothing else.
//!
//! What moto cannot show: that real Lambda accepts the image and reaches the database from the VPC.
//!
//! The environment is set before any thread exists, so this file holds a single test.

use aws_sdk_lambda::types::{FunctionUrlAuthType, PackageType};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use pgcluster::TestCluster;
use serde_json::{json, Value};
use std::time::Duration;
use supactl_common::http_client::HttpClient;
use supactl_common::tokens::project_token;
use tenant_manager::rest_lambda::{RawRestLambdaSettings, RestLambda, RestLambdaSettings};
use testkit::moto::MotoServer as Moto;

const ADMIN_KEY: &str = "lambda-mode-admin-key-0123456789";
const SERVICE_TOKEN: &str = "lambda-mode-service-token-0123456789";
const ACCOUNT: &str = "123456789012";
const ROLE: &str = "supactl-rest-lambda";
const INTERNAL_URL: &str = "http://tenant-manager.supactl.internal:3001";

#[test]
fn lambda_mode_creates_and_deletes_rest_functions() {
    let moto = Moto::start(&[]);
    // aws-config's standard chain, pointed at the emulator; no profile, no metadata service, no retries.
    for (k, v) in [
        ("AWS_ENDPOINT_URL", moto.endpoint().as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ] {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_PROFILE");
    std::env::remove_var("AWS_SESSION_TOKEN");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(scenario(&moto));
}

fn settings(role: &str) -> RestLambdaSettings {
    RestLambdaSettings::new(RawRestLambdaSettings {
        image_uri: Some(image()),
        role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/{role}")),
        subnets: Some("subnet-0a1b2c3d, subnet-4e5f6a7b".into()),
        security_groups: Some("sg-0123456789abcdef0".into()),
        memory_mb: 512,
        timeout_seconds: 30,
        internal_url: Some(INTERNAL_URL.into()),
        tags: Some("supactl:stack=demo, supactl:env=test".into()),
        name_prefix: Some("rest-".into()),
        log_group: Some("/aws/lambda/demo-test-rest".into()),
    })
    .unwrap()
}

fn image() -> String {
    format!(
        "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/supactl-rest-lambda@sha256:{}",
        "ab".repeat(32)
    )
}

struct Api {
    http: HttpClient,
    url: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let (s, b) = self.http.send(req).await.unwrap();
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }
}

/// Creates the functions' execution role in moto's IAM (CreateFunction checks that it exists) with a
/// raw IAM query request; moto routes it by the credential scope and checks no signature.
async fn create_role(moto: &Moto, http: &HttpClient) {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    })
    .to_string();
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={ROLE}&AssumeRolePolicyDocument={}",
        enc(&policy)
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/", moto.endpoint()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let (s, b) = http.send(req).await.unwrap();
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
}

async fn start_tm(cluster: &TestCluster, lambda: RestLambda) -> String {
    let db_url = cluster.url("postgres");
    let tm = tenant_manager::TenantManager::start_with_rest_lambda(
        tenant_manager::Config {
            database_url: db_url.clone(),
            admin_key: ADMIN_KEY.into(),
            service_token: SERVICE_TOKEN.into(),
            encryption_key: "lambda-mode-encryption-key".into(),
            api_url_template: "http://127.0.0.1:1/p/{ref}".into(),
            local_worker: Some(tenant_manager::WorkerSpec::from_url("local", &db_url).unwrap()),
            project_connection_limit: tenant_manager::DEFAULT_PROJECT_CONNECTION_LIMIT,
            redis_url: None,
            capacity: tenant_manager::Capacity::default(),
        },
        lambda,
    )
    .await
    .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, tenant_manager::router(tm)).await });
    url
}

async fn exists(su: &tokio_postgres::Client, sql: &str, name: &str) -> bool {
    !su.query(sql, &[&name]).await.unwrap().is_empty()
}

async fn scenario(moto: &Moto) {
    let http = HttpClient::new(Duration::from_secs(60));
    create_role(moto, &http).await;
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap();
    let (su, conn) = tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let db_exists = "select 1 from pg_database where datname = $1";
    let role_exists = "select 1 from pg_roles where rolname = $1";

    // The production path: settings validated, the client from aws-config's standard chain.
    let tm = Api {
        url: start_tm(&cluster, RestLambda::from_env(settings(ROLE)).await).await,
        http: HttpClient::new(Duration::from_secs(60)),
    };
    // The test's own view of the emulator, from the same chain.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);

    // 1. Create: function, URL, recorded and returned.
    let (s, v) = tm
        .call(
            Method::POST,
            "/admin/v1/projects",
            ADMIN_KEY,
            Some(json!({"name": "On Lambda", "ref": "lambda-one"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let url = v["data"]["rest_function_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("https://") && url.contains(".lambda-url.us-east-1.on.aws"),
        "{url}"
    );
    let (s, v) = tm
        .call(
            Method::GET,
            "/admin/v1/projects/lambda-one",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["rest_function_url"], json!(url));
    assert_eq!(v["data"]["status"], "ACTIVE_HEALTHY");
    let (s, v) = tm
        .call(
            Method::GET,
            "/internal/v1/projects/lambda-one/config",
            SERVICE_TOKEN,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["data"]["rest_function_url"],
        json!(url),
        "the gateway learns the URL here"
    );

    let f = lambda
        .get_function()
        .function_name("rest-lambda-one")
        .send()
        .await
        .unwrap();
    let c = f.configuration().unwrap();
    assert_eq!(c.package_type(), Some(&PackageType::Image));
    assert_eq!(f.code().unwrap().image_uri(), Some(image().as_str()));
    assert_eq!(
        c.role(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}").as_str())
    );
    let vpc = c.vpc_config().unwrap();
    assert_eq!(vpc.subnet_ids(), ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
    assert_eq!(vpc.security_group_ids(), ["sg-0123456789abcdef0"]);
    assert_eq!(c.memory_size(), Some(512));
    assert_eq!(c.timeout(), Some(30));
    let env = c.environment().unwrap().variables().unwrap();
    assert_eq!(env["SUPACTL_PROJECT_REF"], "lambda-one");
    assert_eq!(env["SUPACTL_TENANT_MANAGER_URL"], INTERNAL_URL);
    let token = env["SUPACTL_PROJECT_TOKEN"].clone();
    assert_eq!(token, project_token(SERVICE_TOKEN, "lambda-one"));
    assert!(
        env.values().all(|v| !v.contains(SERVICE_TOKEN))
            && !env.contains_key("SUPACTL_SERVICE_TOKEN"),
        "the service token never goes into a function's environment: {env:?}"
    );
    let tags = f.tags().unwrap();
    assert_eq!(tags["supactl:project"], "lambda-one");
    assert_eq!(
        tags["supactl:stack"], "demo",
        "the stack's tags from SUPACTL_REST_LAMBDA_TAGS"
    );
    assert_eq!(tags["supactl:env"], "test");
    let u = lambda
        .get_function_url_config()
        .function_name("rest-lambda-one")
        .send()
        .await
        .unwrap();
    assert_eq!(u.auth_type(), &FunctionUrlAuthType::AwsIam);
    assert_eq!(u.function_url(), url);

    // 2. The project token reads its own project's config, and nothing else.
    let (s, v) = tm
        .call(
            Method::POST,
            "/admin/v1/projects",
            ADMIN_KEY,
            Some(json!({"name": "Other", "ref": "lambda-two"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = tm
        .call(
            Method::GET,
            "/internal/v1/projects/lambda-one/config",
            &token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["project_ref"], "lambda-one");
    // Only what verifying the gateway's tokens needs: no data key, no asymmetric private keys.
    assert!(
        v["data"].get("data_key").is_none() && v["data"].get("signing_keys").is_none(),
        "{v}"
    );
    assert!(v["data"]["db"]["password"].is_string());
    for (path, what) in [
        ("/internal/v1/projects/lambda-two/config", "another project's config"),
        (
            "/internal/v1/api-keys/0000000000000000000000000000000000000000000000000000000000000000",
            "key lookups",
        ),
        ("/admin/v1/projects", "the admin API"),
        ("/admin/v1/projects/lambda-one", "the admin API for its own project"),
    ] {
        let (s, v) = tm.call(Method::GET, path, &token, None).await;
        assert!(
            s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN,
            "{what}: {s} {v}"
        );
        assert!(v["data"].is_null(), "{what}: {v}");
    }
    let (s, _) = tm
        .call(
            Method::GET,
            "/internal/v1/projects/lambda-two/config",
            SERVICE_TOKEN,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the service token still reads every project"
    );

    // 3. A function AWS refuses (its role does not exist in IAM): nothing is left behind.
    let bad = Api {
        url: start_tm(
            &cluster,
            RestLambda::from_env(settings("no-such-role")).await,
        )
        .await,
        http: HttpClient::new(Duration::from_secs(60)),
    };
    let (s, v) = bad
        .call(
            Method::POST,
            "/admin/v1/projects",
            ADMIN_KEY,
            Some(json!({"name": "Refused", "ref": "lambda-bad"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["code"], "rest_function_failed", "{v}");
    assert!(
        !v.to_string().contains("no-such-role"),
        "no AWS detail in the answer: {v}"
    );
    let (s, _) = tm
        .call(
            Method::GET,
            "/admin/v1/projects/lambda-bad",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no project row");
    assert!(
        !exists(&su, db_exists, "project_lambda_bad").await,
        "no database"
    );
    assert!(
        !exists(&su, role_exists, "authenticator_lambda_bad").await,
        "no login role"
    );
    let e = lambda
        .get_function()
        .function_name("rest-lambda-bad")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "no function"
    );
    // The ref is free again.
    let (s, v) = tm
        .call(
            Method::POST,
            "/admin/v1/projects",
            ADMIN_KEY,
            Some(json!({"name": "Refused", "ref": "lambda-bad"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // 4. A function of the same name exists already (not ours): create fails, and that function is
    //    left alone (only the steps this create did are undone).
    lambda
        .create_function()
        .function_name("rest-lambda-clash")
        .package_type(PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(image())
                .build(),
        )
        .role(format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}"))
        .send()
        .await
        .unwrap();
    let (s, v) = tm
        .call(
            Method::POST,
            "/admin/v1/projects",
            ADMIN_KEY,
            Some(json!({"name": "Clash", "ref": "lambda-clash"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert!(!exists(&su, db_exists, "project_lambda_clash").await);
    assert!(!exists(&su, role_exists, "authenticator_lambda_clash").await);
    lambda
        .get_function()
        .function_name("rest-lambda-clash")
        .send()
        .await
        .expect("the pre-existing function is still there");

    // 4b. A failure after the function and its URL exist (storing the keys fails: a trigger in the
    //     platform database refuses this project's JWT secret): URL, function, database, role, keys and
    //     row are all undone.
    let (platform, conn) =
        tokio_postgres::connect(&cluster.url("supactl_platform"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    platform
        .batch_execute(
            "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON supactl.jwt_secrets FOR EACH ROW
               WHEN (NEW.project_ref = 'lambda-late') EXECUTE FUNCTION public.refuse();",
        )
        .await
        .unwrap();
    let (s, v) = tm
        .call(
            Method::POST,
            "/admin/v1/projects",
            ADMIN_KEY,
            Some(json!({"name": "Late", "ref": "lambda-late"})),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    let e = lambda
        .get_function()
        .function_name("rest-lambda-late")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "the function created before the failure is deleted"
    );
    assert!(!exists(&su, db_exists, "project_lambda_late").await);
    assert!(!exists(&su, role_exists, "authenticator_lambda_late").await);
    let keys: i64 = platform
        .query_one(
            "SELECT (SELECT count(*) FROM supactl.api_keys WHERE project_ref = 'lambda-late')
                  + (SELECT count(*) FROM supactl.projects WHERE ref = 'lambda-late')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 0, "no keys, no row");
    platform
        .batch_execute("DROP TRIGGER refuse ON supactl.jwt_secrets")
        .await
        .unwrap();

    // 5. Delete removes URL and function, then the database and the rows.
    let (s, v) = tm
        .call(
            Method::DELETE,
            "/admin/v1/projects/lambda-one",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let e = lambda
        .get_function_url_config()
        .function_name("rest-lambda-one")
        .send()
        .await
        .unwrap_err();
    assert!(e
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    let e = lambda
        .get_function()
        .function_name("rest-lambda-one")
        .send()
        .await
        .unwrap_err();
    assert!(e
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    assert!(!exists(&su, db_exists, "project_lambda_one").await);
    let (s, _) = tm
        .call(
            Method::GET,
            "/internal/v1/projects/lambda-one/config",
            &token,
            None,
        )
        .await;
    assert!(s == StatusCode::NOT_FOUND, "{s}");

    // 6. Already gone out of band (someone deleted the function): delete still completes.
    lambda
        .delete_function()
        .function_name("rest-lambda-two")
        .send()
        .await
        .unwrap();
    let (s, v) = tm
        .call(
            Method::DELETE,
            "/admin/v1/projects/lambda-two",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert!(!exists(&su, db_exists, "project_lambda_two").await);
    let (s, _) = tm
        .call(
            Method::DELETE,
            "/admin/v1/projects/lambda-bad",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}
