//! What validation reports and how it collects it: an [`Issue`] (where, what, how to fix it), and the checker
//! the config's sections add their issues to.

use std::fmt;

use serde::Serialize;

/// Where a problem is and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.path, self.message, self.fix)
    }
}

/// A problem that does not stop the command.
pub type Warning = Issue;

pub(super) struct Checker {
    pub(super) issues: Vec<Issue>,
}

impl Checker {
    pub(super) fn err(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub(super) fn required<T: Clone>(&mut self, v: &Option<T>, path: &str, fix: &str) -> Option<T> {
        if v.is_none() {
            self.err(path, "is missing", fix);
        }
        v.clone()
    }
}

/// A `<…>` value in a config template, still to be filled in.
pub(super) fn is_placeholder(s: &str) -> bool {
    s.len() > 2 && s.starts_with('<') && s.ends_with('>')
}

/// A name of lowercase letters, digits and single hyphens, starting with a letter, at most `max` long.
pub(super) fn check_name(c: &mut Checker, path: &str, v: &str, max: usize) {
    let ok = !v.is_empty()
        && v.len() <= max
        && v.starts_with(|ch: char| ch.is_ascii_lowercase())
        && v.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && !v.ends_with('-')
        && !v.contains("--");
    if !ok {
        c.err(
            path,
            format!("{v:?} is not a valid name"),
            format!(
                "use 1-{max} lowercase letters, digits and single hyphens, starting with a letter"
            ),
        );
    }
}

/// `a.b[0].c` for a serde_ignored path (its own Display marks `Option`s with `?`).
pub(super) fn json_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", json_path(parent)),
        Path::Map { parent, key } => {
            let head = json_path(parent);
            if head.is_empty() {
                key.to_string()
            } else {
                format!("{head}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => json_path(parent),
    }
}

/// Every `<…>` placeholder left in `v`, with its path.
pub(super) fn find_placeholders(
    v: &serde_json::Value,
    path: String,
    out: &mut Vec<(String, String)>,
) {
    match v {
        serde_json::Value::String(s) if is_placeholder(s) => out.push((path, s.clone())),
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find_placeholders(v, p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                find_placeholders(v, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}
