//! Execution plans: `Accept: application/vnd.pgrst.plan[+json|+text]; for="…"; options=analyze|…`
//! answers with the `EXPLAIN` of the statement the request would run for the `for` media type, when
//! the project enables plans (`pgrst.db_plan_enabled`, off by default as in PostgREST; otherwise the
//! media type is not available, 406). With `analyze` the statement runs: a write (and any function
//! called by POST) then runs in a transaction that is always rolled back.

use super::response::Media;
use super::RequestCtx;
use crate::error::RestError;
use crate::exec::Outcome;
use crate::sql::{Render, Statement};
use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};

/// `EXPLAIN` options in the order PostgREST writes them.
const OPTIONS: [(&str, &str); 5] = [
    ("analyze", "ANALYZE"),
    ("verbose", "VERBOSE"),
    ("settings", "SETTINGS"),
    ("buffers", "BUFFERS"),
    ("wal", "WAL"),
];

/// The media types a plan may be `for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanFor {
    Json,
    Object,
    Csv,
    JsonStripped,
    ObjectStripped,
}

impl PlanFor {
    fn media(self) -> Media {
        match self {
            PlanFor::Json => Media::Json,
            PlanFor::Object => Media::Object,
            PlanFor::Csv => Media::Csv,
            PlanFor::JsonStripped => Media::JsonStripped,
            PlanFor::ObjectStripped => Media::ObjectStripped,
        }
    }

    pub(super) fn render(self) -> Render {
        self.media().render()
    }
}

/// A plan asked for by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// `+json` rather than `+text` (the default).
    json: bool,
    pub(super) of: PlanFor,
    /// Bits of [`OPTIONS`].
    options: u8,
}

impl Plan {
    /// One item of `Accept`, if it is a plan media type (whose `for` names one this engine produces).
    pub(super) fn parse(item: &str) -> Option<Plan> {
        let mut parts = split_unquoted(item, ';').into_iter();
        let json = match parts.next()?.trim().to_ascii_lowercase().as_str() {
            "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text" => false,
            "application/vnd.pgrst.plan+json" => true,
            _ => return None,
        };
        let (mut of, mut options) = (PlanFor::Json, 0u8);
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            match k.trim().to_ascii_lowercase().as_str() {
                "for" => {
                    of = match super::media::builtin(v, None)? {
                        Media::Json => PlanFor::Json,
                        Media::Object => PlanFor::Object,
                        Media::Csv => PlanFor::Csv,
                        Media::JsonStripped => PlanFor::JsonStripped,
                        Media::ObjectStripped => PlanFor::ObjectStripped,
                        _ => return None,
                    }
                }
                "options" => {
                    for o in v.split('|') {
                        if let Some(i) = OPTIONS.iter().position(|(name, _)| *name == o.trim()) {
                            options |= 1 << i;
                        }
                    }
                }
                _ => {}
            }
        }
        Some(Plan { json, of, options })
    }

    pub(super) fn analyze(self) -> bool {
        self.options & 1 != 0
    }

    /// `application/vnd.pgrst.plan+json; for="application/json"; options=analyze|verbose`.
    fn content_type(self) -> String {
        let mut ct = format!(
            "application/vnd.pgrst.plan+{}; for=\"{}\"",
            if self.json { "json" } else { "text" },
            self.of.media().mime()
        );
        let names: Vec<&str> = OPTIONS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.options & (1 << i) != 0)
            .map(|(_, (name, _))| *name)
            .collect();
        if !names.is_empty() {
            ct.push_str("; options=");
            ct.push_str(&names.join("|"));
        }
        ct.push_str("; charset=utf-8");
        ct
    }

    /// The statement explained instead of run.
    pub(super) fn explain(self, mut stmt: Statement) -> Statement {
        let mut opts = vec![if self.json {
            "FORMAT JSON"
        } else {
            "FORMAT TEXT"
        }];
        opts.extend(
            OPTIONS
                .iter()
                .enumerate()
                .filter(|(i, _)| self.options & (1 << i) != 0)
                .map(|(_, (_, sql))| *sql),
        );
        stmt.sql = format!("EXPLAIN ({}) {}", opts.join(", "), stmt.sql);
        stmt.explain = None;
        stmt.plan = true;
        stmt
    }
}

impl RequestCtx<'_> {
    /// The plan asked for, if any.
    pub(super) fn plan(&self) -> Option<Plan> {
        match self.media {
            Media::Plan(p) => Some(p),
            _ => None,
        }
    }

    /// The response to a request for a plan: 200 and the plan, nothing else.
    pub(super) fn plan_response(&self, plan: Plan, out: Outcome) -> Result<Response, RestError> {
        let mut res = Response::new(Body::from(out.body));
        if let Ok(v) = HeaderValue::from_str(&plan.content_type()) {
            res.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        *res.status_mut() = StatusCode::OK;
        Ok(res)
    }
}

/// Splits at `sep` outside double quotes (`for="a;b"` stays one parameter).
pub(super) fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_media_types_parse_as_postgrest_reads_them() {
        let p = Plan::parse("application/vnd.pgrst.plan").unwrap();
        assert_eq!((p.json, p.of, p.options), (false, PlanFor::Json, 0));
        let p = Plan::parse(
            "application/vnd.pgrst.plan+json; for=\"application/vnd.pgrst.object+json;nulls=stripped\"; options=verbose|analyze|bogus",
        )
        .unwrap();
        assert_eq!(p.of, PlanFor::ObjectStripped);
        assert!(p.analyze());
        assert_eq!(
            p.content_type(),
            "application/vnd.pgrst.plan+json; for=\"application/vnd.pgrst.object+json;nulls=stripped\"; options=analyze|verbose; charset=utf-8"
        );
        assert_eq!(
            Plan::parse("application/vnd.pgrst.plan+text;for=\"text/csv\"")
                .unwrap()
                .of,
            PlanFor::Csv
        );
        assert!(Plan::parse("application/vnd.pgrst.plan;for=\"text/xml\"").is_none());
        assert!(Plan::parse("application/json").is_none());
        assert_eq!(
            split_unquoted("a;for=\"b;c\";d", ';'),
            vec!["a", "for=\"b;c\"", "d"]
        );
    }
}
