//! Private channels: what a caller may do on a topic, as the project's `realtime.messages` RLS
//! policies decide (Supabase's model; `templates/realtime.sql` creates the table and
//! `realtime.topic()`).
//!
//! [`Authorizer::check`] runs [`crate::rls`]'s statements for one or more topics in one transaction
//! on the project's own login role, always rolled back: per topic, probe rows are inserted as
//! `service_role` (it bypasses RLS), then under the caller's role and claims (the GUCs REST sets)
//! and `realtime.topic` the probes are read back (read) and an insert per extension is tried under
//! a savepoint (write; SQLSTATE 42501 means refused). A policy that fails with any other error
//! refuses what it guards, as Supabase does. The result, [`Policies`], is cached per channel by the
//! socket and computed again when the channel gets a new token. `service_role` bypasses RLS, so it
//! is allowed everything without a query.

use crate::identity::Identity;
use crate::rls;
use serde_json::Value;
use std::time::Duration;
use supactl_common::connections::{Pools, Registry, ServiceSpec};
use supactl_common::keys::Role;
use supactl_common::wire::ProjectConfig;
use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

/// What one caller may do on one private topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policies {
    /// Receive broadcasts.
    pub broadcast_read: bool,
    /// Send broadcasts.
    pub broadcast_write: bool,
    /// Receive presence state and diffs.
    pub presence_read: bool,
    /// Track presence.
    pub presence_write: bool,
}

impl Policies {
    /// Everything (public channels, `service_role`).
    pub const ALL: Policies = Policies {
        broadcast_read: true,
        broadcast_write: true,
        presence_read: true,
        presence_write: true,
    };

    /// Whether the caller may join: it can receive something.
    pub fn can_join(&self) -> bool {
        self.broadcast_read || self.presence_read
    }

    /// Whether `new` takes away something this allowed to receive (the channel then closes).
    pub fn read_revoked_by(&self, new: &Policies) -> bool {
        (self.broadcast_read && !new.broadcast_read) || (self.presence_read && !new.presence_read)
    }
}

/// The join refusal for a topic the caller may not read (`reason` of the error reply).
pub fn unauthorized(sub_topic: &str) -> String {
    format!(
        "Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"
    )
}

/// What a channel whose new token no longer allows reading is told before it closes.
pub fn revoked(sub_topic: &str) -> String {
    format!("You no longer have permission to read from this Channel topic: {sub_topic}")
}

/// Why the policies could not be checked; the text is the client's.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("Realtime was unable to connect to the project database")]
    Unavailable(String),
}

/// Runs policy checks on pooled connections of each project's login role.
pub struct Authorizer {
    pools: Pools,
}

/// Connections per project for policy checks (a check holds one for a few statements).
const POOL_SIZE: usize = 2;
/// Extensions realtime authorizes, as `realtime.messages.extension` names them.
const BROADCAST: &str = "broadcast";
const PRESENCE: &str = "presence";

impl Authorizer {
    /// Checks on pools of `registry` (the connection budget shared with the other services).
    pub fn new(registry: &Registry) -> Authorizer {
        Authorizer {
            pools: registry.service(ServiceSpec {
                application_name: "supactl-realtime",
                options: None,
                pool_size: POOL_SIZE,
                idle_timeout: Duration::from_secs(120),
                connection_idle_timeout: Duration::from_secs(60),
            }),
        }
    }

    /// Drops a project's connections (deleted or paused project, changed credentials).
    pub fn remove(&self, project_ref: &str) {
        self.pools.remove(project_ref);
    }

    /// The policies of `identity` on each of `topics` (channel names without `realtime:`), in order.
    pub async fn check(
        &self,
        project: &ProjectConfig,
        identity: &Identity,
        topics: &[&str],
    ) -> Result<Vec<Policies>, AuthzError> {
        if identity.role == Role::ServiceRole {
            return Ok(vec![Policies::ALL; topics.len()]);
        }
        let (pool, _) = self.pools.get(&project.project_ref, &project.db);
        let mut client = self.pools.checkout(&pool).await.map_err(|e| {
            tracing::warn!(project = %project.project_ref, error = %e, "realtime: no connection for a policy check");
            AuthzError::Unavailable(e.to_string())
        })?;
        let timeout = project.limits.statement_timeout_ms(identity.role);
        let outcome = async {
            let tx = client.transaction().await?;
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {timeout}"))
                .await?;
            let mut out = Vec::with_capacity(topics.len());
            for topic in topics {
                out.push(check_topic(&tx, identity, topic).await?);
            }
            tx.rollback().await?;
            Ok::<_, tokio_postgres::Error>(out)
        }
        .await;
        outcome.map_err(|e| {
            tracing::warn!(project = %project.project_ref, error = %e, "realtime: policy check failed");
            if supactl_common::pg::session_lost(&e) {
                drop(deadpool_postgres::Object::take(client));
            }
            AuthzError::Unavailable(e.to_string())
        })
    }
}

/// One topic's policies, inside a savepoint: a policy that errors refuses (and is logged); only a
/// lost connection is an error.
async fn check_topic(
    tx: &Transaction<'_>,
    identity: &Identity,
    topic: &str,
) -> Result<Policies, tokio_postgres::Error> {
    tx.batch_execute("SAVEPOINT supactl_topic").await?;
    match probe(tx, identity, topic).await {
        Ok(policies) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT supactl_topic")
                .await?;
            Ok(policies)
        }
        Err(e) if e.as_db_error().is_some() && !supactl_common::pg::session_lost(&e) => {
            tracing::info!(error = %e, "realtime: a realtime.messages policy failed; refused");
            tx.batch_execute("ROLLBACK TO SAVEPOINT supactl_topic")
                .await?;
            Ok(Policies::default())
        }
        Err(e) => Err(e),
    }
}

async fn probe(
    tx: &Transaction<'_>,
    identity: &Identity,
    topic: &str,
) -> Result<Policies, tokio_postgres::Error> {
    let role = identity.role.as_str();
    tx.batch_execute(&rls::set_role(Role::ServiceRole.as_str()))
        .await?;
    let ids: Vec<String> = tx
        .query(rls::PROBE_INSERT, &[&topic])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.batch_execute(&rls::set_role(role)).await?;
    let claims = Value::Object(identity.claims.clone()).to_string();
    let sub = identity
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    tx.execute(rls::SET_CLAIMS, &[&claims, &sub, &role]).await?;
    tx.execute(rls::SET_TOPIC, &[&topic]).await?;
    let readable: Vec<String> = tx
        .query(rls::READ_CHECK, &[&ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut policies = Policies {
        broadcast_read: readable.iter().any(|e| e == BROADCAST),
        presence_read: readable.iter().any(|e| e == PRESENCE),
        ..Policies::default()
    };
    for (extension, allowed) in [
        (BROADCAST, &mut policies.broadcast_write),
        (PRESENCE, &mut policies.presence_write),
    ] {
        tx.batch_execute("SAVEPOINT supactl_write").await?;
        match tx.execute(rls::WRITE_CHECK, &[&topic, &extension]).await {
            Ok(_) => *allowed = true,
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {}
            Err(e) => return Err(e),
        }
        tx.batch_execute("ROLLBACK TO SAVEPOINT supactl_write")
            .await?;
    }
    Ok(policies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_needs_one_read_and_losing_one_closes() {
        let none = Policies::default();
        assert!(!none.can_join());
        let presence_only = Policies {
            presence_read: true,
            ..none
        };
        assert!(presence_only.can_join());
        assert!(Policies::ALL.read_revoked_by(&presence_only));
        assert!(!presence_only.read_revoked_by(&Policies::ALL));
        // Losing a write right does not close the channel.
        let read_only = Policies {
            broadcast_write: false,
            presence_write: false,
            ..Policies::ALL
        };
        assert!(!Policies::ALL.read_revoked_by(&read_only));
        assert_eq!(
            unauthorized("room-1"),
            "Unauthorized: You do not have permissions to read from this Channel topic: room-1"
        );
    }
}
