//! What functions printed and how their invocations ended, kept in a bounded ring per function for the logs
//! endpoint (`GET …/functions/{slug}/logs`). Lines are cut at [`MAX_LINE_BYTES`]; the oldest records go first.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A console line longer than this is cut (and marked so).
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// One record of a function's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The invocation it belongs to, when known (console output during a request; outcomes).
    pub invocation: Option<u64>,
    /// `log`, `info`, `warn`, `error`, `debug`, `trace` for console calls; `stdout` / `stderr` for what the
    /// process wrote otherwise (Deno's own errors); `invocation` for an outcome; `worker` for starts and exits.
    pub level: String,
    pub message: String,
    /// For an `invocation` record: the status returned to the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// For an `invocation` record: wall time until the response head, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl LogRecord {
    pub fn new(invocation: Option<u64>, level: &str, message: &str) -> LogRecord {
        LogRecord {
            timestamp_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            invocation,
            level: level.into(),
            message: cut(message),
            status: None,
            duration_ms: None,
        }
    }
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_LINE_BYTES {
        return s.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut]", &s[..end])
}

/// The function a record belongs to: (project ref, slug).
pub type FunctionKey = (String, String);

/// Every function's ring.
#[derive(Debug)]
pub struct Logs {
    capacity: usize,
    rings: Mutex<HashMap<FunctionKey, VecDeque<LogRecord>>>,
}

impl Logs {
    pub fn new(capacity: usize) -> Logs {
        Logs {
            capacity,
            rings: Mutex::default(),
        }
    }

    pub fn push(&self, key: &FunctionKey, record: LogRecord) {
        let mut rings = self.rings.lock().expect("logs lock");
        let ring = match rings.get_mut(key) {
            Some(r) => r,
            None => rings.entry(key.clone()).or_default(),
        };
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    /// The function's records, oldest first.
    pub fn get(&self, project: &str, slug: &str) -> Vec<LogRecord> {
        let key = (project.to_string(), slug.to_string());
        let rings = self.rings.lock().expect("logs lock");
        rings
            .get(&key)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_records_and_cuts_long_lines() {
        let logs = Logs::new(3);
        let key = ("p".to_string(), "f".to_string());
        for i in 0..5 {
            logs.push(&key, LogRecord::new(Some(i), "log", &format!("line {i}")));
        }
        let got: Vec<_> = logs.get("p", "f").into_iter().map(|r| r.message).collect();
        assert_eq!(got, ["line 2", "line 3", "line 4"]);
        assert!(logs.get("p", "other").is_empty());
        let long = LogRecord::new(None, "stderr", &"é".repeat(MAX_LINE_BYTES));
        assert!(long.message.len() < MAX_LINE_BYTES + 16 && long.message.ends_with("[cut]"));
    }
}
