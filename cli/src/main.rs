//! `supactl`: run your own multi-tenant Supabase cloud.
//!
//! Commands stay thin (argument parsing and output); the work is done by the runtime and stacks
//! libraries. Exit codes ([`EXIT_CODES`], shown by `--help`): 0 ok, 1 error, 2 usage or configuration
//! error, 3 changes pending (`plan --detailed-exitcode`).

mod admin_client;
mod commands;
mod duration;
mod functions_runtime;
mod local_state;
mod log_files;
mod log_json;
mod log_stderr;
mod output;
mod stack;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error (an API, AWS, database or I/O failure)
  2  usage or configuration error (bad flags, an invalid config file, a failed preflight check)
  3  changes pending (plan --detailed-exitcode)

Environment: NO_COLOR turns colour off (as --color never); SUPACTL_LOG filters logs (e.g. debug,
hyper=warn); SUPACTL_LOG_FORMAT=json|text chooses their form (default: text on a terminal, JSON lines
otherwise).";

#[derive(Parser)]
#[command(
    name = "supactl",
    version,
    about = "Run your own multi-tenant Supabase platform",
    propagate_version = true,
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    global: output::GlobalArgs,
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
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish.
    Completions(commands::docs::CompletionsArgs),
    /// Print the manual page (roff), or write one per command into a directory.
    Man(commands::docs::ManArgs),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Parses the command line, with clap's own help and errors coloured as `--color` says.
fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cmd = Cli::command();
    if let Some(c) = output::color_from_args(&args) {
        cmd = cmd.color(c);
    }
    let matches = cmd.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let cli = parse();
    output::init(&cli.global);
    // the services set up their own logging; other commands log only when asked (-v)
    if cli.global.verbose > 0 && !matches!(cli.command, Command::Up(_) | Command::Serve(_)) {
        stack::init_tracing_at(tracing::Level::WARN);
    }
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
    let code = runtime.block_on(async {
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
            Command::Completions(a) => commands::docs::completions(&a, Cli::command()),
            Command::Man(a) => commands::docs::man(&a, Cli::command()),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log_stderr::flush();
                eprintln!("error: {e:#}");
                ExitCode::from(e.exit_code())
            }
        }
    });
    log_stderr::flush();
    code
}
