//! The AWS emulator for tests: a private `moto_server` (pinned in `scripts/moto-venv.sh`, made on first use;
//! `$MOTO_SERVER` names another executable) on a free loopback port, killed on drop. Clients reach it
//! through [`MotoServer::endpoint`] with any static credentials; nothing leaves the machine.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running emulator.
pub struct MotoServer {
    child: Child,
    pub port: u16,
}

/// `$MOTO_SERVER`, else the venv's `moto_server` (created once per test binary by the script); its
/// directory also has the venv's `python` (with botocore).
pub fn executable() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(p) = std::env::var("MOTO_SERVER") {
            return PathBuf::from(p);
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/moto-venv.sh");
        let out = Command::new("bash")
            .arg(script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/moto-venv.sh");
        assert!(out.status.success(), "scripts/moto-venv.sh failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

impl MotoServer {
    /// Starts the emulator with `env` (moto's own settings, e.g. `MOTO_ACM_VALIDATION_WAIT=0`) and waits
    /// until it answers (60 s at most).
    pub fn start(env: &[(&str, &str)]) -> MotoServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(executable())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let m = MotoServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if m.get("/moto-api/").is_some() {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not answer on port {port}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The raw answer to `GET path` (HTTP/1.0), None when the emulator does not answer.
    pub fn get(&self, path: &str) -> Option<String> {
        self.request("GET", path)
    }

    /// The raw answer to a body-less `method path` (HTTP/1.0), e.g. `PUT /<bucket>` to create an S3
    /// bucket (moto checks no signature).
    pub fn request(&self, method: &str, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1").then_some(out)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
