//! A decoder of pgoutput, PostgreSQL's built-in logical decoding output (protocol version 1), as
//! `pg_logical_slot_get_binary_changes(slot, NULL, n, 'proto_version', '1', 'publication_names',
//! 'supabase_realtime')` returns it: one message per row.
//!
//! [`decode`] reads one message; a [`Decoder`] follows a stream of them, remembers each table's
//! Relation message, buffers a transaction's row changes and hands them over at its Commit, so
//! nothing of an uncommitted or rolled-back transaction is ever delivered. [`RawChange::to_change`]
//! then builds a [`Change`] with the table's catalog facts ([`TableMeta`]: primary key, RLS, column
//! types), which pgoutput does not carry. Reading is bounds-checked (a short or inconsistent message
//! is an error, never a panic) and a transaction keeps at most [`DecoderLimits::max_changes_per_txn`]
//! changes.

use crate::payload::{commit_timestamp_from_micros, typed_value, Change, ChangeKind, Column};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One column value of a tuple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    /// An unchanged TOASTed value, not sent (UPDATE without `REPLICA IDENTITY FULL`).
    Unchanged,
    /// The value in PostgreSQL's text output.
    Text(String),
}

/// A column as a Relation message describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationColumn {
    pub name: String,
    pub type_oid: u32,
    /// Part of the replica identity (the primary key by default, every column with `FULL`).
    pub is_key: bool,
}

/// A Relation message: a published table's shape, sent before its first change in a session and
/// again after it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub columns: Vec<RelationColumn>,
}

/// One pgoutput message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Begin {
        final_lsn: u64,
        commit_time: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    },
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Cell>,
    },
    /// `old` is the key (`K`) or the whole old row (`O`) when the replica identity sends one.
    Update {
        relation: u32,
        old: Option<Vec<Cell>>,
        new: Vec<Cell>,
    },
    Delete {
        relation: u32,
        old: Vec<Cell>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Origin, Type and logical decoding messages: nothing for postgres_changes.
    Other(u8),
}

/// The largest column count PostgreSQL allows in a table (`MaxTupleAttributeNumber`).
const MAX_COLUMNS: usize = 1664;

/// Decodes one pgoutput message.
pub fn decode(bytes: &[u8]) -> Result<Message, PgOutputError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let tag = r.u8()?;
    let msg = match tag {
        b'B' => Message::Begin {
            final_lsn: r.u64()?,
            commit_time: r.i64()?,
            xid: r.u32()?,
        },
        b'C' => {
            r.u8()?; // flags, unused
            Message::Commit {
                commit_lsn: r.u64()?,
                end_lsn: r.u64()?,
                commit_time: r.i64()?,
            }
        }
        b'R' => {
            let oid = r.u32()?;
            let (schema, name) = (r.cstr()?, r.cstr()?);
            r.u8()?; // replica identity setting
            let n = r.count()?;
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                let is_key = r.u8()? & 1 == 1;
                let name = r.cstr()?;
                let type_oid = r.u32()?;
                r.u32()?; // typmod
                columns.push(RelationColumn {
                    name,
                    type_oid,
                    is_key,
                });
            }
            // pgoutput writes an empty namespace for pg_catalog.
            let schema = if schema.is_empty() {
                "pg_catalog".to_owned()
            } else {
                schema
            };
            Message::Relation(Relation {
                oid,
                schema,
                name,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            r.expect(b'N')?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let old = match r.u8()? {
                b'K' | b'O' => {
                    let old = r.tuple()?;
                    r.expect(b'N')?;
                    Some(old)
                }
                b'N' => None,
                other => return Err(PgOutputError::Unexpected(other)),
            };
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => Message::Delete {
                    relation,
                    old: r.tuple()?,
                },
                other => return Err(PgOutputError::Unexpected(other)),
            }
        }
        b'T' => {
            let n = r.u32()? as usize;
            r.u8()?; // options
            if n > bytes.len() / 4 {
                return Err(PgOutputError::Truncated);
            }
            Message::Truncate {
                relations: (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?,
            }
        }
        b'O' | b'Y' | b'M' => return Ok(Message::Other(tag)),
        other => return Err(PgOutputError::Unexpected(other)),
    };
    if r.pos != bytes.len() {
        return Err(PgOutputError::TrailingBytes);
    }
    Ok(msg)
}

/// A row change of a committed transaction, before the catalog facts are added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawChange {
    pub relation: Relation,
    pub kind: ChangeKind,
    pub new: Vec<Cell>,
    pub old: Option<Vec<Cell>>,
    /// Microseconds since 2000-01-01 UTC.
    pub commit_time: i64,
}

/// What the catalog says about a published table (cached per relation oid by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// Every column in attribute order, with its type name.
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub rls_enabled: bool,
}

impl RawChange {
    /// The change with JSON-typed values. Unchanged TOAST values are taken from the old row when
    /// it has them, otherwise left out (as Supabase does).
    pub fn to_change(&self, meta: &TableMeta) -> Change {
        let type_of = |name: &str| {
            meta.columns
                .iter()
                .find(|c| c.name == name)
                .map_or("text", |c| c.type_name.as_str())
        };
        let row = |cells: &[Cell], fallback: Option<&Map<String, Value>>| -> Map<String, Value> {
            let mut out = Map::new();
            for (col, cell) in self.relation.columns.iter().zip(cells) {
                let value = match cell {
                    Cell::Null => Value::Null,
                    Cell::Text(text) => {
                        typed_value(type_of(&col.name), Value::String(text.clone()))
                    }
                    Cell::Unchanged => match fallback.and_then(|old| old.get(&col.name)) {
                        Some(value) => value.clone(),
                        None => continue,
                    },
                };
                out.insert(col.name.clone(), value);
            }
            out
        };
        let old_cells = self.old.as_deref().unwrap_or_default();
        // A key-only old tuple sends nulls for non-key columns: keep just the key then.
        let old_record: Map<String, Value> = row(old_cells, None)
            .into_iter()
            .filter(|(name, value)| {
                !value.is_null()
                    || self
                        .relation
                        .columns
                        .iter()
                        .any(|c| c.name == *name && c.is_key)
            })
            .collect();
        let record = match self.kind {
            ChangeKind::Delete => Map::new(),
            _ => row(&self.new, Some(&old_record)),
        };
        Change {
            schema: self.relation.schema.clone(),
            table: self.relation.name.clone(),
            kind: self.kind,
            commit_timestamp: commit_timestamp_from_micros(self.commit_time),
            columns: meta.columns.clone(),
            primary_key: meta.primary_key.clone(),
            rls_enabled: meta.rls_enabled,
            record,
            old_record,
        }
    }
}

/// Bounds on what a [`Decoder`] buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    pub max_changes_per_txn: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_changes_per_txn: 10_000,
        }
    }
}

/// What a Commit hands over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    pub changes: Vec<RawChange>,
    /// Changes past the limit, not kept (the channels are told they missed some).
    pub dropped: usize,
    /// Tables truncated in the transaction (Supabase sends nothing for them; their cached metadata
    /// stays valid).
    pub truncated: Vec<u32>,
}

/// Follows a pgoutput stream across polls of one slot.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: DecoderLimits,
    relations: HashMap<u32, Relation>,
    txn: Option<Committed>,
}

impl Decoder {
    pub fn new(limits: DecoderLimits) -> Self {
        Decoder {
            limits,
            ..Decoder::default()
        }
    }

    /// The last Relation message of `oid`.
    pub fn relation(&self, oid: u32) -> Option<&Relation> {
        self.relations.get(&oid)
    }

    /// Feeds one message; returns the transaction's changes at its Commit. A Relation message
    /// returns nothing but replaces the table's shape (the caller drops its cached [`TableMeta`]).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Committed>, PgOutputError> {
        let (relation, kind, new, old) = match decode(bytes)? {
            Message::Begin { .. } => {
                self.txn = Some(Committed::default());
                return Ok(None);
            }
            Message::Commit { commit_time, .. } => {
                let mut done = self.txn.take().ok_or(PgOutputError::OutsideTransaction)?;
                for change in &mut done.changes {
                    change.commit_time = commit_time;
                }
                return Ok(Some(done));
            }
            Message::Relation(rel) => {
                self.relations.insert(rel.oid, rel);
                return Ok(None);
            }
            Message::Truncate { relations } => {
                let txn = self.txn.as_mut().ok_or(PgOutputError::OutsideTransaction)?;
                txn.truncated.extend(relations);
                return Ok(None);
            }
            Message::Other(_) => return Ok(None),
            Message::Insert { relation, new } => (relation, ChangeKind::Insert, new, None),
            Message::Update { relation, old, new } => (relation, ChangeKind::Update, new, old),
            Message::Delete { relation, old } => {
                (relation, ChangeKind::Delete, Vec::new(), Some(old))
            }
        };
        let rel = self
            .relations
            .get(&relation)
            .ok_or(PgOutputError::UnknownRelation(relation))?;
        let width = rel.columns.len();
        if new.len() > width || old.as_ref().is_some_and(|o| o.len() > width) {
            return Err(PgOutputError::ColumnCount {
                relation,
                expected: width,
            });
        }
        let txn = self.txn.as_mut().ok_or(PgOutputError::OutsideTransaction)?;
        if txn.changes.len() >= self.limits.max_changes_per_txn {
            txn.dropped += 1;
            return Ok(None);
        }
        txn.changes.push(RawChange {
            relation: rel.clone(),
            kind,
            new,
            old,
            commit_time: 0,
        });
        Ok(None)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], PgOutputError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or(PgOutputError::Truncated)?;
        self.pos += N;
        Ok(bytes.try_into().unwrap_or([0; N]))
    }

    fn u8(&mut self) -> Result<u8, PgOutputError> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, PgOutputError> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, PgOutputError> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    fn i64(&mut self) -> Result<i64, PgOutputError> {
        Ok(i64::from_be_bytes(self.take()?))
    }

    /// A column count (Int16), at most PostgreSQL's limit.
    fn count(&mut self) -> Result<usize, PgOutputError> {
        let n = usize::from(u16::from_be_bytes(self.take()?));
        if n > MAX_COLUMNS {
            return Err(PgOutputError::TooManyColumns(n));
        }
        Ok(n)
    }

    fn expect(&mut self, tag: u8) -> Result<(), PgOutputError> {
        match self.u8()? {
            t if t == tag => Ok(()),
            other => Err(PgOutputError::Unexpected(other)),
        }
    }

    /// A NUL-terminated string.
    fn cstr(&mut self) -> Result<String, PgOutputError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(PgOutputError::Truncated)?;
        let s = std::str::from_utf8(&rest[..len]).map_err(|_| PgOutputError::NotUtf8)?;
        self.pos += len + 1;
        Ok(s.to_owned())
    }

    fn tuple(&mut self) -> Result<Vec<Cell>, PgOutputError> {
        let n = self.count()?;
        let mut cells = Vec::with_capacity(n);
        for _ in 0..n {
            cells.push(match self.u8()? {
                b'n' => Cell::Null,
                b'u' => Cell::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    let end = self.pos.checked_add(len).ok_or(PgOutputError::Truncated)?;
                    let bytes = self
                        .buf
                        .get(self.pos..end)
                        .ok_or(PgOutputError::Truncated)?;
                    self.pos = end;
                    Cell::Text(
                        std::str::from_utf8(bytes)
                            .map_err(|_| PgOutputError::NotUtf8)?
                            .to_owned(),
                    )
                }
                other => return Err(PgOutputError::Unexpected(other)),
            });
        }
        Ok(cells)
    }
}

/// A pgoutput message that could not be read: a bug or a protocol change, never client input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PgOutputError {
    #[error("pgoutput: message is truncated")]
    Truncated,
    #[error("pgoutput: unexpected tag {0:#04x}")]
    Unexpected(u8),
    #[error("pgoutput: bytes after the end of the message")]
    TrailingBytes,
    #[error("pgoutput: {0} columns is more than PostgreSQL allows")]
    TooManyColumns(usize),
    #[error("pgoutput: text is not valid UTF-8")]
    NotUtf8,
    #[error("pgoutput: change for relation {0} before its Relation message")]
    UnknownRelation(u32),
    #[error("pgoutput: tuple of relation {relation} wider than its {expected} columns")]
    ColumnCount { relation: u32, expected: usize },
    #[error("pgoutput: row change outside a transaction")]
    OutsideTransaction,
}

#[cfg(test)]
mod tests;
