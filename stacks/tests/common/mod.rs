//! Test harness: a private `moto_server` (the AWS emulator, moto 5.2.5 from a venv, started by
//! [`testkit::moto`]) on a free loopback port, and a session pointed at it with dummy credentials and SDK
//! retries off. Nothing leaves this machine: every client gets the emulator's endpoint URL.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::Duration;

use stacks::apply::Timeouts;
use stacks::config::{parse, LoadOptions};
use stacks::{Action, ApplyOptions, AwsOptions, Config, Quiet, Quirks, Session};
use testkit::moto::MotoServer;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dummy_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // dummy credentials for the emulator; no metadata service, no shared profile
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_SESSION_TOKEN", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/dev/null");
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        std::env::remove_var("AWS_PROFILE");
    });
}

/// A running emulator ([`testkit::moto`]), killed on drop.
pub struct Moto {
    server: MotoServer,
    pub port: u16,
    /// The ISSUED certificate requested for the test domain (one per emulator, so plans stay stable).
    cert: Mutex<Option<String>>,
}

/// The test config's domain (`domain.baseDomain`).
pub const BASE_DOMAIN: &str = "supabase.example.com";

impl Moto {
    pub fn start() -> Moto {
        dummy_credentials();
        // RequestCertificate answers ISSUED at once (default: PENDING_VALIDATION for 60 s)
        let server = MotoServer::start(&[("MOTO_ACM_VALIDATION_WAIT", "0")]);
        Moto {
            port: server.port,
            server,
            cert: Mutex::new(None),
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    pub fn aws(&self) -> AwsOptions {
        AwsOptions {
            profile: None,
            region: Some(REGION.into()),
            endpoint_url: Some(self.endpoint()),
            no_retries: true,
        }
    }

    /// A session for `cfg` with an ISSUED certificate for the test domain in its config and the runtime images
    /// (`latest`) in ECR: what a user has after `supactl push --env test`.
    pub async fn session(&self, cfg: Config) -> Session {
        let s = self.session_without_images(cfg).await;
        push_images(&s, "latest", 1).await;
        s.clients.log.clear();
        s
    }

    /// A session whose config names the emulator's certificate, with nothing pushed to ECR.
    pub async fn session_without_images(&self, mut cfg: Config) -> Session {
        cfg.compute.certificate_arn = self.certificate().await;
        let s = Session::connect(cfg, &self.aws()).await.expect("connect");
        s.clients.log.clear();
        s
    }

    /// Requests (once per emulator) an ISSUED certificate for `*.<BASE_DOMAIN>` and `<BASE_DOMAIN>`.
    pub async fn certificate(&self) -> String {
        if let Some(a) = self.cert.lock().unwrap().clone() {
            return a;
        }
        // through the engine's clients: the CLI tests share this file and have no aws-sdk dependency
        let s = Session::connect(test_config(), &self.aws())
            .await
            .expect("connect");
        let arn = s
            .clients
            .acm
            .request_certificate()
            .domain_name(format!("*.{BASE_DOMAIN}"))
            .subject_alternative_names(format!("*.{BASE_DOMAIN}"))
            .subject_alternative_names(BASE_DOMAIN)
            .validation_method("DNS".into())
            .send()
            .await
            .expect("request certificate")
            .certificate_arn()
            .unwrap()
            .to_string();
        *self.cert.lock().unwrap() = Some(arn.clone());
        arn
    }
}

/// A fake image manifest whose digest (the emulator hashes the layer digests) differs per image and generation.
pub fn manifest(image: &str, generation: u32) -> String {
    let hex: String = format!("{image}-{generation}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let layer = format!("{hex:0>64}");
    let layer = &layer[layer.len() - 64..];
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{}", "c".repeat(64)), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": format!("sha256:{layer}"), "size": 1}]
    })
    .to_string()
}

/// What `supactl push --env` does, with fake manifests: creates the stack's ECR repositories (through the
/// engine, as push does) and puts one image per repository under `tag`. Returns `image → digest`.
pub async fn push_images(s: &Session, tag: &str, generation: u32) -> BTreeMap<String, String> {
    s.ensure_repositories(&Quiet, opts())
        .await
        .expect("create the ECR repositories");
    let mut out = BTreeMap::new();
    for image in stacks::compute::REPOSITORIES {
        let repo = stacks::kinds::ecr::repository_name(&s.config, image);
        let r = s
            .clients
            .ecr
            .put_image()
            .repository_name(&repo)
            .image_manifest(manifest(image, generation))
            .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
            .image_tag(tag)
            .send()
            .await;
        if let Err(e) = &r {
            // pushed before: the same manifest under the same tag
            let already = e
                .as_service_error()
                .is_some_and(|e| e.is_image_already_exists_exception());
            assert!(already, "put image: {e:?}");
        }
        let d = s
            .clients
            .ecr
            .describe_images()
            .repository_name(&repo)
            .send()
            .await
            .expect("describe images");
        let detail = d
            .image_details()
            .iter()
            .find(|i| i.image_tags().iter().any(|t| t == tag))
            .expect("the image just pushed");
        out.insert(
            image.to_string(),
            detail.image_digest().unwrap().to_string(),
        );
    }
    out
}

/// For the CLI tests (synchronous): seeds the emulator as [`Moto::session`] does and returns the certificate
/// ARN to write into the config file.
pub fn seed_blocking(moto: &Moto) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s = moto.session(test_config()).await;
        s.config.compute.certificate_arn.clone()
    })
}

/// The repository's config file, with its placeholders filled in as a user would, then `edit`ed.
pub fn config_from(file: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Config {
    let text = std::fs::read_to_string(workspace_root().join(file)).expect("read config");
    let text = fill_placeholders(&text, PLACEHOLDER_CERT);
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    edit(&mut v);
    let loaded = parse(&v.to_string(), file.as_ref(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    loaded.config
}

/// A well-formed certificate ARN for configs parsed before the emulator's certificate exists
/// ([`Moto::session`] puts the real one in).
pub const PLACEHOLDER_CERT: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";

/// The `<…>` placeholders of the repository's config files filled in as a user would.
pub fn fill_placeholders(text: &str, cert: &str) -> String {
    text.replace("<your-aws-region>", REGION)
        .replace("<your-aws-account-id>", ACCOUNT)
        .replace("<deployment-date>", "2026-11-26")
        .replace("<your-base-domain>", BASE_DOMAIN)
        .replace("<your-acm-certificate-arn>", cert)
}

pub fn test_config() -> Config {
    config_from("config.test.json", |_| {})
}

/// Apply options for the emulator: its known gaps switched on (see aws-emulator.md), short timeouts.
pub fn opts() -> ApplyOptions {
    ApplyOptions {
        force: false,
        // moto 5.2.5: ElastiCache deletes never finish, DeleteCacheSubnetGroup is not implemented, ECS service
        // deployments are never refreshed
        quirks: Quirks::moto(),
        timeouts: Timeouts {
            network: Duration::from_secs(60),
            database: Duration::from_secs(60),
            cache: Duration::from_secs(60),
            service: Duration::from_secs(60),
            lambda_network: Duration::from_secs(60),
        },
    }
}

/// A plan's pending changes as `(id, action, ["field: old -> new"])` (no fields for creates).
pub fn pending(plan: &stacks::Plan) -> Vec<(String, Action, Vec<String>)> {
    plan.pending()
        .map(|c| {
            (
                c.id.to_string(),
                c.action,
                c.fields
                    .iter()
                    .filter(|_| c.action != Action::Create)
                    .map(|f| {
                        format!(
                            "{}: {} -> {}",
                            f.field,
                            f.old.as_deref().unwrap_or("-"),
                            f.new.as_deref().unwrap_or("-")
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}
