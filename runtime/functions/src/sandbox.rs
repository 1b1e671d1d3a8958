//! The `deno run` command line of a worker: Deno's permissions are the sandbox.
//!
//! - network: everything except the platform's private endpoints ([`crate::NetPolicy`]); `--deny-net` wins
//!   over `--allow-net` and applies to resolved addresses;
//! - files: read the worker's own bundle and runtime directories (and the public npm packages in Deno's cache),
//!   read and write its own socket; nothing else. Other workers' sockets need read access, so they are out
//!   of reach too;
//! - environment: cleared, then only the project's variables ([`crate::ProjectEnv::variables`]), each
//!   readable through `--allow-env`; Deno's own settings (`DENO_DIR`, `DENO_CERT`, …) are in the environment
//!   but not readable (the bootstrap makes `Deno.env.get`/`has` of any other name read as unset, as on
//!   Supabase, instead of throwing);
//! - no subprocesses, FFI, system information or prompts (not granted, and `--no-prompt`);
//! - memory: V8's old space capped at `max_heap_mb`.
//!
//! The process's stdin stays open as a lifeline: the bootstrap exits when it closes (the supervisor died).

use crate::bundle::WorkerDir;
use crate::config::SupervisorConfig;
use crate::store::ProjectEnv;
use std::ffi::OsString;
use std::process::Stdio;
use tokio::process::Command;

/// The command that runs the bundle in `dir` for a project with environment `env`.
pub fn command(config: &SupervisorConfig, dir: &WorkerDir, env: &ProjectEnv) -> Command {
    let vars = env.variables();
    let deno_dir = config.work_dir.join("deno");
    let socket = dir.socket();
    let mut read = OsString::from("--allow-read=");
    for (i, p) in [
        dir.bundle(),
        dir.runtime(),
        socket.clone(),
        deno_dir.join("npm"),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            read.push(",");
        }
        read.push(p);
    }
    let mut write = OsString::from("--allow-write=");
    write.push(&socket);
    let mut import_map = OsString::from("--import-map=");
    import_map.push(dir.import_map());
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();

    let mut cmd = Command::new(&config.deno);
    cmd.arg("run")
        .args(["--no-prompt", "--no-config", "--quiet"])
        .arg(import_map)
        .arg("--allow-net")
        .arg(format!("--deny-net={}", config.net.deny.join(",")))
        .arg(read)
        .arg(write)
        .arg(format!("--allow-env={}", names.join(",")))
        .arg(format!(
            "--v8-flags=--max-old-space-size={}",
            config.max_heap_mb
        ))
        .arg(dir.bootstrap())
        .arg(&socket)
        .arg(dir.entry_url());
    cmd.env_clear()
        .envs(vars)
        .env("DENO_DIR", &deno_dir)
        .env("NO_COLOR", "1")
        .env("DENO_NO_UPDATE_CHECK", "1");
    if let Some(registry) = &config.npm_registry {
        cmd.env("NPM_CONFIG_REGISTRY", registry);
    }
    if let Some(ca) = &config.ca_file {
        cmd.env("DENO_CERT", ca);
    }
    cmd.current_dir(dir.bundle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}
