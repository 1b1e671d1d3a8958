//! A running `supactl up` in a data directory of its own (free loopback ports, a managed PostgreSQL
//! cluster), stopped with SIGTERM on drop; for the CLI tests that need a live platform.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Up {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub admin_port: u16,
}

impl Up {
    /// Starts `supactl up` with `extra` flags and waits (up to 2 min) for its state file.
    pub fn start(extra: &[&str]) -> Up {
        let dir = tempfile::Builder::new()
            .prefix("supactl-cli-up-")
            .tempdir()
            .unwrap();
        let (port, admin_port, db_port) = (
            pgcluster::free_port(),
            pgcluster::free_port(),
            pgcluster::free_port(),
        );
        let log = std::fs::File::create(dir.path().join("up.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_supactl"))
            .arg("up")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--port", &port.to_string()])
            .args(["--admin-port", &admin_port.to_string()])
            .args(["--db-port", &db_port.to_string()])
            .args(extra)
            .env_remove("SUPACTL_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run supactl up");
        let mut up = Up {
            child,
            dir,
            port,
            admin_port,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !up.data().join("state.json").exists() {
            assert!(
                up.child.try_wait().unwrap().is_none(),
                "supactl up exited: {}",
                up.log()
            );
            assert!(Instant::now() < deadline, "not up: {}", up.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        up
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What `supactl up` wrote to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.log")).unwrap_or_default()
    }

    /// The admin key from the state file.
    pub fn admin_key(&self) -> String {
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.data().join("state.json")).unwrap())
                .unwrap();
        state["admin_key"].as_str().unwrap().to_string()
    }

    /// Runs a `supactl` command against this platform (its data directory names the admin API).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_supactl"))
            .args(args)
            .env("SUPACTL_DATA_DIR", self.data())
            .env_remove("SUPACTL_ADMIN_URL")
            .env_remove("SUPACTL_ADMIN_API_KEY")
            .stdin(Stdio::null())
            .output()
            .expect("run supactl")
    }

    /// SIGTERM, then the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        if let Some(status) = self.child.try_wait().unwrap() {
            return status.code();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap().code()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.stop();
    }
}
