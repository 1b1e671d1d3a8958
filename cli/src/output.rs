//! Human and JSON output, and the conventions every command shares: `--output table|json`, `--color`,
//! `NO_COLOR`, `-q/--quiet` and `-v/--verbose` (set once from the global flags, read where output is
//! written).

use clap::{ArgAction, ValueEnum};
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Writes a line to stdout; a closed pipe (`supactl … | head`) ends the process quietly.
pub fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{s}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `--output`: what every command that prints data takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns or labelled lines, for people.
    #[default]
    #[value(alias = "human", alias = "text")]
    Table,
    /// The data as JSON, for scripts.
    Json,
}

/// The flags every command takes (`global`: before or after the subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Colour in help, errors and logs: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = clap::ColorChoice::Auto, global = true)]
    pub color: clap::ColorChoice,
    /// Results and errors only: no progress or informational lines, logs at warn and above.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log detail (-v debug, -vv trace) where SUPACTL_LOG names no level.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

static QUIET: AtomicBool = AtomicBool::new(false);
static VERBOSE: AtomicU8 = AtomicU8::new(0);
/// 0 auto, 1 always, 2 never.
static COLOR: AtomicU8 = AtomicU8::new(0);

/// Records the global flags for the rest of the process.
pub fn init(g: &GlobalArgs) {
    QUIET.store(g.quiet, Ordering::Relaxed);
    VERBOSE.store(g.verbose, Ordering::Relaxed);
    let c = match g.color {
        clap::ColorChoice::Auto => 0,
        clap::ColorChoice::Always => 1,
        clap::ColorChoice::Never => 2,
    };
    COLOR.store(c, Ordering::Relaxed);
}

/// `-q`: progress and informational lines are not written.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// The log level when SUPACTL_LOG names none: `default` moved by -q (warn) and -v (debug, trace).
pub fn log_level(default: tracing::Level) -> tracing::Level {
    use tracing::Level;
    if quiet() {
        return Level::WARN;
    }
    match VERBOSE.load(Ordering::Relaxed) {
        0 => default,
        1 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Whether to colour what goes to stderr: `--color always|never`, else a terminal without NO_COLOR
/// (<https://no-color.org>: set and not empty).
pub fn color_stderr() -> bool {
    match COLOR.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => no_color_unset() && std::io::stderr().is_terminal(),
    }
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The `--color` given on the command line, read before clap parses (clap colours its own help and
/// errors, so the choice must be known when the parser is built). The last one wins, as in clap.
pub fn color_from_args(args: &[std::ffi::OsString]) -> Option<clap::ColorChoice> {
    let mut choice = None;
    let mut it = args.iter().skip(1).map(|a| a.to_str().unwrap_or(""));
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let value = match a.strip_prefix("--color") {
            Some("") => it.next(),
            Some(v) => v.strip_prefix('='),
            None => None,
        };
        if let Some(v) = value.and_then(|v| clap::ColorChoice::from_str(v, false).ok()) {
            choice = Some(v);
        }
    }
    choice
}

/// A progress or informational line on stderr, unless `-q`.
pub fn info(s: &str) {
    if !quiet() {
        eprintln!("{s}");
    }
}

/// Prints rows as an aligned table with the given columns (`(header, json key)`).
pub fn table(rows: &[Value], columns: &[(&str, &str)]) {
    let cell = |row: &Value, key: &str| match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|(h, k)| {
            rows.iter()
                .map(|r| cell(r, k).chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        line(parts.join("  ").trim_end());
    };
    line(columns.iter().map(|(h, _)| h.to_string()).collect());
    for r in rows {
        line(columns.iter().map(|(_, k)| cell(r, k)).collect());
    }
}

pub fn json(v: &Value) {
    line(&serde_json::to_string_pretty(v).expect("JSON value serialises"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_is_read_before_parsing() {
        let args = |s: &str| -> Vec<std::ffi::OsString> { s.split(' ').map(Into::into).collect() };
        assert_eq!(color_from_args(&args("supactl --help")), None);
        assert_eq!(
            color_from_args(&args("supactl --color never plan")),
            Some(clap::ColorChoice::Never)
        );
        assert_eq!(
            color_from_args(&args("supactl plan --color=always --color=never")),
            Some(clap::ColorChoice::Never)
        );
        assert_eq!(color_from_args(&args("supactl -- --color=always")), None);
        assert_eq!(color_from_args(&args("supactl --colorful")), None);
    }
}
