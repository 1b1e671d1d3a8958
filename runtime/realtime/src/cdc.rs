//! postgres_changes: one capture task per project with subscribed channels on this replica.
//!
//! The task exists only while some channel of the project holds a usable postgres_changes binding
//! ([`Subscriptions`]): the first one starts it, the last one leaving stops it. It opens a
//! **temporary** pgoutput slot (it disappears with the connection) and polls it through the two
//! capture functions of the project database (`templates/realtime.sql`), on a connection of the
//! project's own login role ([`Cdc::project_login`]) under `SET ROLE supactl_realtime`: no login
//! holds the replication right, the functions' owner does, and they reach only slots of their own
//! database, so a project can read no other project's changes. Polling
//! (`pg_logical_slot_get_binary_changes` of the `supabase_realtime` publication) is adaptive:
//! 20 ms after a full batch, 50 ms after changes, backing off to 250 ms when idle. It decodes the
//! changes ([`crate::pgoutput`]) and delivers them:
//!
//! 1. candidate channels: those with a binding that [`ChangeSpec::matches`] the change;
//! 2. channels grouped by role and claims ([`rls::claims_group`]);
//! 3. per group, one visibility statement per table for all the batch's rows that need it (RLS on,
//!    not a DELETE), on the project's own login role under the group's role and claims
//!    ([`rls::VisibilityQuery`]), always rolled back; a failed check drops the rows for the
//!    group (never delivered unchecked);
//! 4. per group and table, the columns the role may SELECT (cached for the task's life) shape the
//!    data ([`Change::data_for`]); each channel gets `postgres_changes` with its matching ids.
//!
//! A channel that subscribes once the slot exists gets `system {postgres_changes, ok,
//! "Subscribed to PostgreSQL"}` at once, earlier ones when the slot is created. If the slot or a
//! connection cannot be had, every subscribed channel gets a `system` error and the next join
//! tries again. A replica opens at most [`Cdc`]'s cap of slots per database server; past it a join
//! gets [`TOO_MANY_SLOTS`], as does a join when the database holds its cap of capture slots (8) or
//! the server is out of slots. Each replica with subscribers runs its own slot (the Redis-elected
//! single owner of the design notes is not built): slots = projects with subscribers × replicas
//! holding them.

use crate::delivery::{Outgoing, SocketHandle};
use crate::join::{system_payload, ChangeSpec};
use crate::payload::{postgres_changes_payload, Change, ChangeKind, Column, MAX_RECORD_BYTES};
use crate::pgoutput::{Decoder, DecoderLimits, Relation, TableMeta};
use crate::presence::SocketId;
use crate::protocol::{event, Message};
use crate::rls::{self, KeyColumn, VisibilityQuery};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use supactl_common::keys::Role;
use supactl_common::pg;
use supactl_common::pg_tls::PgTls;
use supactl_common::wire::ProjectConfig;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// How a replica reaches a project's database to capture its changes (a login that may
/// `SET ROLE supactl_realtime`); `None` when it cannot.
pub type CdcSource =
    Arc<dyn Fn(&ProjectConfig) -> Option<(tokio_postgres::Config, PgTls)> + Send + Sync>;

/// How this replica captures changes: where it opens slots, and how many at once per database
/// server (every active slot decodes the server's whole WAL stream, so the cost grows with active
/// projects × the server's write rate; past the cap a join gets a `system` error and its broadcast
/// and presence keep working).
#[derive(Clone)]
pub struct Cdc {
    source: CdcSource,
    slots: Arc<SlotCap>,
}

impl Cdc {
    /// Captures on a connection of each project's own login role (what production uses).
    pub fn project_login(max_slots_per_server: usize) -> Self {
        let source: CdcSource = Arc::new(|project: &ProjectConfig| {
            let db = &project.db;
            Some((
                pg::project_config(db, "supactl-realtime-cdc"),
                db.tls.clone(),
            ))
        });
        Cdc::new(source, max_slots_per_server)
    }

    pub fn new(source: CdcSource, max_slots_per_server: usize) -> Self {
        Cdc {
            source,
            slots: Arc::new(SlotCap {
                max: max_slots_per_server,
                active: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// Active slots per database server (`host:port`) on this replica.
struct SlotCap {
    max: usize,
    active: Mutex<HashMap<String, usize>>,
}

impl SlotCap {
    fn acquire(self: &Arc<Self>, server: String) -> Option<SlotPermit> {
        let mut active = lock(&self.active);
        let n = active.entry(server.clone()).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SlotPermit {
            cap: self.clone(),
            server,
        })
    }
}

/// One active slot, counted until dropped.
struct SlotPermit {
    cap: Arc<SlotCap>,
    server: String,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        let mut active = lock(&self.cap.active);
        if let Some(n) = active.get_mut(&self.server) {
            *n -= 1;
            if *n == 0 {
                active.remove(&self.server);
            }
        }
    }
}

/// The `system` error of a join past [`Cdc`]'s cap.
pub const TOO_MANY_SLOTS: &str =
    "postgres_changes: too many projects with active subscriptions on this database server";

/// Changes asked for per poll (PostgreSQL finishes the transaction it is in).
const POLL_CHANGES: i32 = 1000;
const POLL_FULL: Duration = Duration::from_millis(20);
const POLL_BUSY: Duration = Duration::from_millis(50);
const POLL_IDLE: Duration = Duration::from_millis(250);

/// The role allowed to call the capture functions (templates/roles.sql).
const CAPTURE_ROLE: &str = "SET ROLE supactl_realtime";
/// `$1` the slot's suffix; returns the slot's name.
const CREATE_SLOT: &str = "SELECT realtime.supactl_capture_start($1)";
/// `$1` the slot, `$2` how many changes at most.
const POLL: &str = "SELECT c.data FROM realtime.supactl_capture_poll($1, $2) AS c(data)";
/// A table's columns, key (with SQL types for the visibility query) and RLS flag, by oid.
const TABLE_META: &str = "SELECT c.relrowsecurity, a.attname::text, t.typname::text, \
     format_type(a.atttypid, NULL), coalesce(a.attnum = ANY(i.indkey), false) \
     FROM pg_class c \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     JOIN pg_type t ON t.oid = a.atttypid \
     LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
     WHERE c.oid = $1 ORDER BY a.attnum";
/// The columns of a table a role may SELECT.
const SELECTABLE: &str = "SELECT attname::text FROM pg_attribute WHERE attrelid = $1 \
     AND attnum > 0 AND NOT attisdropped \
     AND has_column_privilege($2::text::name, attrelid, attname::text, 'SELECT')";

/// One channel's postgres_changes bindings and the identity they are checked with.
#[derive(Debug)]
pub struct Subscription {
    pub socket: SocketHandle,
    pub topic: String,
    pub join_ref: Option<String>,
    pub bindings: Vec<(u32, ChangeSpec)>,
    pub role: Role,
    pub claims: Map<String, Value>,
}

impl Subscription {
    fn send(&self, event: &str, payload: Map<String, Value>) {
        let msg = Message::json(self.join_ref.as_deref(), None, &self.topic, event, payload);
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) =
            self.socket.queue.try_send(Outgoing::new(msg))
        {
            self.socket.kick.cancel();
        }
    }

    fn system(&self, status: &str, message: &str) {
        let name = crate::join::sub_topic(&self.topic).unwrap_or(&self.topic);
        let payload = system_payload(event::POSTGRES_CHANGES, status, message, name);
        self.send(event::SYSTEM, payload);
    }
}

#[derive(Default)]
struct Registry {
    subs: HashMap<(SocketId, String), Arc<Subscription>>,
    /// The running capture task, cancelled when the last subscription leaves.
    task: Option<CancellationToken>,
    /// The task's slot exists.
    ready: bool,
}

/// The postgres_changes subscriptions of one project on this replica, and its capture task.
pub struct Subscriptions {
    cdc: Cdc,
    /// This replica's name as a slot suffix may carry it.
    replica: String,
    registry: Arc<Mutex<Registry>>,
}

impl Subscriptions {
    /// The subscriptions of one project on the replica named `replica`.
    pub fn new(cdc: Cdc, replica: &str) -> Self {
        let mut replica: String = replica
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        replica.truncate(16);
        Subscriptions {
            cdc,
            replica,
            registry: Arc::default(),
        }
    }

    /// Adds a channel's bindings; starts the capture task if none runs.
    pub fn add(&self, project: &Arc<ProjectConfig>, sub: Subscription) {
        let sub = Arc::new(sub);
        let mut registry = lock(&self.registry);
        registry
            .subs
            .insert((sub.socket.id, sub.topic.clone()), sub.clone());
        if registry.ready {
            sub.system("ok", "Subscribed to PostgreSQL");
        }
        if registry.task.is_some() {
            return;
        }
        let Some(source) = (self.cdc.source)(project) else {
            sub.system("error", UNAVAILABLE);
            return;
        };
        let server = format!("{}:{}", project.db.host, project.db.port);
        let Some(permit) = self.cdc.slots.acquire(server) else {
            sub.system("error", TOO_MANY_SLOTS);
            return;
        };
        let cancel = CancellationToken::new();
        registry.task = Some(cancel.clone());
        // The capture functions name the slot after the database; the suffix tells replicas, and
        // captures of one replica, apart (a stopped capture's session may still hold its slot).
        let suffix = format!("{}_{:07x}", self.replica, rand::random::<u32>() >> 4);
        let task = Capture {
            source,
            project: project.clone(),
            suffix,
            registry: self.registry.clone(),
            cancel,
            _permit: permit,
        };
        tokio::spawn(task.run());
    }

    /// A channel's new token: its changes are checked with this identity from now on.
    pub fn refresh(&self, socket: SocketId, topic: &str, role: Role, claims: Map<String, Value>) {
        let mut registry = lock(&self.registry);
        let key = (socket, topic.to_owned());
        if let Some(old) = registry.subs.get(&key) {
            let new = Subscription {
                socket: old.socket.clone(),
                topic: old.topic.clone(),
                join_ref: old.join_ref.clone(),
                bindings: old.bindings.clone(),
                role,
                claims,
            };
            registry.subs.insert(key, Arc::new(new));
        }
    }

    /// Removes a channel's bindings; the last one stops the capture task.
    pub fn remove(&self, socket: SocketId, topic: &str) {
        let mut registry = lock(&self.registry);
        if registry.subs.remove(&(socket, topic.to_owned())).is_none() || !registry.subs.is_empty()
        {
            return;
        }
        if let Some(task) = registry.task.take() {
            task.cancel();
        }
        registry.ready = false;
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.registry).task.take() {
            task.cancel();
        }
    }
}

/// A published table as the capture task knows it.
struct Table {
    oid: u32,
    meta: TableMeta,
    key: Vec<KeyColumn>,
}

struct Capture {
    source: (tokio_postgres::Config, PgTls),
    project: Arc<ProjectConfig>,
    /// The slot name's suffix (the capture functions add the database's part).
    suffix: String,
    registry: Arc<Mutex<Registry>>,
    cancel: CancellationToken,
    /// Released when the task ends.
    _permit: SlotPermit,
}

impl Capture {
    async fn run(self) {
        let outcome = self.capture().await;
        let mut registry = lock(&self.registry);
        let ours = registry
            .task
            .as_ref()
            .is_some_and(|t| !t.is_cancelled() && !self.cancel.is_cancelled());
        if let Err(e) = outcome {
            tracing::warn!(project = %self.project.project_ref, error = %e, "realtime: change capture stopped");
            if ours {
                let message = capture_error(&e);
                for sub in registry.subs.values() {
                    sub.system("error", message);
                }
            }
        }
        if ours {
            registry.task = None;
            registry.ready = false;
        }
    }

    async fn capture(&self) -> Result<(), tokio_postgres::Error> {
        let (cfg, tls) = &self.source;
        let repl = pg::connect(cfg, tls).await?;
        repl.batch_execute(CAPTURE_ROLE).await?;
        let slot: String = repl.query_one(CREATE_SLOT, &[&self.suffix]).await?.get(0);
        let db = &self.project.db;
        let mut checker = pg::connect(&pg::project_config(db, "supactl-realtime"), &db.tls).await?;
        {
            let mut registry = lock(&self.registry);
            for sub in registry.subs.values() {
                sub.system("ok", "Subscribed to PostgreSQL");
            }
            registry.ready = true;
        }
        let mut decoder = Decoder::new(DecoderLimits::default());
        let mut tables: HashMap<u32, (Relation, Arc<Table>)> = HashMap::new();
        let mut selectable: HashMap<(u32, Role), Arc<HashSet<String>>> = HashMap::new();
        let mut interval = POLL_BUSY;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(interval) => {}
            }
            let rows = repl.query(POLL, &[&slot, &POLL_CHANGES]).await?;
            let full = rows.len() >= POLL_CHANGES as usize;
            let mut changes = Vec::new();
            for row in &rows {
                let committed = match decoder.feed(row.get::<_, &[u8]>(0)) {
                    Ok(Some(committed)) => committed,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "realtime: undecodable pgoutput message");
                        continue;
                    }
                };
                for raw in committed.changes {
                    let table = table(&repl, &mut tables, &raw.relation).await?;
                    changes.push((raw.to_change(&table.meta), table));
                }
            }
            interval = match (full, changes.is_empty()) {
                (true, _) => POLL_FULL,
                (false, false) => POLL_BUSY,
                (false, true) => (interval * 2).min(POLL_IDLE),
            };
            if !changes.is_empty() {
                self.deliver(&mut checker, &changes, &mut selectable)
                    .await?;
            }
        }
    }

    /// Delivers a poll's changes to every channel that matches them and may see them.
    async fn deliver(
        &self,
        checker: &mut Client,
        changes: &[(Change, Arc<Table>)],
        selectable: &mut HashMap<(u32, Role), Arc<HashSet<String>>>,
    ) -> Result<(), tokio_postgres::Error> {
        let subs: Vec<Arc<Subscription>> = lock(&self.registry).subs.values().cloned().collect();
        let mut groups: BTreeMap<(&'static str, String), Vec<Arc<Subscription>>> = BTreeMap::new();
        for sub in subs {
            let key = (sub.role.as_str(), rls::claims_group(&sub.claims));
            groups.entry(key).or_default().push(sub);
        }
        for ((_, claims), members) in groups {
            let role = members[0].role;
            let wanted: Vec<usize> = (0..changes.len())
                .filter(|&i| {
                    members
                        .iter()
                        .any(|s| !matching(s, &changes[i].0).is_empty())
                })
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let visible = match visible(checker, role, &claims, changes, &wanted).await {
                Ok(visible) => visible,
                Err(e) if checker.is_closed() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "realtime: visibility check failed; rows dropped");
                    continue;
                }
            };
            for i in visible {
                let (change, table) = &changes[i];
                let oid = table.oid;
                let columns = match selectable.get(&(oid, role)) {
                    Some(columns) => columns.clone(),
                    None => {
                        let rows = checker.query(SELECTABLE, &[&oid, &role.as_str()]).await?;
                        let columns: Arc<HashSet<String>> =
                            Arc::new(rows.iter().map(|r| r.get(0)).collect());
                        selectable.insert((oid, role), columns.clone());
                        columns
                    }
                };
                let data = change.data_for(|c| columns.contains(c), MAX_RECORD_BYTES);
                for sub in &members {
                    let ids = matching(sub, change);
                    if !ids.is_empty() {
                        let payload = postgres_changes_payload(&ids, data.clone());
                        sub.send(event::POSTGRES_CHANGES, payload);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The `system` error subscribers get when capture fails.
fn capture_error(e: &tokio_postgres::Error) -> &'static str {
    match e.code() {
        // The capture functions or their role are missing: the server has no replication role.
        Some(&SqlState::UNDEFINED_FUNCTION)
        | Some(&SqlState::UNDEFINED_OBJECT)
        | Some(&SqlState::INSUFFICIENT_PRIVILEGE) => UNAVAILABLE,
        // The database's cap of capture slots, or the server's max_replication_slots.
        Some(&SqlState::CONFIGURATION_LIMIT_EXCEEDED) => TOO_MANY_SLOTS,
        _ => "Realtime was unable to connect to the project database",
    }
}

/// The `system` error of a join when the project's database offers no change capture.
pub const UNAVAILABLE: &str = "postgres_changes is not available for this project";

/// The ids of a channel's bindings that match `change`.
fn matching(sub: &Subscription, change: &Change) -> Vec<u32> {
    sub.bindings
        .iter()
        .filter(|(_, spec)| spec.matches(change))
        .map(|(id, _)| *id)
        .collect()
}

/// Which of the `wanted` changes a group may see: all but the RLS-protected rows its policies hide
/// (one statement per table, in one transaction that is rolled back).
async fn visible(
    checker: &mut Client,
    role: Role,
    claims: &str,
    changes: &[(Change, Arc<Table>)],
    wanted: &[usize],
) -> Result<Vec<usize>, tokio_postgres::Error> {
    let needs_check = |i: &usize| {
        let change = &changes[*i].0;
        change.rls_enabled && change.kind != ChangeKind::Delete && role != Role::ServiceRole
    };
    let mut visible: Vec<usize> = wanted.iter().copied().filter(|i| !needs_check(i)).collect();
    let mut by_table: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for &i in wanted.iter().filter(|i| needs_check(i)) {
        let change = &changes[i].0;
        by_table
            .entry((change.schema.as_str(), change.table.as_str()))
            .or_default()
            .push(i);
    }
    if by_table.is_empty() {
        return Ok(visible);
    }
    let claims_map: Map<String, Value> = serde_json::from_str(claims).unwrap_or_default();
    let sub = claims_map.get("sub").and_then(Value::as_str).unwrap_or("");
    let tx = checker.transaction().await?;
    tx.batch_execute(&rls::set_role(role.as_str())).await?;
    tx.query(rls::SET_CLAIMS, &[&claims, &sub, &role.as_str()])
        .await?;
    for ((schema, table), rows) in by_table {
        let key = &changes[rows[0]].1.key;
        let Ok(query) = VisibilityQuery::new(schema, table, key) else {
            continue; // no primary key: data_for reports the error to no one, as nothing is sent
        };
        let records: Vec<&Map<String, Value>> =
            rows.iter().map(|&i| &changes[i].0.record).collect();
        let Ok(params) = query.params(&records) else {
            continue;
        };
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        for row in tx.query(query.sql(), &params).await? {
            let ord: i64 = row.get(0);
            if let Some(&i) = usize::try_from(ord - 1).ok().and_then(|o| rows.get(o)) {
                visible.push(i);
            }
        }
    }
    tx.rollback().await?;
    visible.sort_unstable();
    Ok(visible)
}

/// The cached table of a relation, reloaded when a Relation message changed its shape.
async fn table(
    client: &Client,
    tables: &mut HashMap<u32, (Relation, Arc<Table>)>,
    relation: &Relation,
) -> Result<Arc<Table>, tokio_postgres::Error> {
    if let Some((known, table)) = tables.get(&relation.oid) {
        if known == relation {
            return Ok(table.clone());
        }
    }
    let (meta, key) = table_meta(client, relation.oid).await?;
    let table = Arc::new(Table {
        oid: relation.oid,
        meta,
        key,
    });
    tables.insert(relation.oid, (relation.clone(), table.clone()));
    Ok(table)
}

/// What the catalog says about a published table, by relation oid: its columns and types, its
/// primary key (with the SQL types the visibility query casts to) and whether RLS is on.
pub async fn table_meta(
    client: &Client,
    oid: u32,
) -> Result<(TableMeta, Vec<KeyColumn>), tokio_postgres::Error> {
    let rows = client.query(TABLE_META, &[&oid]).await?;
    let key: Vec<KeyColumn> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(4))
        .map(|r| KeyColumn {
            name: r.get(1),
            sql_type: r.get(3),
        })
        .collect();
    let meta = TableMeta {
        rls_enabled: rows.first().is_some_and(|r| r.get(0)),
        columns: rows
            .iter()
            .map(|r| Column {
                name: r.get(1),
                type_name: r.get(2),
            })
            .collect(),
        primary_key: key.iter().map(|k| k.name.clone()).collect(),
    };
    Ok((meta, key))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
