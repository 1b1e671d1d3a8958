//! `supactl logs --env X [--service S] [--since 10m] [--follow]`: the stack's CloudWatch logs, one line per
//! event (`--output json`: one JSON object per line). `--follow` asks again every 2 s from the newest
//! event's time until Ctrl-C, never printing an event twice.

use super::infra::{session, AwsArgs, EnvArgs, Output};
use crate::duration::duration_ms;
use stacks::tail::{log_services, log_target, LogEvent};
use stacks::Error;
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const POLL: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// One service's logs (gateway, tenant-manager, functions as deployed; rest for the REST functions in
    /// Lambda mode); default every ECS service
    #[arg(long)]
    pub service: Option<String>,
    /// How far back to start: 30s, 10m, 2h, 1d
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// Keep printing new events until Ctrl-C
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Output format (json: one object per line).
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

pub(crate) async fn run(a: LogsArgs) -> Result<u8, Error> {
    let Some(since) = duration_ms(&a.since) else {
        eprintln!(
            "error: --since {}: not a duration (30s, 10m, 2h, 1d)",
            a.since
        );
        return Ok(2);
    };
    let s = session(&a.env, &a.aws).await?;
    let Some(target) = log_target(&s.config, a.service.as_deref()) else {
        eprintln!(
            "error: --service {}: no such service in this stack (it has {})",
            a.service.unwrap_or_default(),
            log_services(&s.config).join(", ")
        );
        return Ok(2);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let mut start = now - since as i64;
    // the ids already printed at the newest timestamp: the next read starts at that timestamp again
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let events = s.log_events(&target, start).await?;
        for e in events {
            if e.timestamp_ms < start || (e.timestamp_ms == start && seen.contains(&e.id)) {
                continue;
            }
            if e.timestamp_ms > start {
                start = e.timestamp_ms;
                seen.clear();
            }
            seen.insert(e.id.clone());
            print_event(&e, a.output);
        }
        if !a.follow {
            return Ok(0);
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
}

fn print_event(e: &LogEvent, output: Output) {
    let line = match output {
        Output::Json => serde_json::to_string(e).unwrap_or_default(),
        Output::Table => {
            let ms = e.timestamp_ms.max(0) as u64;
            let at = images::build::rfc3339(ms / 1000);
            // 2026-12-07T12:00:00Z → 2026-12-07T12:00:00.123Z
            let at = format!("{}.{:03}Z", at.trim_end_matches('Z'), ms % 1000);
            format!("{at} {} {}", e.stream, e.message)
        }
    };
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
}
