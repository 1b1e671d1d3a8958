//! `supactl build` and `supactl push`: OCI images of the runtime services without Docker. Argument parsing,
//! the cargo run, progress and output only; images are assembled and pushed by the `images` crate, and ECR
//! credentials come from the `stacks` crate.
//!
//! Every service image holds the same `supactl` binary; only the entrypoint differs (`supactl serve gateway`,
//! `supactl serve tenant-manager`), so the layers are shared and a push after the first one sends only a
//! small config blob and the manifests. The functions and tenant-manager images add one Deno layer, shared
//! between them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use images::registry::{BlobOutcome, Event, Observer};
use images::{BuildOptions, Layout, Registry, SERVICES};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::infra::AwsArgs;
use super::{CliError, CliResult};
use crate::output::{line, Format};
use serde_json::json;

/// An informational line on stderr (progress, sizes, what was pushed), left out with -q.
macro_rules! info {
    ($($t:tt)*) => {
        crate::output::info(&format!($($t)*))
    };
}

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Build the OCI images of the runtime services (no Docker): compiles supactl in release mode
    Build(BuildArgs),
    /// Push built images to ECR (--env) or any OCI registry (--registry), tagged with the git revision and latest
    Push(PushArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Services to build (default: all of them)
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
    /// Ship this supactl binary instead of compiling one (it should be a stripped release build)
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// The OCI image layout to write into
    #[arg(
        long,
        value_name = "DIR",
        env = "SUPACTL_IMAGES_DIR",
        default_value = "target/images"
    )]
    out: PathBuf,
    /// Source revision for the label and tag (default: `git rev-parse HEAD`, with -dirty for local changes)
    #[arg(long)]
    revision: Option<String>,
    /// gzip level of the layers, 0-9
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression: u32,
    /// Output format of the built images' list.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// The Deno binary the functions and tenant-manager images carry (default: the pinned one
    /// `scripts/setup.sh deno` installs, then `deno` on PATH)
    #[arg(long, value_name = "PATH", env = "SUPACTL_DENO")]
    deno: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Services to push (default: every image in the layout)
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
    /// Any OCI registry: HOST[:PORT][/PREFIX] (plain HTTP for loopback hosts or with http://)
    #[arg(
        long,
        value_name = "HOST[:PORT]/PREFIX",
        conflicts_with = "env",
        required_unless_present = "env"
    )]
    registry: Option<String>,
    /// ECR of the account and region in ./config.<ENV>.json (repositories <name>-<env>/<service>, created
    /// when missing)
    #[arg(long)]
    env: Option<String>,
    /// Config file to read instead of ./config.<ENV>.json
    #[arg(long, value_name = "PATH", requires = "env")]
    config: Option<PathBuf>,
    #[command(flatten)]
    aws: AwsArgs,
    /// User name for --registry
    #[arg(long, env = "SUPACTL_REGISTRY_USERNAME")]
    username: Option<String>,
    /// Read the password for --registry from stdin (or set SUPACTL_REGISTRY_PASSWORD)
    #[arg(long)]
    password_stdin: bool,
    /// The OCI image layout written by `supactl build`
    #[arg(
        long,
        value_name = "DIR",
        env = "SUPACTL_IMAGES_DIR",
        default_value = "target/images"
    )]
    images: PathBuf,
    /// Extra tags, besides the revision and `latest`
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Output format of the pushed images' list.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub async fn run(cmd: ImageCommand) -> CliResult {
    match cmd {
        ImageCommand::Build(a) => build(a).await,
        ImageCommand::Push(a) => push(a).await,
    }
}

fn usage(e: images::Error) -> CliError {
    match e {
        images::Error::UnknownService { .. } | images::Error::BadRegistry { .. } => {
            CliError::Usage(e.to_string())
        }
        e => CliError::Other(e.into()),
    }
}

fn services(names: &[String]) -> CliResult<Vec<&'static images::Service>> {
    if names.is_empty() {
        return Ok(SERVICES.iter().collect());
    }
    names
        .iter()
        .map(|n| images::service(n).map_err(usage))
        .collect()
}

/// Progress bars only on a terminal, and never with -q.
fn tty() -> bool {
    std::io::stderr().is_terminal() && !crate::output::quiet()
}

fn spinner(msg: &str) -> ProgressBar {
    if !tty() {
        info!("{msg}");
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// `git rev-parse HEAD`, with `-dirty` when the work tree has local changes.
fn git_revision() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}

/// `cargo build --release -p supactl`, with a spinner naming the crate being compiled; returns the binary.
fn compile() -> CliResult<PathBuf> {
    let pb = spinner("compiling supactl (release)");
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "supactl",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot run cargo ({e}): run `supactl build` from the supactl source tree with Rust installed, or pass --binary PATH"
            ))
        })?;
    let mut stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut binary = None;
    let mut compiled = 0;
    for l in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let Ok(l) = l else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
            continue;
        };
        if v["reason"] == "compiler-artifact" {
            compiled += 1;
            let name = v["target"]["name"].as_str().unwrap_or("");
            pb.set_message(format!(
                "compiling supactl (release): {compiled} crates, {name}"
            ));
            if name == "supactl" {
                if let Some(exe) = v["executable"].as_str() {
                    binary = Some(PathBuf::from(exe));
                }
            }
        }
    }
    let status = child.wait().context("wait for cargo")?;
    let stderr = err_thread.join().unwrap_or_default();
    pb.finish_and_clear();
    if !status.success() {
        return Err(anyhow!("cargo build --release -p supactl failed:\n{stderr}").into());
    }
    binary.ok_or_else(|| anyhow!("cargo built no supactl executable").into())
}

/// The machine an ELF executable is built for, from its header (`e_machine`).
fn elf_machine(header: &[u8]) -> Option<&'static str> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return None;
    }
    let m = match header[5] {
        1 => u16::from_le_bytes([header[18], header[19]]),
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => return None,
    };
    Some(match m {
        0x3e => "x86_64",
        0xb7 => "aarch64",
        0x03 => "x86",
        0x28 => "arm",
        0xf3 => "riscv",
        _ => "an unknown machine",
    })
}

/// Refuses a binary that is not x86_64: the stack runs the images as x86_64 (the task definitions'
/// `runtimePlatform`, the REST functions' `Architectures`), and a binary for another machine would fail at start.
fn check_machine(binary: &std::path::Path) -> CliResult {
    let mut header = [0u8; 20];
    let read = std::fs::File::open(binary)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok();
    match read.then(|| elf_machine(&header)).flatten() {
        Some("x86_64") => Ok(()),
        Some(m) => Err(CliError::Usage(format!(
            "{} is built for {m}, but the images run on x86_64 (ECS runtimePlatform X86_64, Lambda x86_64): build on an x86_64 host, or cross-compile (`cargo build --release -p supactl --target x86_64-unknown-linux-gnu`) and pass --binary",
            binary.display()
        ))),
        None => Err(CliError::Usage(format!(
            "{} is not an ELF executable: pass a Linux x86_64 build of supactl with --binary",
            binary.display()
        ))),
    }
}

async fn build(a: BuildArgs) -> CliResult {
    let svcs = services(&a.services)?;
    let started = Instant::now();
    let binary = match a.binary {
        Some(b) => {
            if !b.is_file() {
                return Err(CliError::Usage(format!(
                    "--binary {}: no such file",
                    b.display()
                )));
            }
            b
        }
        None => tokio::task::spawn_blocking(compile)
            .await
            .map_err(|e| anyhow!("compile task: {e}"))??,
    };
    check_machine(&binary)?;
    let compiled = started.elapsed();
    let revision = match a.revision {
        Some(r) => r,
        None => git_revision().unwrap_or_else(|| {
            eprintln!("warning: not a git checkout: labelling the images with revision `unknown` (pass --revision)");
            "unknown".into()
        }),
    };
    let mut opts = BuildOptions::new(&binary, revision.clone());
    opts.compression = a.compression;
    if svcs.iter().any(|s| s.deno) {
        opts.deno = Some(deno(a.deno)?);
    }
    let pb = spinner("assembling layers");
    let layers = tokio::task::spawn_blocking({
        let opts = opts.clone();
        move || images::build::layers(&opts)
    })
    .await
    .map_err(|e| anyhow!("layer task: {e}"))?
    .map_err(usage)?;
    pb.finish_and_clear();
    for l in layers.layers.iter().chain(&layers.deno) {
        info!(
            "layer {:<6} {} entries, {} compressed  {}",
            l.name,
            l.files,
            mb(l.blob.len() as u64),
            images::oci::digest(&l.blob)
        );
    }
    info!("shared libraries: {}", layers.libraries.join(" "));
    let layout = Layout::new(&a.out);
    let mut built_images = Vec::new();
    for svc in svcs {
        let built = images::build::write_image(&layout, svc, &layers, &opts).map_err(usage)?;
        let row = json!({
            "service": built.service,
            "digest": built.manifest.digest.to_string(),
            "compressed_bytes": built.compressed_size,
            "layout": a.out.display().to_string(),
        });
        if a.output == Format::Table {
            line(&format!(
                "{}  {}  {} compressed  ({}:{})",
                built.service,
                built.manifest.digest,
                mb(built.compressed_size),
                a.out.display(),
                built.service
            ));
        }
        built_images.push(row);
    }
    if a.output == Format::Json {
        crate::output::json(&serde_json::Value::Array(built_images));
    }
    info!(
        "built revision {revision} in {:.1}s (compile {:.1}s); push with `supactl push --registry HOST/PREFIX` or `supactl push --env ENV`",
        started.elapsed().as_secs_f64(),
        compiled.as_secs_f64()
    );
    Ok(())
}

/// The Deno binary to ship (checked to run on this machine), and its version on stderr.
fn deno(given: Option<PathBuf>) -> CliResult<PathBuf> {
    let path = match given {
        Some(p) if p.is_file() => p,
        Some(p) => {
            return Err(CliError::Usage(format!(
                "--deno {}: no such file",
                p.display()
            )))
        }
        None => functions::find_deno().map_err(|_| {
            CliError::Usage(
                "the functions and tenant-manager images carry Deno, and none was found: run `scripts/setup.sh deno` (the pinned build), or pass --deno PATH".into(),
            )
        })?,
    };
    check_machine(&path)?;
    let version = Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--deno {}: `deno --version` failed (not a Deno binary?)",
                path.display()
            ))
        })?;
    info!("deno: {} ({version})", path.display());
    Ok(path)
}

/// Progress bars per blob on a terminal, one line per blob otherwise.
struct Progress {
    service: String,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, (ProgressBar, u64)>>,
}

impl Observer for Progress {
    fn event(&self, e: Event) {
        let short = |d: &str| d.chars().take(19).collect::<String>();
        match e {
            Event::BlobStart { digest, size } => {
                let pb = match &self.multi {
                    Some(m) => {
                        let pb = m.add(ProgressBar::new(size));
                        pb.set_style(
                            ProgressStyle::with_template(
                                "{prefix} {msg:22} [{bar:30}] {bytes}/{total_bytes}",
                            )
                            .expect("template")
                            .progress_chars("=> "),
                        );
                        pb.set_prefix(self.service.clone());
                        pb.set_message(short(&digest));
                        pb
                    }
                    None => ProgressBar::hidden(),
                };
                if let Ok(mut b) = self.bars.lock() {
                    b.insert(digest, (pb, size));
                }
            }
            Event::BlobProgress { digest, sent } => {
                if let Some((pb, _)) = self.bars.lock().ok().and_then(|b| b.get(&digest).cloned()) {
                    pb.set_position(sent);
                }
            }
            Event::BlobDone { digest, outcome } => {
                let what = match outcome {
                    BlobOutcome::Present => "already there",
                    BlobOutcome::Mounted => "mounted",
                    BlobOutcome::Uploaded => "uploaded",
                };
                let entry = self.bars.lock().ok().and_then(|b| b.get(&digest).cloned());
                if let Some((pb, size)) = entry {
                    if self.multi.is_some() {
                        pb.set_position(size);
                        pb.finish_with_message(format!("{} {what}", short(&digest)));
                    } else {
                        info!("{}: {} {what} ({})", self.service, digest, mb(size));
                    }
                }
            }
            Event::Tagged { reference, digest } => {
                info!("{}: pushed {reference} ({digest})", self.service);
            }
        }
    }
}

fn password(a: &PushArgs) -> CliResult<Option<String>> {
    if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read the password from stdin")?;
        return Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(std::env::var("SUPACTL_REGISTRY_PASSWORD").ok())
}

async fn destination(a: &PushArgs) -> CliResult<(Registry, Option<images::Credentials>)> {
    if let Some(r) = &a.registry {
        let registry: Registry = r.parse().map_err(usage)?;
        let pass = password(a)?;
        let creds = match (&a.username, pass) {
            (Some(u), Some(p)) => Some(images::Credentials {
                username: u.clone(),
                password: p,
            }),
            (Some(_), None) => {
                return Err(CliError::Usage(
                    "--username needs a password: pass --password-stdin or set SUPACTL_REGISTRY_PASSWORD".into(),
                ))
            }
            (None, _) => None,
        };
        return Ok((registry, creds));
    }
    let env = a.env.clone().unwrap_or_default();
    let path = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("config.{env}.json")));
    let loaded = stacks::config::load(
        &path,
        &stacks::LoadOptions {
            region_override: a.aws.region.clone(),
            images_only: true,
        },
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let opts = stacks::AwsOptions {
        profile: a.aws.profile.clone(),
        region: a.aws.region.clone(),
        endpoint_url: a.aws.endpoint_url.clone(),
        no_retries: false,
    };
    let stack_err = |e: stacks::Error| match e.exit_code() {
        2 => CliError::Usage(e.to_string()),
        _ => CliError::Other(e.into()),
    };
    // ECR does not create repositories on push: make the stack's own (tagged, scan on push, lifecycle policy)
    let session = stacks::Session::connect(loaded.config.clone(), &opts)
        .await
        .map_err(stack_err)?;
    let plan = session
        .ensure_repositories(&stacks::Quiet, stacks::ApplyOptions::default())
        .await
        .map_err(stack_err)?;
    for c in plan.pending() {
        info!("{:?} ecr repository {}", c.action, c.name);
    }
    let login = stacks::ecr::login(&loaded.config, &opts)
        .await
        .map_err(stack_err)?;
    let registry: Registry = format!("https://{}/{}", login.host, login.prefix)
        .parse()
        .map_err(usage)?;
    Ok((
        registry,
        Some(images::Credentials {
            username: login.username,
            password: login.password,
        }),
    ))
}

async fn push(a: PushArgs) -> CliResult {
    let layout = Layout::new(&a.images);
    let names: Vec<String> = if a.services.is_empty() {
        let index = layout.index().map_err(usage)?;
        let mut n: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|m| m.annotations.get(images::oci::REF_NAME).cloned())
            .filter(|n| images::service(n).is_ok())
            .collect();
        n.sort();
        if n.is_empty() {
            return Err(CliError::Usage(format!(
                "no images in {}: run `supactl build` first (or pass --images DIR)",
                a.images.display()
            )));
        }
        n
    } else {
        services(&a.services)?
            .iter()
            .map(|s| s.name.to_string())
            .collect()
    };
    // each push mounts from the one before it: the images that carry Deno go last, next to each other,
    // so the second one mounts the Deno layer too
    let mut names = names;
    names.sort_by_key(|n| {
        (
            images::service(n).map(|s| s.deno).unwrap_or(false),
            n.clone(),
        )
    });
    let (registry, creds) = destination(&a).await?;
    let client = images::Client::new(registry.clone(), creds).map_err(usage)?;
    client.ping().await.map_err(usage)?;
    let multi = tty().then(MultiProgress::new);
    let mut mount_from: Option<String> = None;
    let mut total_uploaded = 0;
    let mut pushed = Vec::new();
    for name in &names {
        let (_, manifest, _) = layout.image(name).map_err(usage)?;
        let revision = manifest
            .annotations
            .get(images::oci::REVISION)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let mut tags = vec![tag_of(&revision), "latest".to_string()];
        for t in &a.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let repo = registry.repository(name);
        let progress = Progress {
            service: name.clone(),
            multi: multi.clone(),
            bars: Mutex::new(HashMap::new()),
        };
        let report = client
            .push(
                &layout,
                name,
                &repo,
                &tags,
                mount_from.as_deref(),
                &progress,
            )
            .await
            .map_err(usage)?;
        total_uploaded += report.uploaded.len();
        info!(
            "{name}: {} uploaded ({}), {} already there, {} mounted",
            report.uploaded.len(),
            mb(report.bytes_sent),
            report.present.len(),
            report.mounted.len()
        );
        let reference = format!("{}/{repo}@{}", registry.host, report.manifest_digest);
        if a.output == Format::Table {
            line(&reference);
        }
        pushed.push(json!({
            "service": name,
            "reference": reference,
            "digest": report.manifest_digest.to_string(),
            "tags": tags,
            "uploaded_blobs": report.uploaded.len(),
            "uploaded_bytes": report.bytes_sent,
        }));
        mount_from = Some(repo);
    }
    if a.output == Format::Json {
        crate::output::json(&serde_json::Value::Array(pushed));
    }
    info!(
        "pushed {} image(s), {total_uploaded} blob(s) uploaded",
        names.len()
    );
    Ok(())
}

/// A revision as a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn tag_of(revision: &str) -> String {
    let t: String = revision
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if t.starts_with(['.', '-']) {
        format!("r{}", &t[..t.len().min(127)])
    } else {
        t
    }
}
