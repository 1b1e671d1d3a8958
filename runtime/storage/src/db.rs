//! Storage's connections to project databases and who its statements run as.
//!
//! One small pool per project from the shared connection registry (`supactl-storage` in
//! `pg_stat_activity`), as the project's own login role. Every operation runs in a transaction after
//! [`supactl_common::pg::SET_CALLER`]: as the caller's role and claims, so RLS on `storage.buckets` and
//! `storage.objects` decides, or as `service_role` (which bypasses RLS) where Supabase acts as its
//! superuser: reading a bucket's limits, serving public buckets and signed URLs.

use crate::error::StorageResult;
use deadpool_postgres::Object;
use deadpool_postgres::Transaction;
use std::time::Duration;
use supactl_common::connections::{self, Registry, ServiceSpec};
use supactl_common::keys::Role;
use supactl_common::wire::ProjectConfig;

pub struct Pools {
    pools: connections::Pools,
}

impl Pools {
    pub fn new(registry: &Registry, max_size: usize, idle: Duration) -> Pools {
        Pools {
            pools: registry.service(ServiceSpec {
                application_name: "supactl-storage",
                options: Some("-c TimeZone=UTC".into()),
                pool_size: max_size,
                idle_timeout: idle,
                connection_idle_timeout: idle,
            }),
        }
    }

    pub fn remove(&self, project_ref: &str) {
        self.pools.remove(project_ref);
    }

    pub async fn get(&self, project: &ProjectConfig) -> StorageResult<Object> {
        let (pool, _) = self.pools.get(&project.project_ref, &project.db);
        Ok(pool.get().await?)
    }
}

/// Who a transaction's statements run as.
#[derive(Debug, Clone)]
pub struct Actor {
    pub role: Role,
    /// `request.jwt.claims`.
    pub claims: String,
    /// The user (`sub`) of a user's token: the owner of what it uploads.
    pub sub: Option<String>,
}

impl Actor {
    /// `service_role`, with no user: bypasses RLS.
    pub fn service() -> Actor {
        Actor {
            role: Role::ServiceRole,
            claims: r#"{"role":"service_role"}"#.into(),
            sub: None,
        }
    }

    /// `service_role` acting for the user of a signed upload URL (it owns the object).
    pub fn service_for(owner: Option<String>) -> Actor {
        Actor {
            sub: owner,
            ..Actor::service()
        }
    }

    /// The owner column's value: the user's id when it is a UUID.
    pub fn owner_uuid(&self) -> Option<String> {
        self.sub
            .as_deref()
            .filter(|s| is_uuid(s))
            .map(str::to_string)
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Opens a transaction on `client` running as `actor`, under its role's statement timeout on `project`.
pub async fn begin<'a>(
    client: &'a mut Object,
    project: &ProjectConfig,
    actor: &Actor,
) -> StorageResult<Transaction<'a>> {
    let tx = client.transaction().await?;
    let timeout = format!("{}ms", project.limits.statement_timeout_ms(actor.role));
    tx.query(
        supactl_common::pg::SET_CALLER,
        &[&actor.role.as_str(), &actor.claims, &timeout],
    )
    .await?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    #[test]
    fn owners_are_uuids() {
        assert!(super::is_uuid("0b3c1a4e-9f0e-4c3a-8d5e-1f2a3b4c5d6e"));
        assert!(!super::is_uuid("not-a-uuid"));
        assert!(!super::is_uuid(""));
    }
}
