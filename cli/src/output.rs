//! Human and JSON output.

use clap::ValueEnum;
use serde_json::Value;
use std::io::Write;

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

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    #[default]
    Human,
    Json,
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
