//! A PostgreSQL cluster managed with the system's server binaries (`initdb`, `pg_ctl`): created on first
//! use, started on loopback (clearing what a killed server left behind), restarted by a [`Supervisor`]
//! when it dies, stopped on request. `supactl up` keeps its cluster in its data directory; tests start a
//! throwaway one with [`TestCluster`].
//!
//! PostgreSQL refuses to run as root, so when the caller is root the cluster runs as an unprivileged
//! system user (`supactl`, created when missing) that owns the cluster directory. This crate only runs
//! those programs and reads `/proc`; it never connects to the server.

mod process;
mod supervise;

pub use process::Leftovers;
pub use supervise::{Backoff, Event, Supervisor};

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The system user a root-run cluster belongs to.
pub const CLUSTER_USER: &str = "supactl";
/// The cluster's superuser.
pub const SUPERUSER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("PostgreSQL server binaries not found (looked for initdb and pg_ctl in {0}); install them with `apt-get install postgresql` or set SUPACTL_PG_BIN to their directory")]
    BinariesMissing(String),
    #[error("port {0} on 127.0.0.1 is already in use; pick another with --db-port or stop what is listening there")]
    PortTaken(u16),
    #[error("the cluster user `{user}` cannot reach {path}: {why}; choose a data directory under /var/lib or /tmp, or make its parents traversable (chmod o+x)")]
    Unreachable {
        user: String,
        path: String,
        why: String,
    },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The user the cluster's processes run as: none (the current user) or an unprivileged one.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A cluster in a directory, listening on 127.0.0.1:`port`.
#[derive(Clone)]
pub struct Cluster {
    bin: PathBuf,
    data_dir: PathBuf,
    port: u16,
    password: String,
    run_as: Option<RunAs>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bin", &self.bin)
            .field("data_dir", &self.data_dir)
            .field("port", &self.port)
            .field("password", &"<redacted>")
            .field("run_as", &self.run_as)
            .finish()
    }
}

impl Cluster {
    /// Opens the cluster in `data_dir` (running `initdb` when it holds none yet) with `password` for the
    /// superuser. The password is only applied by `initdb`; an existing cluster keeps its own.
    pub fn open(data_dir: &Path, port: u16, password: &str) -> Result<Cluster, ClusterError> {
        let bin = find_bin_dir()?;
        let run_as = if is_root() {
            Some(ensure_cluster_user()?)
        } else {
            None
        };
        fs::create_dir_all(data_dir)?;
        let data_dir = data_dir.canonicalize()?;
        let cluster = Cluster {
            bin,
            data_dir,
            port,
            password: password.to_string(),
            run_as,
        };
        cluster.prepare_dir()?;
        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A libpq URL for `dbname` as the superuser.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{dbname}",
            self.password, self.port
        )
    }

    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join("postgres.log")
    }

    /// Whether a postmaster is running on this data directory.
    pub fn is_running(&self) -> bool {
        self.postmaster().is_some()
    }

    /// The running postmaster (a `postmaster.pid` naming a process that is not this cluster's server, as
    /// after a crash and a reboot, names none).
    fn postmaster(&self) -> Option<process::Pid> {
        process::postmaster(&self.data_dir)
    }

    /// Starts the server unless it runs, and waits until it accepts connections.
    pub fn start(&self) -> Result<(), ClusterError> {
        self.start_clearing().map(|_| ())
    }

    /// As [`Cluster::start`], first clearing what a killed postmaster left (see [`Leftovers`]), which is
    /// returned.
    pub fn start_clearing(&self) -> Result<Leftovers, ClusterError> {
        if self.is_running() {
            return Ok(Leftovers::default());
        }
        let leftovers = process::clear_leftovers(&self.data_dir)?;
        if TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            return Err(ClusterError::PortTaken(self.port));
        }
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=128MB -c wal_level=logical",
            self.port,
            self.data_dir.display()
        );
        let log = self.log_file();
        let out = self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap_or_default(),
            "-o",
            &opts,
        ])?;
        if !out.status.success() {
            let tail = fs::read_to_string(&log)
                .map(|s| {
                    s.lines()
                        .rev()
                        .take(8)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            // another process took the port between the check above and the postmaster's bind
            if tail.contains("Address already in use") {
                return Err(ClusterError::PortTaken(self.port));
            }
            return Err(ClusterError::Command {
                what: "pg_ctl start".into(),
                detail: format!("{}\n{}", String::from_utf8_lossy(&out.stderr).trim(), tail),
            });
        }
        Ok(leftovers)
    }

    /// Stops the server (fast shutdown: clients are disconnected, data is kept).
    pub fn stop(&self) -> Result<(), ClusterError> {
        if !self.is_running() {
            return Ok(());
        }
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])?;
        if !out.status.success() {
            return Err(ClusterError::Command {
                what: "pg_ctl stop".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Serves TLS with `cert_pem` (the server's certificate, then any intermediates) and `key_pem` from
    /// the next start on; with `ssl_only`, TCP clients must use TLS (`hostssl` in pg_hba.conf).
    pub fn enable_ssl(
        &self,
        cert_pem: &str,
        key_pem: &str,
        ssl_only: bool,
    ) -> Result<(), ClusterError> {
        let (cert, key) = (
            self.data_dir.join("server.crt"),
            self.data_dir.join("server.key"),
        );
        fs::write(&cert, cert_pem)?;
        fs::write(&key, key_pem)?;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
        let conf = self.data_dir.join("postgresql.conf");
        let mut settings = fs::read_to_string(&conf)?;
        settings
            .push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        fs::write(&conf, settings)?;
        if ssl_only {
            let hba = self.data_dir.join("pg_hba.conf");
            let rules = fs::read_to_string(&hba)?
                .lines()
                .map(|l| match l.strip_prefix("host ") {
                    Some(rest) => format!("hostssl {rest}\n"),
                    None => format!("{l}\n"),
                })
                .collect::<String>();
            fs::write(&hba, rules)?;
        }
        for f in [&cert, &key] {
            self.chown(f)?;
        }
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<std::process::Output, ClusterError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir).args(args);
        // pg_ctl start leaves the postmaster running with our pipes open unless they are closed.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Ok(cmd.output()?)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some(parent) = self.data_dir.parent() {
            cmd.current_dir(parent);
        }
        cmd.env("LC_ALL", "C.UTF-8").env_remove("PGDATA");
        if let Some(r) = self.run_as {
            cmd.uid(r.uid).gid(r.gid);
        }
        cmd
    }

    fn initdb(&self) -> Result<(), ClusterError> {
        let pwfile = self.data_dir.with_extension("pwfile");
        fs::write(&pwfile, &self.password)?;
        self.chown(&pwfile)?;
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8"])
            .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output();
        let _ = fs::remove_file(&pwfile);
        let out = out?;
        if !out.status.success() {
            return Err(ClusterError::Command {
                what: "initdb".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Makes the data directory the cluster user's, mode 0700, and checks its parents are traversable.
    fn prepare_dir(&self) -> Result<(), ClusterError> {
        fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700))?;
        self.chown(&self.data_dir)?;
        if let Some(r) = self.run_as {
            for dir in self.data_dir.ancestors().skip(1) {
                let meta = fs::metadata(dir)?;
                let mode = meta.mode();
                let ok = if meta.uid() == r.uid {
                    mode & 0o100 != 0
                } else if meta.gid() == r.gid {
                    mode & 0o010 != 0
                } else {
                    mode & 0o001 != 0
                };
                if !ok {
                    return Err(ClusterError::Unreachable {
                        user: CLUSTER_USER.into(),
                        path: self.data_dir.display().to_string(),
                        why: format!("{} is mode {:o}", dir.display(), mode & 0o7777),
                    });
                }
            }
        }
        Ok(())
    }

    fn chown(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some(r) = self.run_as {
            std::os::unix::fs::chown(path, Some(r.uid), Some(r.gid))?;
            if path.is_dir() {
                for entry in fs::read_dir(path)? {
                    self.chown(&entry?.path())?;
                }
            }
        }
        Ok(())
    }
}

/// The directory holding `initdb` and `pg_ctl`: `SUPACTL_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<major>/bin`, else `pg_config --bindir`.
pub fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("SUPACTL_PG_BIN") {
        let d = PathBuf::from(&dir);
        return if has(&d) {
            Ok(d)
        } else {
            Err(ClusterError::BinariesMissing(dir))
        };
    }
    let mut majors: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has(d))
        .collect();
    majors.sort();
    if let Some((_, d)) = majors.pop() {
        return Ok(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&d) {
            return Ok(d);
        }
    }
    Err(ClusterError::BinariesMissing(
        "/usr/lib/postgresql/*/bin".into(),
    ))
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn ensure_cluster_user() -> Result<RunAs, ClusterError> {
    let lookup = || -> Option<RunAs> {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id")
                .args([flag, CLUSTER_USER])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())?
        };
        Some(RunAs {
            uid: id("-u")?,
            gid: id("-g")?,
        })
    };
    if let Some(r) = lookup() {
        return Ok(r);
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            CLUSTER_USER,
        ])
        .output()?;
    if !out.status.success() {
        return Err(ClusterError::Command {
            what: format!("useradd {CLUSTER_USER}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    lookup().ok_or_else(|| ClusterError::Command {
        what: format!("id {CLUSTER_USER}"),
        detail: "user was created but cannot be looked up".into(),
    })
}

/// A free TCP port on 127.0.0.1 (bound then released; fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A throwaway cluster in a temporary directory, stopped and removed on drop.
pub struct TestCluster {
    pub cluster: Cluster,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    pub fn start() -> TestCluster {
        TestCluster::start_with(|_| Ok(()))
    }

    /// A cluster serving TLS with this certificate and key (see [`Cluster::enable_ssl`]).
    pub fn start_with_ssl(cert_pem: &str, key_pem: &str, ssl_only: bool) -> TestCluster {
        TestCluster::start_with(|c| c.enable_ssl(cert_pem, key_pem, ssl_only))
    }

    fn start_with(prepare: impl Fn(&Cluster) -> Result<(), ClusterError>) -> TestCluster {
        let dir = tempfile::Builder::new()
            .prefix("supactl-pg-")
            .tempdir()
            .expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).expect("chmod tempdir");
        let password = supactl_common::keys::random_base62(24);
        // Another test can take the free port between choosing it and the server binding it: try again
        // with another.
        for _ in 0..5 {
            let cluster =
                Cluster::open(&dir.path().join("pg"), free_port(), &password).expect("initdb");
            prepare(&cluster).expect("prepare test cluster");
            match cluster.start() {
                Ok(()) => return TestCluster { cluster, _dir: dir },
                Err(ClusterError::PortTaken(_)) => continue,
                Err(e) => panic!("start test cluster: {e}"),
            }
        }
        panic!("start test cluster: no free port after 5 tries")
    }

    pub fn url(&self, dbname: &str) -> String {
        self.cluster.url(dbname)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.cluster.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }
}
