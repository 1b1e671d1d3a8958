//! `supactl functions deploy|list|show|delete`: a project's Edge Functions through the admin API. A deploy
//! sends one module (`--file`) or every file under a directory (`--dir`, like Supabase's
//! `supabase/functions/<slug>/`); the tenant-manager checks the code and keeps the last versions.
//! `functions logs` prints what a function printed and how its invocations ended, from the runtime's
//! in-memory ring.

use super::project::{call_and_print, Common};
use super::{CliError, CliResult};
use crate::output;
use anyhow::Context;
use clap::{ArgGroup, Subcommand};
use http::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum FunctionsCommand {
    /// Deploy a function: created, or a new version of it.
    #[command(group(ArgGroup::new("code").required(true).args(["file", "dir"])))]
    Deploy {
        project_ref: String,
        slug: String,
        /// The function as one module (its entrypoint).
        #[arg(long)]
        file: Option<PathBuf>,
        /// A directory whose files make the function (entrypoint index.ts unless --entrypoint).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The module to run, relative to the directory.
        #[arg(long)]
        entrypoint: Option<String>,
        /// Let requests in with an API key alone (no user JWT required).
        #[arg(long)]
        no_verify_jwt: bool,
        /// An import map (JSON) for the function's imports.
        #[arg(long)]
        import_map: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// List a project's functions.
    List {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show a function and the versions kept.
    Show {
        project_ref: String,
        slug: String,
        #[command(flatten)]
        common: Common,
    },
    /// What a function printed and how its invocations ended (newest last).
    Logs {
        project_ref: String,
        slug: String,
        /// Records to show, at most 1000.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a function and every version of it.
    Delete {
        project_ref: String,
        slug: String,
        #[command(flatten)]
        common: Common,
    },
}

const FUNCTION_COLUMNS: &[(&str, &str)] = &[
    ("SLUG", "slug"),
    ("VERSION", "version"),
    ("VERIFY JWT", "verify_jwt"),
    ("STATUS", "status"),
    ("ENTRYPOINT", "entrypoint"),
    ("UPDATED", "updated_at"),
];

pub async fn run(cmd: FunctionsCommand) -> CliResult {
    match cmd {
        FunctionsCommand::Deploy {
            project_ref,
            slug,
            file,
            dir,
            entrypoint,
            no_verify_jwt,
            import_map,
            common,
        } => {
            let mut body = deploy_body(file.as_deref(), dir.as_deref(), entrypoint)?;
            body["slug"] = json!(slug);
            body["verify_jwt"] = json!(!no_verify_jwt);
            if let Some(path) = import_map {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("--import-map {}", path.display()))?;
                body["import_map"] = json!(text);
            }
            let path = format!("/admin/v1/projects/{project_ref}/functions");
            call_and_print(&common, Method::POST, &path, Some(body), |f| {
                output::line(&format!(
                    "deployed function {} version {} (verify_jwt {})",
                    f["slug"].as_str().unwrap_or(""),
                    f["version"],
                    f["verify_jwt"]
                ))
            })
            .await
        }
        FunctionsCommand::List {
            project_ref,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/functions");
            call_and_print(&common, Method::GET, &path, None, |v| {
                output::table(
                    v.as_array().map(Vec::as_slice).unwrap_or(&[]),
                    FUNCTION_COLUMNS,
                )
            })
            .await
        }
        FunctionsCommand::Show {
            project_ref,
            slug,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/functions/{slug}");
            call_and_print(&common, Method::GET, &path, None, print_function).await
        }
        FunctionsCommand::Logs {
            project_ref,
            slug,
            limit,
            common,
        } => {
            let path =
                format!("/admin/v1/projects/{project_ref}/functions/{slug}/logs?limit={limit}");
            call_and_print(&common, Method::GET, &path, None, print_logs).await
        }
        FunctionsCommand::Delete {
            project_ref,
            slug,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/functions/{slug}");
            call_and_print(&common, Method::DELETE, &path, None, |_| {
                output::line(&format!("deleted function {slug}"))
            })
            .await
        }
    }
}

/// The code part of a deploy request: one file (its name the entrypoint unless one is given), or
/// every file under a directory.
fn deploy_body(
    file: Option<&Path>,
    dir: Option<&Path>,
    entrypoint: Option<String>,
) -> CliResult<Value> {
    let (files, default_entrypoint) = match (file, dir) {
        (Some(f), None) => {
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| CliError::Usage(format!("--file {}: not a file", f.display())))?
                .to_string();
            let content =
                std::fs::read_to_string(f).with_context(|| format!("--file {}", f.display()))?;
            (json!([{"name": name, "content": content}]), name)
        }
        (None, Some(d)) => {
            let files = ::functions::memory::read_files(d)
                .with_context(|| format!("--dir {}", d.display()))?;
            let files: Vec<Value> = files
                .into_iter()
                .map(|f| json!({"name": f.name, "content": f.content}))
                .collect();
            (
                Value::Array(files),
                ::functions::memory::DIR_ENTRYPOINT.to_string(),
            )
        }
        _ => {
            return Err(CliError::Usage(
                "give either --file or --dir, not both".into(),
            ))
        }
    };
    Ok(json!({"files": files, "entrypoint": entrypoint.unwrap_or(default_entrypoint)}))
}

fn print_function(f: &Value) {
    for (label, key) in FUNCTION_COLUMNS {
        let value = match &f[*key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        output::line(&format!(
            "{:<11} {value}",
            format!("{}:", label.to_lowercase())
        ));
    }
    output::line("versions:");
    output::table(
        f["versions"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        &[
            ("VERSION", "version"),
            ("ENTRYPOINT", "entrypoint"),
            ("BYTES", "size_bytes"),
            ("CREATED", "created_at"),
        ],
    );
}

/// One line per record: time of day, invocation, level, then the message or the outcome
/// (`--output json` has the full timestamps).
fn print_logs(records: &Value) {
    for r in records.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let ms = r["timestamp_ms"].as_u64().unwrap_or(0);
        // the ring holds recent records: the time of day (UTC) is enough to read them
        let day_ms = ms % 86_400_000;
        let time = format!(
            "{:02}:{:02}:{:02}.{:03}Z",
            day_ms / 3_600_000,
            day_ms / 60_000 % 60,
            day_ms / 1000 % 60,
            day_ms % 1000
        );
        let invocation = r["invocation"]
            .as_u64()
            .map_or("-".to_string(), |i| i.to_string());
        let level = r["level"].as_str().unwrap_or("");
        let mut text = r["message"].as_str().unwrap_or("").to_string();
        if let (Some(status), Some(ms)) = (r["status"].as_u64(), r["duration_ms"].as_u64()) {
            text = format!("{status} in {ms} ms {text}");
        }
        output::line(&format!(
            "{time} {invocation:>6} {level:<10} {}",
            text.trim_end()
        ));
    }
}
