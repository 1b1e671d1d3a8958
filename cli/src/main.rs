//! `supactl`: thin commands over the platform's libraries.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "supactl",
    version,
    about = "run your own multi-tenant Supabase platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Infra(commands::infra::InfraCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Infra(cmd) => commands::infra::run(cmd).await,
    }
}
