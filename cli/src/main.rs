//! `supactl`: run your own multi-tenant Supabase cloud.
//!
//! Commands stay thin (argument parsing and output); the work is done by the runtime and stacks
//! libraries. Exit codes: 0 ok, 1 error, 2 usage or configuration error.

mod admin_client;
mod commands;
mod duration;
mod functions_runtime;
mod local_state;
mod output;
mod stack;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "supactl",
    version,
    about = "Run your own multi-tenant Supabase platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform on this machine over a local PostgreSQL (no AWS, no Docker).
    Up(commands::up::UpArgs),
    /// Manage projects through the tenant-manager's admin API.
    #[command(subcommand)]
    Project(commands::project::ProjectCommand),
    /// Manage the PostgreSQL worker servers that hold project databases.
    #[command(subcommand)]
    Worker(commands::worker::WorkerCommand),
    /// Manage a project's secrets.
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCommand),
    /// Manage a project's Edge Functions.
    #[command(subcommand)]
    Functions(commands::functions::FunctionsCommand),
    #[command(flatten)]
    Infra(commands::infra::InfraCommand),
    #[command(flatten)]
    Image(commands::image::ImageCommand),
    /// Run one runtime service in this process (as on ECS, or as an extra gateway replica).
    #[command(subcommand)]
    Serve(commands::serve::ServeCommand),
    /// Ask a service's health endpoint (the images' container health check): exit 0 when it answers 2xx.
    Healthcheck(commands::health::HealthArgs),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // rustls is compiled with two crypto providers in this workspace (aws-lc-rs, and ring through the mailer):
    // name the default so TLS clients that use it (Redis `rediss://`) can build their config
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let result = match cli.command {
            Command::Infra(cmd) => return commands::infra::run(cmd).await,
            Command::Up(args) => commands::up::run(args).await,
            Command::Image(cmd) => commands::image::run(cmd).await,
            Command::Project(cmd) => commands::project::run(cmd).await,
            Command::Serve(cmd) => commands::serve::run(cmd).await,
            Command::Worker(cmd) => commands::worker::run(cmd).await,
            Command::Secrets(cmd) => commands::secrets::run(cmd).await,
            Command::Functions(cmd) => commands::functions::run(cmd).await,
            Command::Healthcheck(args) => commands::health::run(args).await,
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(e.exit_code())
            }
        }
    })
}
