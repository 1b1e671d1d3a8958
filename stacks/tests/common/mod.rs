//! Test harness: a private `moto_server` (the AWS emulator, moto 5.2.5 from a venv) on a free loopback port,
//! and a session pointed at it with dummy credentials and SDK retries off. Nothing leaves this machine: every
//! client gets the emulator's endpoint URL.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use stacks::apply::Timeouts;
use stacks::config::{parse, LoadOptions};
use stacks::{ApplyOptions, AwsOptions, Config, Quirks, Session};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$MOTO_SERVER`, else the venv made by `scripts/moto-venv.sh` (created on first use).
fn moto_server_path() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(find_moto_server).clone()
}

fn find_moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/moto-venv.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/moto-venv.sh");
    assert!(out.status.success(), "scripts/moto-venv.sh failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
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

/// A running emulator, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        dummy_credentials();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(moto_server_path())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let m = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if m.get("/moto-api/").is_some() {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not answer on port {port}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1").then_some(out)
    }

    pub fn aws(&self) -> AwsOptions {
        AwsOptions {
            profile: None,
            region: Some(REGION.into()),
            endpoint_url: Some(self.endpoint()),
            no_retries: true,
        }
    }

    pub async fn session(&self, cfg: Config) -> Session {
        Session::connect(cfg, &self.aws()).await.expect("connect")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's config file, with its placeholders filled in as a user would, then `edit`ed.
pub fn config_from(file: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Config {
    let text = std::fs::read_to_string(workspace_root().join(file)).expect("read config");
    let text = text
        .replace("<your-aws-region>", REGION)
        .replace("<your-aws-account-id>", ACCOUNT)
        .replace("<deployment-date>", "2026-11-26");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    edit(&mut v);
    let loaded = parse(&v.to_string(), file.as_ref(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    loaded.config
}

pub fn test_config() -> Config {
    config_from("config.test.json", |_| {})
}

/// Apply options for the emulator: its known gaps switched on (see aws-emulator.md), short timeouts.
pub fn opts() -> ApplyOptions {
    ApplyOptions {
        force: false,
        // moto 5.2.5: ElastiCache deletes never finish, DeleteCacheSubnetGroup is not implemented
        quirks: Quirks::moto(),
        timeouts: Timeouts {
            network: Duration::from_secs(60),
            database: Duration::from_secs(60),
            cache: Duration::from_secs(60),
        },
    }
}
