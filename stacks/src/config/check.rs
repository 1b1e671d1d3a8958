//! What validation reports and how it collects it: an [`Issue`] (where, what, how to fix it), and the checker
//! the config's sections add their issues to; plus the rules AWS enforces that depend on more than one field
//! (Aurora capacity by engine version) or on AWS's character sets (tags).

use std::collections::BTreeMap;
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

/// Serverless v2 capacity must be a multiple of 0.5 ACU.
fn is_half_step(x: f64) -> bool {
    (x * 2.0).fract() == 0.0
}

/// `(major, minor)` of an Aurora PostgreSQL version (`16.6` → `(16, 6)`).
pub fn engine_version_parts(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// The first minor version of each Aurora PostgreSQL major whose Serverless v2 maximum is 256 ACU (earlier
/// ones: 128). Source: the "Aurora Serverless v2 capacity" table of the Aurora user guide; the RDS API states
/// the same per version in `DescribeDBEngineVersions` → `ServerlessV2FeaturesSupport.MaxCapacity`.
const MAX_256_SINCE: &[(u32, u32)] = &[(13, 14), (14, 11), (15, 6), (16, 2), (17, 0)];
/// The first minor version of each major that allows a minimum of 0 ACU (automatic pause and resume); earlier
/// ones start at 0.5 (`ServerlessV2FeaturesSupport.MinCapacity`).
const MIN_ZERO_SINCE: &[(u32, u32)] = &[(13, 15), (14, 12), (15, 7), (16, 3), (17, 0)];

fn since(table: &[(u32, u32)], v: (u32, u32)) -> bool {
    table
        .iter()
        .any(|&(major, minor)| v.0 == major && v.1 >= minor)
        || table.last().is_some_and(|&(major, _)| v.0 > major)
}

fn versions(table: &[(u32, u32)]) -> String {
    table
        .iter()
        .map(|(a, b)| format!("{a}.{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `serverlessV2Min/MaxCapacity`: set, in half-ACU steps within 0 to 256, min ≤ max; 256 ACU and 0 ACU only
/// where the engine version supports them (an unreadable version is reported by its own check).
pub(super) fn check_capacity(
    c: &mut Checker,
    r: &super::raw::RawRds,
    p: &dyn Fn(&str) -> String,
) -> (Option<f64>, Option<f64>) {
    let min = c.required(
        &r.serverless_v2_min_capacity,
        &p("serverlessV2MinCapacity"),
        "set it, e.g. 0.5",
    );
    let max = c.required(
        &r.serverless_v2_max_capacity,
        &p("serverlessV2MaxCapacity"),
        "set it, e.g. 4",
    );
    for (v, f) in [
        (min, "serverlessV2MinCapacity"),
        (max, "serverlessV2MaxCapacity"),
    ] {
        if let Some(v) = v {
            if !(0.0..=256.0).contains(&v) {
                c.err(
                    &p(f),
                    format!("{v} ACU is outside 0 to 256"),
                    "use a capacity between 0.5 (0 pauses an idle cluster) and 256 ACU",
                );
            } else if !is_half_step(v) {
                c.err(
                    &p(f),
                    format!("{v} ACU is not a multiple of 0.5"),
                    format!("round it to {}", (v * 2.0).round() / 2.0),
                );
            }
        }
    }
    let version = r.engine_version.as_deref();
    if let Some(parts) = version.and_then(engine_version_parts) {
        let v = version.unwrap_or_default();
        if min == Some(0.0) && !since(MIN_ZERO_SINCE, parts) {
            c.err(
                &p("serverlessV2MinCapacity"),
                format!("0 ACU (automatic pause) needs a newer Aurora PostgreSQL than {v}"),
                format!(
                    "use at least 0.5, or an engineVersion of {} or later",
                    versions(MIN_ZERO_SINCE)
                ),
            );
        }
        if max.is_some_and(|m| m > 128.0 && m <= 256.0) && !since(MAX_256_SINCE, parts) {
            c.err(
                &p("serverlessV2MaxCapacity"),
                format!(
                    "{} ACU is above Aurora PostgreSQL {v}'s maximum of 128",
                    max.unwrap_or_default()
                ),
                format!(
                    "use at most 128, or an engineVersion of {} or later",
                    versions(MAX_256_SINCE)
                ),
            );
        }
    }
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            c.err(
                &p("serverlessV2MaxCapacity"),
                format!("must be ≥ serverlessV2MinCapacity (got {hi} < {lo})"),
                "raise serverlessV2MaxCapacity or lower serverlessV2MinCapacity",
            );
        }
    }
    (min, max)
}

/// A character AWS allows in tag keys and values: letters, digits, spaces and `_ . : / = + - @` (the pattern
/// `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$` of the tagging APIs).
fn tag_char(ch: char) -> bool {
    ch.is_alphanumeric() || (ch.is_whitespace() && !ch.is_control()) || "_.:/=+-@".contains(ch)
}

/// `tags`: at most 40, none in the reserved `aws:`/`supactl:` namespaces, within AWS's lengths (in characters)
/// and character set, so that no call fails on them mid-deploy.
pub(super) fn check_tags(c: &mut Checker, tags: &BTreeMap<String, String>) {
    if tags.len() > 40 {
        c.err(
            "tags",
            format!("{} tags is too many", tags.len()),
            "use at most 40 tags (AWS allows 50 and supactl adds its own)",
        );
    }
    for (k, v) in tags {
        let path = format!("tags.{k}");
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("supactl:") {
            c.err(
                &path,
                "tag keys starting with aws: or supactl: are reserved",
                "rename the tag",
            );
        }
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            c.err(
                &path,
                "tag key must be 1-128 characters and its value at most 256",
                "shorten the tag",
            );
        }
        // a `<…>` placeholder is reported as one (a warning for `supactl push`)
        let value = if is_placeholder(v) { "" } else { v.as_str() };
        if let Some(bad) = k.chars().chain(value.chars()).find(|ch| !tag_char(*ch)) {
            c.err(
                &path,
                format!("{bad:?} is not allowed in an AWS tag"),
                "use letters, digits, spaces and _ . : / = + - @ only",
            );
        }
    }
}
