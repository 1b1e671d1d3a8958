//! `supactl validate|plan|deploy|destroy|status|outputs`: the platform's AWS stack (network, data and compute
//! tiers). Argument parsing, output, confirmation and progress only; the work is done by the `stacks` crate.
//!
//! Exit codes: 0 ok, 1 error, 2 usage or config error, 3 (`plan --detailed-exitcode`) changes pending.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use stacks::config::{load, LoadOptions};
use stacks::{Action, ApplyOptions, AwsOptions, Change, Error, Plan, Progress, Quirks, Session};

/// Which config file.
#[derive(clap::Args, Debug, Clone)]
pub struct EnvArgs {
    /// Environment: reads ./config.<ENV>.json
    #[arg(long, default_value = "test")]
    pub env: String,
    /// Config file to read instead of ./config.<ENV>.json
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// AWS options, on every command that talks to AWS.
#[derive(clap::Args, Debug, Clone)]
pub struct AwsArgs {
    /// Named profile of the shared AWS config (default: the standard credential chain)
    #[arg(long)]
    pub profile: Option<String>,
    /// Region (default: project.region from the config)
    #[arg(long)]
    pub region: Option<String>,
    /// Send AWS requests to this endpoint (e.g. an emulator on loopback)
    #[arg(long, value_name = "URL", env = "SUPACTL_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Print how many AWS API calls were made (and how many could change something) to stderr
    #[arg(long)]
    pub api_stats: bool,
    /// Step around the AWS emulator's known gaps (moto): for tests only
    #[arg(long, hide = true, env = "SUPACTL_EMULATOR_QUIRKS")]
    pub emulator_quirks: bool,
}

/// Which images to deploy.
#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    /// Image tag to deploy: resolved to a digest in ECR at plan time (task definitions reference images by
    /// digest, so a new image under the same tag is a new revision)
    #[arg(
        long,
        value_name = "TAG",
        default_value = "latest",
        env = "SUPACTL_IMAGE_TAG"
    )]
    pub image_tag: String,
}

pub use crate::output::Format as Output;

#[derive(clap::Subcommand, Debug)]
pub enum InfraCommand {
    /// Check the config (and, unless --offline, the AWS account and region it names)
    Validate {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Only check the file, do not call AWS
        #[arg(long)]
        offline: bool,
        /// Output format (json: `{"config", "ok", "warnings"}`).
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Show what deploy would change
    Plan {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[command(flatten)]
        images: ImageArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Exit 3 when changes are pending (0: none)
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Create or update the stack (network, data and compute tiers) to match the config
    Deploy {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[command(flatten)]
        images: ImageArgs,
        /// Do not ask for confirmation (CI)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Output format (json: one document `{"plan", "outcome"}` once done; needs --yes when there is
        /// something to apply, as nothing is asked in machine-readable mode)
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Delete every resource of the stack, in reverse order
    Destroy {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Do not ask for confirmation (CI)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Turn deletion protection off first
        #[arg(long)]
        force: bool,
        /// Output format (json: one document `{"plan", "outcome"}` once done; needs --yes when there is
        /// something to delete)
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// List each resource with its live state, ECS services' task counts and the REST functions
    Status {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[command(flatten)]
        images: ImageArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Print the stack's CloudWatch logs (every ECS service, or one with --service), optionally following
    Logs(super::logs::LogsArgs),
    /// Print what the deployed stack gives you: URLs, the DNS records to create, endpoints, secret ARNs
    Outputs {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

/// Runs one infrastructure command and returns the process exit code.
pub async fn run(cmd: InfraCommand) -> ExitCode {
    match run_inner(cmd).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn aws_options(a: &AwsArgs) -> AwsOptions {
    AwsOptions {
        profile: a.profile.clone(),
        region: a.region.clone(),
        endpoint_url: a.endpoint_url.clone(),
        no_retries: false,
    }
}

fn apply_options(a: &AwsArgs, force: bool) -> ApplyOptions {
    ApplyOptions {
        force,
        quirks: if a.emulator_quirks {
            Quirks::moto()
        } else {
            Quirks::default()
        },
        ..ApplyOptions::default()
    }
}

pub(crate) async fn session(env: &EnvArgs, aws: &AwsArgs) -> Result<Session, Error> {
    let path = env
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("config.{}.json", env.env)));
    let loaded = load(
        &path,
        &LoadOptions {
            region_override: aws.region.clone(),
            ..Default::default()
        },
    )?;
    for w in &loaded.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Session::connect(loaded.config, &aws_options(aws)).await
}

fn stats(aws: &AwsArgs, s: &Session) {
    if aws.api_stats {
        let calls = s.clients.log.calls();
        let mutating = s.clients.log.mutating();
        eprintln!(
            "api calls: {} ({} mutating{})",
            calls.len(),
            mutating.len(),
            if mutating.is_empty() {
                String::new()
            } else {
                format!(": {}", mutating.join(", "))
            }
        );
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// The plan and its estimated monthly cost (`cost` in JSON; a warning instead when the region has no
/// prices).
fn print_plan(plan: &Plan, cost: Result<stacks::cost::Estimate, String>, output: Output) {
    match output {
        Output::Table => {
            out(&plan.to_string());
            match &cost {
                Ok(e) => out(&format!("\n{e}")),
                Err(why) => eprintln!("warning: cost: {why}"),
            }
        }
        Output::Json => {
            let mut v = serde_json::to_value(plan).unwrap_or_default();
            v["cost"] = match cost {
                Ok(e) => serde_json::to_value(e).unwrap_or_default(),
                Err(why) => serde_json::json!({"error": why}),
            };
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&v)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
            ))
        }
    }
}

/// The end of a deploy or destroy: the closing line, or in JSON the plan that was carried out and its
/// `outcome` (`applied`, `destroyed`, `no_changes`).
fn finished(output: Output, plan: &Plan, outcome: &str, line: &str) {
    match output {
        Output::Table => out(line),
        Output::Json => {
            let mut v = serde_json::to_value(plan).unwrap_or_default();
            v = serde_json::json!({"plan": v, "outcome": outcome});
            crate::output::json(&v);
        }
    }
}

/// Asks on a TTY; without one, or when stdout is JSON for a script, `--yes` is required.
fn confirm(yes: bool, what: &str, output: Output) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || output == Output::Json {
        return Err(Error::NeedsConfirmation);
    }
    print!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::NotApproved)
    }
}

async fn run_inner(cmd: InfraCommand) -> Result<u8, Error> {
    match cmd {
        InfraCommand::Validate {
            env,
            aws,
            offline,
            output,
        } => {
            let path = env
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("config.{}.json", env.env)));
            let loaded = load(
                &path,
                &LoadOptions {
                    region_override: aws.region.clone(),
                    ..Default::default()
                },
            )?;
            let warnings = loaded.warnings;
            if !offline {
                let s = Session::connect(loaded.config, &aws_options(&aws)).await?;
                s.preflight().await?;
                s.compute_preflight().await?;
                stats(&aws, &s);
            }
            match output {
                Output::Table => {
                    for w in &warnings {
                        eprintln!("warning: {}: {w}", path.display());
                    }
                    out(&format!("{}: ok\n", path.display()));
                }
                Output::Json => crate::output::json(&serde_json::json!({
                    "config": path.display().to_string(),
                    "ok": true,
                    "warnings": warnings,
                })),
            }
            Ok(0)
        }
        InfraCommand::Plan {
            env,
            aws,
            images,
            output,
            detailed_exitcode,
        } => {
            let mut s = session(&env, &aws).await?;
            s.image_tag = images.image_tag;
            let p = s.plan().await?;
            let cost = stacks::cost::estimate(&s.config, &p.desired, &s.region);
            print_plan(&p.plan, cost, output);
            stats(&aws, &s);
            Ok(if detailed_exitcode && p.plan.has_changes() {
                3
            } else {
                0
            })
        }
        InfraCommand::Deploy {
            env,
            aws,
            images,
            yes,
            output,
        } => {
            let mut s = session(&env, &aws).await?;
            s.image_tag = images.image_tag;
            let p = s.plan().await?;
            if output == Output::Table {
                out(&p.plan.to_string());
            }
            if !p.plan.has_changes() {
                finished(output, &p.plan, "no_changes", "");
                stats(&aws, &s);
                return Ok(0);
            }
            confirm(yes, "apply these changes", output)?;
            let progress = Bars::new();
            // recomputed and compared inside: refuses if anything moved since the plan was shown
            s.deploy(Some(&p.plan), &progress, apply_options(&aws, false))
                .await?;
            finished(output, &p.plan, "applied", "\nApply complete.\n");
            stats(&aws, &s);
            Ok(0)
        }
        InfraCommand::Destroy {
            env,
            aws,
            yes,
            force,
            output,
        } => {
            let s = session(&env, &aws).await?;
            let p = s.destroy_plan().await?;
            if output == Output::Table {
                out(&p.plan.to_string());
            }
            if !p.plan.has_changes() {
                finished(output, &p.plan, "no_changes", "Nothing to destroy.\n");
                return Ok(0);
            }
            let protected = Session::protected(&p);
            if !protected.is_empty() && !force {
                return Err(Error::DeletionProtected { names: protected });
            }
            confirm(yes, "destroy every resource listed", output)?;
            let progress = Bars::new();
            s.destroy(Some(&p.plan), &progress, apply_options(&aws, force))
                .await?;
            finished(output, &p.plan, "destroyed", "\nDestroy complete.\n");
            stats(&aws, &s);
            Ok(0)
        }
        InfraCommand::Outputs { env, aws, output } => {
            let s = session(&env, &aws).await?;
            let o = s.outputs().await?;
            match output {
                Output::Json => out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&o).unwrap_or_default()
                )),
                Output::Table => out(&o.to_string()),
            }
            stats(&aws, &s);
            Ok(0)
        }
        InfraCommand::Logs(a) => super::logs::run(a).await,
        InfraCommand::Status {
            env,
            aws,
            images,
            output,
        } => {
            let mut s = session(&env, &aws).await?;
            s.image_tag = images.image_tag;
            let rows = s.status().await?;
            match output {
                Output::Json => out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                )),
                Output::Table => {
                    let mut t = format!(
                        "{:<28} {:<26} {:<10} {:<8} PHYSICAL\n",
                        "ID", "KIND", "STATE", "PENDING"
                    );
                    for r in rows {
                        let pending = match r.action {
                            Action::NoOp => "-",
                            Action::Create => "create",
                            Action::Update => "update",
                            Action::Replace => "replace",
                            Action::Delete => "delete",
                        };
                        t.push_str(&format!(
                            "{:<28} {:<26} {:<10} {:<8} {}{}{}\n",
                            r.id,
                            r.kind,
                            r.state,
                            pending,
                            r.physical.unwrap_or_default(),
                            r.endpoint.map(|e| format!(" ({e})")).unwrap_or_default(),
                            r.detail.map(|d| format!(" [{d}]")).unwrap_or_default()
                        ));
                    }
                    out(&t);
                }
            }
            stats(&aws, &s);
            Ok(0)
        }
    }
}

/// A progress line per resource: indicatif spinners on a terminal, plain lines otherwise.
struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Self {
        Bars {
            multi: (std::io::stderr().is_terminal() && !crate::output::quiet())
                .then(MultiProgress::new),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "deleting",
        Action::NoOp => "checking",
    }
}

impl Progress for Bars {
    fn start(&self, c: &Change) {
        let line = format!("{} {} {}", verb(c.action), c.kind, c.id);
        match &self.multi {
            Some(m) => {
                let pb = m.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_message(line);
                pb.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut b) = self.bars.lock() {
                    b.insert(c.id.to_string(), pb);
                }
            }
            None => crate::output::info(&format!("{line} ...")),
        }
    }

    fn note(&self, c: &Change, msg: &str) {
        let line = format!("{} {} {}: {msg}", verb(c.action), c.kind, c.id);
        match self
            .bars
            .lock()
            .ok()
            .and_then(|b| b.get(c.id.as_str()).cloned())
        {
            Some(pb) => pb.set_message(line),
            None => crate::output::info(&line),
        }
    }

    fn finish(&self, c: &Change, outcome: Result<&str, &Error>) {
        let line = match outcome {
            Ok(msg) => format!("✓ {} {}: {msg}", c.kind, c.id),
            Err(e) => format!("✗ {} {}: {e}", c.kind, c.id),
        };
        let pb = self
            .bars
            .lock()
            .ok()
            .and_then(|mut b| b.remove(c.id.as_str()));
        match pb {
            Some(pb) => pb.finish_with_message(line),
            None => crate::output::info(&line),
        }
    }
}
