//! `supactl worker …`: the PostgreSQL servers that hold project databases, and placement.

use super::project::{call_and_print, Common, PROJECT_COLUMNS};
use super::{CliError, CliResult};
use crate::output;
use clap::Subcommand;
use http::Method;
use serde_json::{json, Value};
use stacks::compute::env as task_env;

// No `Debug`: `add` holds the worker's admin password, and nothing formats it.
#[derive(Subcommand)]
pub enum WorkerCommand {
    /// Register a worker; its credentials are tested first and stored encrypted.
    Add {
        identifier: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 5432)]
        port: u16,
        #[arg(long, default_value = "postgres")]
        admin_user: String,
        /// The admin password (from the environment, so it stays out of process listings).
        #[arg(long, env = task_env::WORKER_PASSWORD, hide_env_values = true)]
        admin_password: String,
        #[arg(long, default_value = "default")]
        region: String,
        #[arg(long, default_value_t = 100)]
        weight: i32,
        #[arg(long, default_value_t = 100)]
        max_databases: i32,
        /// TLS to the worker: disable (default), require, verify-ca or verify-full.
        #[arg(long)]
        sslmode: Option<String>,
        /// PEM file of the CA certificates that verify it (sent with the registration); default: the
        /// Amazon RDS bundle built into the platform.
        #[arg(long)]
        sslrootcert: Option<std::path::PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// List workers with their project counts.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Change a worker's settings (credentials are tested again when they change).
    Update {
        id: i64,
        #[arg(long)]
        weight: Option<i32>,
        #[arg(long)]
        max_databases: Option<i32>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long, value_parser = ["active", "draining"])]
        status: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Stop placing new projects on a worker.
    Drain {
        id: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Unregister a worker that holds no projects.
    Remove {
        id: i64,
        #[command(flatten)]
        common: Common,
    },
    /// List a worker's projects.
    Projects {
        id: i64,
        #[command(flatten)]
        common: Common,
    },
    /// Show or set the default placement strategy.
    Placement {
        /// least-used, round-robin, weighted, hash or region.
        #[arg(long)]
        strategy: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

const WORKER_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("IDENTIFIER", "identifier"),
    ("HOST", "host"),
    ("PORT", "port"),
    ("REGION", "region"),
    ("WEIGHT", "weight"),
    ("PROJECTS", "current_databases"),
    ("MAX", "max_databases"),
    ("STATUS", "status"),
    ("SSLMODE", "sslmode"),
];

fn one(v: &Value) {
    output::table(std::slice::from_ref(v), WORKER_COLUMNS)
}

fn many(v: &Value) {
    output::table(
        v.as_array().map(Vec::as_slice).unwrap_or(&[]),
        WORKER_COLUMNS,
    )
}

pub async fn run(cmd: WorkerCommand) -> CliResult {
    use WorkerCommand as W;
    match cmd {
        W::Add {
            identifier,
            host,
            port,
            admin_user,
            admin_password,
            region,
            weight,
            max_databases,
            sslmode,
            sslrootcert,
            common,
        } => {
            let ssl_root_cert = match &sslrootcert {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    CliError::Usage(format!(
                        "--sslrootcert: cannot read {}: {e} (a PEM file of CA certificates)",
                        path.display()
                    ))
                })?),
                None => None,
            };
            let body = json!({"identifier": identifier, "host": host, "port": port, "admin_user": admin_user,
                "admin_password": admin_password, "region": region, "weight": weight, "max_databases": max_databases,
                "sslmode": sslmode, "ssl_root_cert": ssl_root_cert});
            call_and_print(&common, Method::POST, "/admin/v1/workers", Some(body), one).await
        }
        W::List { common } => {
            call_and_print(&common, Method::GET, "/admin/v1/workers", None, many).await
        }
        W::Update {
            id,
            weight,
            max_databases,
            region,
            status,
            common,
        } => {
            let mut body = json!({});
            if let Some(w) = weight {
                body["weight"] = w.into();
            }
            if let Some(m) = max_databases {
                body["max_databases"] = m.into();
            }
            if let Some(r) = region {
                body["region"] = r.into();
            }
            if let Some(s) = status {
                body["status"] = s.into();
            }
            call_and_print(
                &common,
                Method::PATCH,
                &format!("/admin/v1/workers/{id}"),
                Some(body),
                one,
            )
            .await
        }
        W::Drain { id, common } => {
            call_and_print(
                &common,
                Method::POST,
                &format!("/admin/v1/workers/{id}/drain"),
                None,
                one,
            )
            .await
        }
        W::Remove { id, common } => {
            let msg = format!("removed worker {id}");
            call_and_print(
                &common,
                Method::DELETE,
                &format!("/admin/v1/workers/{id}"),
                None,
                move |_| output::line(&msg),
            )
            .await
        }
        W::Projects { id, common } => {
            call_and_print(
                &common,
                Method::GET,
                &format!("/admin/v1/workers/{id}/projects"),
                None,
                |v| {
                    output::table(
                        v.as_array().map(Vec::as_slice).unwrap_or(&[]),
                        PROJECT_COLUMNS,
                    )
                },
            )
            .await
        }
        W::Placement { strategy, common } => {
            let (method, body) = match strategy {
                Some(s) => (Method::PUT, Some(json!({ "strategy": s }))),
                None => (Method::GET, None),
            };
            call_and_print(&common, method, "/admin/v1/placement", body, |v| {
                output::line(&format!(
                    "placement strategy: {}",
                    v["strategy"].as_str().unwrap_or("")
                ))
            })
            .await
        }
    }
}
