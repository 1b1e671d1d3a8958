//! Reading the stack's CloudWatch logs (`supactl logs`): one ECS service's streams in the ECS log group (the
//! task definitions name them `<service>/<container>/<task id>`), or the REST functions' group in Lambda
//! mode, from a start time, in time order. Bounded: at most [`MAX_EVENTS`] events per read.

use crate::aws::err as aws;
use crate::config::{Config, RestMode};
use crate::kinds::logs::{log_group_name, rest_log_group_name};
use crate::{Error, Session};
use serde::Serialize;

/// Events returned by one [`Session::log_events`] call (a follow keeps calling).
pub const MAX_EVENTS: usize = 10_000;

/// The name `supactl logs --service` takes for the REST functions.
pub const REST: &str = "rest";

/// One log line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogEvent {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub stream: String,
    pub message: String,
    /// CloudWatch's id, to drop the events a follow reads twice at its boundary.
    #[serde(skip)]
    pub id: String,
}

/// Where `--service` reads from: a log group and the stream prefix within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub group: String,
    pub stream_prefix: Option<String>,
}

/// The services with logs: each deployed ECS service, and `rest` in Lambda mode.
pub fn log_services(cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = cfg
        .compute
        .services
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    if cfg.compute.rest.mode == RestMode::Lambda {
        out.push(REST.to_string());
    }
    out
}

/// The target of `service` (None: every ECS service), or None when there is no such service.
pub fn log_target(cfg: &Config, service: Option<&str>) -> Option<LogTarget> {
    match service {
        None => Some(LogTarget {
            group: log_group_name(cfg),
            stream_prefix: None,
        }),
        Some(REST) if cfg.compute.rest.mode == RestMode::Lambda => Some(LogTarget {
            group: rest_log_group_name(cfg),
            stream_prefix: None,
        }),
        Some(s) if cfg.compute.services.iter().any(|c| c.name == s) => Some(LogTarget {
            group: log_group_name(cfg),
            stream_prefix: Some(format!("{s}/")),
        }),
        Some(_) => None,
    }
}

impl Session {
    /// The events of `target` from `start_ms` on, in time order, at most [`MAX_EVENTS`].
    pub async fn log_events(
        &self,
        target: &LogTarget,
        start_ms: i64,
    ) -> Result<Vec<LogEvent>, Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .clients
                .logs
                .filter_log_events()
                .log_group_name(&target.group)
                .set_log_stream_name_prefix(target.stream_prefix.clone())
                .start_time(start_ms)
                .set_next_token(token.take())
                .limit(1000)
                .send()
                .await
                .map_err(aws("FilterLogEvents"))?;
            // the prefix is also checked here: moto_server ignores logStreamNamePrefix (AWS applies it)
            let prefix = target.stream_prefix.as_deref().unwrap_or("");
            let events = page
                .events()
                .iter()
                .filter(|e| e.log_stream_name().unwrap_or_default().starts_with(prefix));
            out.extend(events.map(|e| LogEvent {
                timestamp_ms: e.timestamp().unwrap_or_default(),
                stream: e.log_stream_name().unwrap_or_default().to_string(),
                message: e.message().unwrap_or_default().trim_end().to_string(),
                id: e.event_id().unwrap_or_default().to_string(),
            }));
            token = page.next_token().map(str::to_string);
            if token.is_none() || out.len() >= MAX_EVENTS {
                break;
            }
        }
        out.sort_by_key(|e| e.timestamp_ms);
        out.truncate(MAX_EVENTS);
        Ok(out)
    }
}
