//! `supactl project …`: projects, their API keys and JWT secrets, through the admin API.

use super::{CliError, CliResult};
use crate::admin_client::{AdminArgs, AdminClient};
use crate::duration::duration_ms;
use crate::output::{self, Format};
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{json, Value};

/// Flags every admin command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
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
        /// Place it on this worker.
        #[arg(long)]
        worker: Option<String>,
        /// Prefer workers of this region.
        #[arg(long)]
        region: Option<String>,
        /// Placement strategy for this project (least-used, round-robin, weighted, hash, region).
        #[arg(long)]
        strategy: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List projects (paginated; search by ref or name, filter by status).
    List {
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Show a project and its API keys (secret keys masked unless --reveal).
    Show {
        project_ref: String,
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Rename a project or change its limits.
    Update {
        project_ref: String,
        #[arg(long)]
        name: Option<String>,
        /// Statement timeout of an API role, ROLE=DURATION (anon, authenticated, service_role; 3s, 500ms,
        /// 2min; 0 for none; `default` for the platform's). Repeatable.
        #[arg(long = "statement-timeout", value_name = "ROLE=DURATION")]
        statement_timeouts: Vec<String>,
        /// Sessions the project's database role may hold at once (`default` for the platform's).
        #[arg(long, value_name = "N|default")]
        connection_limit: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a project: its database, roles and keys.
    Delete {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Pause a project: the gateway answers 503 and its database connections are closed.
    Pause {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Restore a paused project.
    Restore {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Check the project's database and REST API.
    Health {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Manage a project's API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Rotate the project's JWT secret (the standby one, or a new one, becomes current; the current one
    /// keeps verifying for the grace period).
    RotateJwt {
        project_ref: String,
        /// Seconds tokens signed with the outgoing secret stay valid.
        #[arg(long, default_value_t = 3600)]
        grace_seconds: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Manage a project's JWT secrets.
    #[command(subcommand)]
    Jwt(JwtCommand),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List keys (secret keys masked unless --reveal).
    List {
        project_ref: String,
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Create a key.
    Create {
        project_ref: String,
        /// publishable or secret.
        #[arg(long = "type", value_parser = ["publishable", "secret"])]
        key_type: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Print a key in full.
    Reveal {
        project_ref: String,
        key_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a key: every gateway rejects it within a second.
    Revoke {
        project_ref: String,
        key_id: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
pub enum JwtCommand {
    /// List the JWT secrets' ids and states (never their values).
    List {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// Create the standby secret the next rotation promotes.
    Standby {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
    /// End the grace period now: tokens signed with the previous secret stop verifying.
    RevokePrevious {
        project_ref: String,
        #[command(flatten)]
        common: Common,
    },
}

pub const PROJECT_COLUMNS: &[(&str, &str)] = &[
    ("REF", "ref"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("API URL", "api_url"),
    ("CREATED", "created_at"),
];
const KEY_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("TYPE", "type"),
    ("ROLE", "role"),
    ("NAME", "name"),
    ("KEY", "opaque_key"),
    ("PREFIX", "prefix"),
];
const JWT_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("STATUS", "status"),
    ("CREATED", "created_at"),
    ("EXPIRES", "expires_at"),
];

fn rows(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Runs one admin call and prints the result: JSON as is, or the human rendering.
pub async fn call_and_print(
    common: &Common,
    method: Method,
    path: &str,
    body: Option<Value>,
    human: impl FnOnce(&Value),
) -> CliResult {
    let client = AdminClient::from_args(&common.admin)?;
    let v = client.call(method, path, body).await?;
    match common.output {
        Format::Json => output::json(&v),
        Format::Table => human(&v),
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
    if let Some(l) = p.get("limits").filter(|l| l.is_object()) {
        let ms = |k: &str| match l[k].as_u64() {
            Some(0) => "none".to_string(),
            Some(n) => format!("{n}ms"),
            None => "?".to_string(),
        };
        output::line(&format!(
            "limits:   statement timeout anon {}, authenticated {}, service_role {}; connections {}",
            ms("anon_statement_timeout_ms"),
            ms("authenticated_statement_timeout_ms"),
            ms("service_role_statement_timeout_ms"),
            l["connection_limit"]
        ));
    }
    if let Some(keys) = p.get("api_keys") {
        output::line("");
        output::table(rows(keys), KEY_COLUMNS);
    }
}

/// The `PATCH` body of `project update`: flags are checked here so a typo never reaches the server.
fn update_body(
    name: Option<String>,
    timeouts: &[String],
    connection_limit: Option<&str>,
) -> Result<Value, CliError> {
    let mut limits = serde_json::Map::new();
    for t in timeouts {
        let (role, value) = t.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--statement-timeout {t}: expected ROLE=DURATION, e.g. anon=3s"
            ))
        })?;
        if !["anon", "authenticated", "service_role"].contains(&role) {
            return Err(CliError::Usage(format!(
                "--statement-timeout {t}: the role must be anon, authenticated or service_role"
            )));
        }
        let ms = match value {
            "default" => Value::Null,
            v => Value::from(duration_ms(v).ok_or_else(|| {
                CliError::Usage(format!(
                    "--statement-timeout {t}: {v} is not a duration (3s, 500ms, 2min, 1h, 0 or default)"
                ))
            })?),
        };
        limits.insert(format!("{role}_statement_timeout_ms"), ms);
    }
    if let Some(c) = connection_limit {
        let v = match c {
            "default" => Value::Null,
            n => Value::from(n.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                CliError::Usage(format!(
                    "--connection-limit {n}: expected a positive number or default"
                ))
            })?),
        };
        limits.insert("connection_limit".into(), v);
    }
    let mut body = serde_json::Map::new();
    if let Some(n) = name {
        body.insert("name".into(), Value::from(n));
    }
    if !limits.is_empty() {
        body.insert("limits".into(), Value::Object(limits));
    }
    if body.is_empty() {
        return Err(CliError::Usage(
            "nothing to update: give --name, --statement-timeout or --connection-limit".into(),
        ));
    }
    Ok(Value::Object(body))
}

fn done(message: String) -> impl FnOnce(&Value) {
    move |_| output::line(&message)
}

pub async fn run(cmd: ProjectCommand) -> CliResult {
    use ProjectCommand as P;
    match cmd {
        P::Create {
            name,
            project_ref,
            worker,
            region,
            strategy,
            common,
        } => {
            let mut body = json!({ "name": name });
            for (k, v) in [
                ("ref", project_ref),
                ("worker", worker),
                ("region", region),
                ("strategy", strategy),
            ] {
                if let Some(v) = v {
                    body[k] = Value::from(v);
                }
            }
            call_and_print(
                &common,
                Method::POST,
                "/admin/v1/projects",
                Some(body),
                print_project,
            )
            .await
        }
        P::List {
            search,
            status,
            page,
            limit,
            common,
        } => {
            let mut q = format!("/admin/v1/projects?page={page}&limit={limit}");
            for (k, v) in [("search", search), ("status", status)] {
                if let Some(v) = v {
                    q.push_str(&format!("&{k}={}", percent_encode(&v)));
                }
            }
            call_and_print(&common, Method::GET, &q, None, |v| {
                output::table(rows(v), PROJECT_COLUMNS)
            })
            .await
        }
        P::Show {
            project_ref,
            reveal,
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
            p["api_keys"] = client
                .call(
                    Method::GET,
                    &format!("/admin/v1/projects/{project_ref}/api-keys?reveal={reveal}"),
                    None,
                )
                .await?;
            match common.output {
                Format::Json => output::json(&p),
                Format::Table => print_project(&p),
            }
            Ok(())
        }
        P::Update {
            project_ref,
            name,
            statement_timeouts,
            connection_limit,
            common,
        } => {
            let body = update_body(name, &statement_timeouts, connection_limit.as_deref())?;
            let path = format!("/admin/v1/projects/{project_ref}");
            call_and_print(&common, Method::PATCH, &path, Some(body), print_project).await
        }
        P::Delete {
            project_ref,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}");
            let msg = format!("deleted project {project_ref}");
            let client = AdminClient::from_args(&common.admin)?;
            client.call(Method::DELETE, &path, None).await?;
            match common.output {
                Format::Json => output::json(&json!({ "ref": project_ref, "deleted": true })),
                Format::Table => output::line(&msg),
            }
            Ok(())
        }
        P::Pause {
            project_ref,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/pause");
            call_and_print(
                &common,
                Method::POST,
                &path,
                None,
                done(format!("paused project {project_ref}")),
            )
            .await
        }
        P::Restore {
            project_ref,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/restore");
            call_and_print(
                &common,
                Method::POST,
                &path,
                None,
                done(format!("restored project {project_ref}")),
            )
            .await
        }
        P::Health {
            project_ref,
            common,
        } => {
            let client = AdminClient::from_args(&common.admin)?;
            let path = format!("/admin/v1/projects/{project_ref}/health");
            // 503 still carries the report; show it and fail.
            let (status, v) = client.call_raw(Method::GET, &path, None).await?;
            let report = v.get("data").cloned().unwrap_or(v);
            match common.output {
                Format::Json => output::json(&report),
                Format::Table => {
                    for part in ["database", "rest"] {
                        let healthy = report[part]["healthy"] == true;
                        output::line(&format!(
                            "{part:<9} {}",
                            if healthy { "ok" } else { "FAILING" }
                        ));
                    }
                }
            }
            if status.is_success() {
                Ok(())
            } else {
                Err(CliError::Other(anyhow::anyhow!(
                    "project {project_ref} is not healthy"
                )))
            }
        }
        P::Keys(k) => keys(k).await,
        P::RotateJwt {
            project_ref,
            grace_seconds,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/jwt-keys/rotate");
            call_and_print(
                &common,
                Method::POST,
                &path,
                Some(json!({ "grace_seconds": grace_seconds })),
                |v| output::table(rows(v), JWT_COLUMNS),
            )
            .await
        }
        P::Jwt(JwtCommand::List {
            project_ref,
            common,
        }) => {
            let path = format!("/admin/v1/projects/{project_ref}/jwt-keys");
            call_and_print(&common, Method::GET, &path, None, |v| {
                output::table(rows(v), JWT_COLUMNS)
            })
            .await
        }
        P::Jwt(JwtCommand::Standby {
            project_ref,
            common,
        }) => {
            let path = format!("/admin/v1/projects/{project_ref}/jwt-keys/standby");
            call_and_print(&common, Method::POST, &path, None, |v| {
                output::table(std::slice::from_ref(v), JWT_COLUMNS)
            })
            .await
        }
        P::Jwt(JwtCommand::RevokePrevious {
            project_ref,
            common,
        }) => {
            let path = format!("/admin/v1/projects/{project_ref}/jwt-keys/previous");
            call_and_print(
                &common,
                Method::DELETE,
                &path,
                None,
                done("previous JWT secret revoked".into()),
            )
            .await
        }
    }
}

async fn keys(cmd: KeysCommand) -> CliResult {
    match cmd {
        KeysCommand::List {
            project_ref,
            reveal,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/api-keys?reveal={reveal}");
            call_and_print(&common, Method::GET, &path, None, |v| {
                output::table(rows(v), KEY_COLUMNS)
            })
            .await
        }
        KeysCommand::Create {
            project_ref,
            key_type,
            name,
            description,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/api-keys");
            let body = json!({ "type": key_type, "name": name, "description": description });
            call_and_print(&common, Method::POST, &path, Some(body), |v| {
                output::table(std::slice::from_ref(v), KEY_COLUMNS)
            })
            .await
        }
        KeysCommand::Reveal {
            project_ref,
            key_id,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/api-keys/{key_id}?reveal=true");
            call_and_print(&common, Method::GET, &path, None, |v| {
                output::line(v["opaque_key"].as_str().unwrap_or(""))
            })
            .await
        }
        KeysCommand::Revoke {
            project_ref,
            key_id,
            common,
        } => {
            let path = format!("/admin/v1/projects/{project_ref}/api-keys/{key_id}");
            call_and_print(
                &common,
                Method::DELETE,
                &path,
                None,
                done(format!("revoked key {key_id}")),
            )
            .await
        }
    }
}

pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_flags_become_one_patch() {
        let b = update_body(
            None,
            &["anon=1500ms".into(), "service_role=default".into()],
            Some("25"),
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"limits": {"anon_statement_timeout_ms": 1500, "service_role_statement_timeout_ms": null, "connection_limit": 25}})
        );
        for bad in ["anon", "postgres=3s", "anon=3 s", "anon=-1s"] {
            let e = update_body(None, &[bad.into()], None)
                .unwrap_err()
                .to_string();
            assert!(e.contains("--statement-timeout"), "{bad}: {e}");
        }
        assert!(update_body(None, &[], Some("0")).is_err());
        assert!(update_body(None, &[], None).is_err());
    }
}
