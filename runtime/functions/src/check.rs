//! The deploy-time check of a bundle: its names, size and import map ([`crate::check_bundle`]), then every
//! module parsed by Deno (`deno lint` with a single rule, which parses each file and runs none of it), so a
//! deploy can be refused with the file and line of a syntax error. Types are not checked (Supabase's deploy
//! does not either).

use crate::bundle::{check, BundleError, WorkerDir};
use crate::config::SupervisorConfig;
use crate::store::Bundle;
use serde::Deserialize;
use std::io;
use std::process::Stdio;
use std::time::Duration;

/// How long parsing a bundle may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// `deno lint` refuses to run with no rule at all; this one only reports `debugger` statements, which the
/// check ignores (only parse errors count).
const LINT_CONFIG: &str = r#"{"lint":{"rules":{"tags":[],"include":["no-debugger"]}}}"#;
/// The most of `deno lint`'s output read (a report of one error per file of a full bundle fits).
const MAX_OUTPUT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A module does not parse; `file` is the bundle's name for it.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax {
        file: String,
        line: Option<u32>,
        message: String,
    },
    #[error("could not parse the bundle with deno: {0}")]
    Deno(String),
}

impl From<io::Error> for CheckError {
    fn from(e: io::Error) -> CheckError {
        CheckError::Deno(e.to_string())
    }
}

#[derive(Deserialize)]
struct LintReport {
    #[serde(default)]
    errors: Vec<LintError>,
}

#[derive(Deserialize)]
struct LintError {
    file_path: String,
    message: String,
}

/// Checks `bundle` as a deploy must: names, size, import map, then the syntax of every module.
pub async fn check_syntax(config: &SupervisorConfig, bundle: &Bundle) -> Result<(), CheckError> {
    check(bundle)?;
    let work_dir = config.work_dir.join("checks");
    let owned = bundle.clone();
    let dir = tokio::task::spawn_blocking(move || WorkerDir::create(&work_dir, &owned))
        .await
        .map_err(io::Error::other)??;
    let lint_config = dir.root.join("lint.json");
    tokio::fs::write(&lint_config, LINT_CONFIG).await?;
    let child = tokio::process::Command::new(&config.deno)
        .arg("lint")
        .arg("--json")
        .arg(format!("--config={}", lint_config.display()))
        .arg(dir.bundle())
        .env_clear()
        .env("DENO_DIR", config.work_dir.join("deno"))
        .env("NO_COLOR", "1")
        .env("DENO_NO_UPDATE_CHECK", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let out = tokio::time::timeout(CHECK_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| CheckError::Deno(format!("deno lint took over {CHECK_TIMEOUT:?}")))??;
    let stdout = &out.stdout[..out.stdout.len().min(MAX_OUTPUT)];
    let report: LintReport = serde_json::from_slice(stdout)
        .map_err(|e| CheckError::Deno(format!("unreadable deno lint report: {e}")))?;
    let bundle_dir = format!("{}/", dir.bundle().display());
    match report.errors.into_iter().next() {
        None => Ok(()),
        Some(e) => Err(syntax_error(&bundle_dir, e)),
    }
}

/// `SyntaxError: Expected ',', got 'let'\n  |\n3 | let = ;\n  | ~~~\n    at file:///…/index.ts:3:1`
fn syntax_error(bundle_dir: &str, e: LintError) -> CheckError {
    let file = e
        .file_path
        .strip_prefix(bundle_dir)
        .unwrap_or(&e.file_path)
        .to_string();
    let line = e
        .message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("at file://"))
        .and_then(|at| at.rsplit(':').nth(1)?.parse().ok());
    let message = e.message.lines().next().unwrap_or_default().to_string();
    CheckError::Syntax {
        file,
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_and_line_come_from_denos_report() {
        let e = LintError {
            file_path: "/w/bundle/lib/a.ts".into(),
            message: "SyntaxError: Expected ',', got 'let'\n  |\n3 | let = ;\n  | ~~~\n    at file:///w/bundle/lib/a.ts:3:1".into(),
        };
        let err = syntax_error("/w/bundle/", e);
        assert_eq!(
            err.to_string(),
            "lib/a.ts:3: SyntaxError: Expected ',', got 'let'"
        );
    }
}
