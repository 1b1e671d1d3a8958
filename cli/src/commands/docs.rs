//! `supactl completions SHELL` and `supactl man`: generated from the clap definitions at run time
//! (`clap_complete`, `clap_mangen`), so they always describe the binary that prints them; no build
//! script has to compile the argument types twice.

use super::{CliError, CliResult};
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write supactl.1 and one page per subcommand (supactl-project-create.1, …) into this directory
    /// instead of printing supactl(1).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script; e.g. `supactl completions bash > /etc/bash_completion.d/supactl`.
pub fn completions(a: &CompletionsArgs, mut cmd: clap::Command) -> CliResult {
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "supactl", &mut out);
    print_bytes(&out)
}

/// Prints supactl(1) as roff (`supactl man | man -l -`), or writes every page into `--out-dir`.
pub fn man(a: &ManArgs, cmd: clap::Command) -> CliResult {
    match &a.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::Usage(format!("--out-dir {}: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
            Ok(())
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("rendering the manual page")?;
            print_bytes(&out)
        }
    }
}

fn print_bytes(b: &[u8]) -> CliResult {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    match o.write_all(b).and_then(|()| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to stdout: {e}").into())
        }
        _ => Ok(()),
    }
}
