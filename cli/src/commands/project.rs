//! `supactl project create|list|show|delete|keys`.

use super::CliResult;
use crate::admin_client::{AdminArgs, AdminClient};
use crate::output::{self, Format};
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct Common {
    #[command(flatten)]
    admin: AdminArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    output: Format,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project (its database, roles, JWT secret and API keys).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Project ref (default: 20 random letters).
        #[arg(long = "ref")]
        project_ref: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List projects.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Show a project and its API keys.
    Show {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a project: its database, roles and keys.
    Delete {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// List a project's API keys.
    Keys {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
}

const PROJECT_COLUMNS: &[(&str, &str)] = &[
    ("REF", "ref"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("API URL", "api_url"),
    ("CREATED", "created_at"),
];
const KEY_COLUMNS: &[(&str, &str)] = &[
    ("TYPE", "type"),
    ("ROLE", "role"),
    ("NAME", "name"),
    ("KEY", "opaque_key"),
];

pub async fn run(cmd: ProjectCommand) -> CliResult {
    match cmd {
        ProjectCommand::Create {
            name,
            project_ref,
            common,
        } => {
            let client = AdminClient::from_args(&common.admin)?;
            let mut body = json!({ "name": name });
            if let Some(r) = project_ref {
                body["ref"] = Value::from(r);
            }
            let p = client
                .call(Method::POST, "/admin/v1/projects", Some(body))
                .await?;
            match common.output {
                Format::Json => output::json(&p),
                Format::Human => {
                    print_project(&p);
                    output::line("");
                    output::table(
                        p["api_keys"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                        KEY_COLUMNS,
                    );
                }
            }
        }
        ProjectCommand::List { common } => {
            let client = AdminClient::from_args(&common.admin)?;
            let list = client.call(Method::GET, "/admin/v1/projects", None).await?;
            match common.output {
                Format::Json => output::json(&list),
                Format::Human => output::table(
                    list.as_array().map(Vec::as_slice).unwrap_or(&[]),
                    PROJECT_COLUMNS,
                ),
            }
        }
        ProjectCommand::Show {
            project_ref,
            common,
        } => {
            let client = AdminClient::from_args(&common.admin)?;
            let mut p = client
                .call(
                    Method::GET,
                    &format!("/admin/v1/projects/{project_ref}"),
                    None,
                )
                .await?;
            let keys = client
                .call(
                    Method::GET,
                    &format!("/admin/v1/projects/{project_ref}/api-keys"),
                    None,
                )
                .await?;
            p["api_keys"] = keys;
            match common.output {
                Format::Json => output::json(&p),
                Format::Human => {
                    print_project(&p);
                    output::line("");
                    output::table(
                        p["api_keys"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                        KEY_COLUMNS,
                    );
                }
            }
        }
        ProjectCommand::Delete {
            project_ref,
            common,
        } => {
            let client = AdminClient::from_args(&common.admin)?;
            client
                .call(
                    Method::DELETE,
                    &format!("/admin/v1/projects/{project_ref}"),
                    None,
                )
                .await?;
            match common.output {
                Format::Json => output::json(&json!({ "ref": project_ref, "deleted": true })),
                Format::Human => output::line(&format!("deleted project {project_ref}")),
            }
        }
        ProjectCommand::Keys {
            project_ref,
            common,
        } => {
            let client = AdminClient::from_args(&common.admin)?;
            let keys = client
                .call(
                    Method::GET,
                    &format!("/admin/v1/projects/{project_ref}/api-keys"),
                    None,
                )
                .await?;
            match common.output {
                Format::Json => output::json(&keys),
                Format::Human => output::table(
                    keys.as_array().map(Vec::as_slice).unwrap_or(&[]),
                    KEY_COLUMNS,
                ),
            }
        }
    }
    Ok(())
}

fn print_project(p: &Value) {
    for (label, key) in PROJECT_COLUMNS {
        output::line(&format!(
            "{:<9} {}",
            format!("{}:", label.to_lowercase()),
            p[*key].as_str().unwrap_or("")
        ));
    }
}
