//! Cross-replica cache invalidation over Redis pub/sub: the tenant-manager publishes the ref of every
//! project whose keys, secrets or status change; every gateway and REST replica drops what it cached
//! about that project. After a lost connection a subscriber drops everything, since it may have missed
//! messages, and the directory's TTL stays the bound when Redis is unreachable.
//!
//! A message is `<ref> <unix ms>`: the publish time lets each subscriber measure the invalidation lag
//! (`supactl_directory_invalidation_lag_seconds`). A bare `<ref>` (a tenant-manager from before the
//! timestamp) is still understood; a subscriber from before it reads a stamped message as an unknown
//! ref, so while such gateways run beside a newer tenant-manager their caches fall back to the TTL.
//!
//! `rediss://` (ElastiCache with in-transit encryption) verifies the server's certificate against the
//! system's roots (`SSL_CERT_FILE`; the images ship Debian's bundle, which holds the Amazon roots that
//! ElastiCache's certificates chain to). redis-rs's `#insecure` switch is refused here, and its
//! `tls-rustls-insecure` feature is not compiled in.

use crate::directory::Directory;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The channel project refs are published on.
pub const CHANNEL: &str = "supactl:invalidate";

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(String);

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> RedisError {
        RedisError(e.to_string())
    }
}

/// A client for `url`, refusing one that turns certificate verification off.
pub fn client(url: &str) -> Result<redis::Client, RedisError> {
    if url.contains("#insecure") {
        return Err(RedisError(
            "#insecure turns off certificate verification: remove it (rediss:// verifies the \
             server against the system's roots)"
                .into(),
        ));
    }
    Ok(redis::Client::open(url)?)
}

/// Publishes invalidations.
#[derive(Clone)]
pub struct Publisher {
    conn: redis::aio::MultiplexedConnection,
}

impl Publisher {
    pub async fn connect(url: &str) -> Result<Publisher, RedisError> {
        let client = client(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Ok(Publisher { conn })
    }

    pub async fn publish(&self, project_ref: &str) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(message(project_ref, unix_ms()))
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }
}

/// The message published for `project_ref` at `at_ms`.
pub fn message(project_ref: &str, at_ms: u64) -> String {
    format!("{project_ref} {at_ms}")
}

/// The ref and publish time (when stamped) of a message.
pub fn parse_message(payload: &str) -> (&str, Option<u64>) {
    match payload.split_once(' ') {
        Some((r, at)) => (r, at.parse().ok()),
        None => (payload, None),
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Something to run with the ref of a changed project.
pub type ProjectHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What a subscriber does with a project ref.
pub type OnInvalidate = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// Subscribes for as long as the process lives, reconnecting with backoff. `on` gets `Some(ref)` per
/// message and `None` after a reconnect (drop everything).
pub fn subscribe(url: String, on: OnInvalidate) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        let mut first = true;
        loop {
            match listen(&url, &on, &mut first).await {
                Ok(()) => tracing::warn!("redis subscription ended; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "redis subscription failed; retrying"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

async fn listen(url: &str, on: &OnInvalidate, first: &mut bool) -> Result<(), RedisError> {
    let client = client(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    let metrics = &crate::metrics::metrics().backends;
    if !*first {
        metrics.invalidation(true, None, 0);
        on(None);
    }
    *first = false;
    let mut stream = pubsub.on_message();
    while let Some(msg) = stream.next().await {
        match msg.get_payload::<String>() {
            Ok(payload) => {
                let (r, published) = parse_message(&payload);
                metrics.invalidation(false, published, unix_ms());
                on(Some(r));
            }
            Err(e) => tracing::warn!(error = %e, "unreadable invalidation message"),
        }
    }
    Ok(())
}

/// The usual subscriber: forget the project in `directory`, then run `also` (e.g. drop a REST pool).
pub fn directory_subscriber(directory: Arc<Directory>, also: Option<ProjectHook>) -> OnInvalidate {
    Arc::new(move |r: Option<&str>| match r {
        Some(r) => {
            directory.invalidate_project(r);
            if let Some(f) = &also {
                f(r);
            }
        }
        None => directory.invalidate_all(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_publish_time_and_bare_refs_still_parse() {
        let m = message("abcdefghij", 1_765_000_000_123);
        assert_eq!(m, "abcdefghij 1765000000123");
        assert_eq!(parse_message(&m), ("abcdefghij", Some(1_765_000_000_123)));
        assert_eq!(parse_message("abcdefghij"), ("abcdefghij", None));
        assert_eq!(parse_message("abc junk"), ("abc", None));
    }
}
