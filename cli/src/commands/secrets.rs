//! `supactl secrets set|list|unset`: a project's secrets (Edge Functions environment). Values are
//! write-only: `list` shows names.

use super::project::{call_and_print, Common};
use super::{CliError, CliResult};
use crate::output;
use clap::Subcommand;
use http::Method;
use serde_json::{json, Value};

// No `Debug`: `set` holds the secrets' values, and nothing formats it.
#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Set secrets: NAME=VALUE …
    Set {
        project_ref: String,
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List secret names.
    List {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete secrets by name.
    Unset {
        project_ref: String,
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

pub async fn run(cmd: SecretsCommand) -> CliResult {
    match cmd {
        SecretsCommand::Set {
            project_ref,
            pairs,
            common,
        } => {
            let mut items = Vec::new();
            for p in &pairs {
                let (name, value) = p
                    .split_once('=')
                    .ok_or_else(|| CliError::Usage(format!("secret {p:?}: expected NAME=VALUE")))?;
                items.push(json!({ "name": name, "value": value }));
            }
            let n = items.len();
            let path = format!("/admin/v1/projects/{project_ref}/secrets");
            call_and_print(
                &common,
                Method::POST,
                &path,
                Some(Value::Array(items)),
                move |_| output::line(&format!("set {n} secret(s)")),
            )
            .await
        }
        SecretsCommand::List {
            project_ref,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/secrets");
            call_and_print(&common, Method::GET, &path, None, |v| {
                output::table(
                    v.as_array().map(Vec::as_slice).unwrap_or(&[]),
                    &[("NAME", "name"), ("UPDATED", "updated_at")],
                )
            })
            .await
        }
        SecretsCommand::Unset {
            project_ref,
            names,
            common,
        } => {
            let n = names.len();
            let path = format!("/admin/v1/projects/{project_ref}/secrets");
            call_and_print(
                &common,
                Method::DELETE,
                &path,
                Some(json!(names)),
                move |_| output::line(&format!("deleted {n} secret(s)")),
            )
            .await
        }
    }
}
