//! A cluster's processes as Linux's `/proc` shows them: which postmaster a `postmaster.pid` names and whether
//! it still runs, and the processes left behind when a postmaster is killed. A PostgreSQL server process
//! works in its data directory, so a `postgres` process whose current directory is the cluster's belongs to
//! it: that tells this cluster's processes from any other server's, and a live postmaster from a recycled
//! pid.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A process, told apart from a later one that reuses its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pid {
    pub pid: u32,
    start_time: u64,
}

impl Pid {
    /// The process `pid`, when it runs (not a zombie).
    pub fn of(pid: u32) -> Option<Pid> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so fields count from the last ')'.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
            return None;
        }
        // field 22 of the line, `starttime`, is the 20th after the command
        let start_time = fields.get(19)?.parse().ok()?;
        Some(Pid { pid, start_time })
    }

    /// Whether this very process still runs.
    pub fn is_alive(&self) -> bool {
        Pid::of(self.pid) == Some(*self)
    }
}

/// Whether `pid` is a PostgreSQL server process working in `dir` (false when it is gone or cannot be
/// inspected). The executable's name keeps, say, a shell someone opened in the directory out of it.
fn serves(pid: u32, dir: &Path) -> bool {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
    // after a package upgrade the link reads `…/postgres (deleted)`
    let is_postgres = exe
        .as_deref()
        .and_then(Path::file_name)
        .is_some_and(|n| n.to_string_lossy().starts_with("postgres"));
    is_postgres && fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
}

/// The postmaster the data directory's `postmaster.pid` names, when it runs there.
pub fn postmaster(data_dir: &Path) -> Option<Pid> {
    let lock = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pid = lock.lines().next()?.trim().parse().ok()?;
    let p = Pid::of(pid)?;
    serves(pid, data_dir).then_some(p)
}

/// Every running PostgreSQL process working in `dir`.
fn processes_in(dir: &Path) -> Vec<u32> {
    let own = std::process::id();
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own && serves(pid, dir) && Pid::of(pid).is_some())
        .collect()
}

/// What [`clear_leftovers`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    /// Backends and auxiliary processes of a dead postmaster, killed.
    pub orphans: usize,
    /// Lock files (`postmaster.pid`, the socket's) naming no running postmaster, removed.
    pub stale_lock: bool,
}

/// Unless a postmaster runs on `data_dir`, kills the processes a dead one left (they keep its shared
/// memory attached, and PostgreSQL refuses to start while they do) and removes its lock files (which may
/// name a pid now reused by another process, or a zombie).
pub fn clear_leftovers(data_dir: &Path) -> std::io::Result<Leftovers> {
    if postmaster(data_dir).is_some() {
        return Ok(Leftovers::default());
    }
    let orphans = processes_in(data_dir);
    if !orphans.is_empty() {
        let mut kill = Command::new("kill");
        kill.arg("-KILL").args(orphans.iter().map(u32::to_string));
        // a process may exit by itself meanwhile: `kill` then fails for it, which is fine
        let _ = kill.output()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_in(data_dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The data directory is also the socket directory, where each socket has a lock file naming the
    // postmaster too; a dead postmaster left unreaped (a zombie) still passes PostgreSQL's liveness check.
    let mut stale_lock = false;
    for entry in fs::read_dir(data_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "postmaster.pid" || (name.starts_with(".s.PGSQL.") && name.ends_with(".lock")) {
            fs::remove_file(entry.path())?;
            stale_lock = true;
        }
    }
    Ok(Leftovers {
        orphans: orphans.len(),
        stale_lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_changed_start_time_is_another_process() {
        let me = Pid::of(std::process::id()).unwrap();
        assert!(me.is_alive());
        let other = Pid {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
    }

    #[test]
    fn a_lock_file_naming_a_process_elsewhere_is_stale_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        // this test's own pid: alive, but no PostgreSQL process working in `dir`
        fs::write(
            dir.join("postmaster.pid"),
            format!("{}\n{}\n", std::process::id(), dir.display()),
        )
        .unwrap();
        assert_eq!(postmaster(&dir), None);
        assert_eq!(
            clear_leftovers(&dir).unwrap(),
            Leftovers {
                orphans: 0,
                stale_lock: true
            }
        );
        assert!(!dir.join("postmaster.pid").exists());
    }
}
