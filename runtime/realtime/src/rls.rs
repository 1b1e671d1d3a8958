//! The SQL realtime runs against a project's own policies, as plain statements and parameters
//! (no connection here; the hub runs them on the project's login role).
//!
//! **postgres_changes visibility, batched.** Supabase checks every change for every subscriber with
//! `exists(select 1 from table where pk = value)` under the subscriber's role and claims. We ask the
//! same question once per *group* of subscribers with equal role and claims ([`claims_group`]) for
//! all the changed rows of one table in a poll batch ([`VisibilityQuery`]): one statement returns
//! the 1-based positions of the rows the group may see. Run it in a transaction after
//! `SET LOCAL ROLE <role>` and [`SET_CLAIMS`].
//!
//! **Private channels.** Supabase's model: RLS policies on `realtime.messages` that read
//! `realtime.topic()`. In one transaction that is always rolled back: insert probe rows as
//! `service_role`, which bypasses RLS ([`PROBE_INSERT`]), switch to the caller's role and claims and set the topic
//! ([`SET_CLAIMS`], [`SET_TOPIC`]), read the probes back ([`READ_CHECK`]: one row per readable
//! extension), and try an insert per extension under a savepoint ([`WRITE_CHECK`]; SQLSTATE 42501
//! means refused).

use serde_json::{Map, Value};

/// Sets the claims for policies (`auth.uid()`, `auth.jwt()`, `auth.role()` read them): `$1` the
/// claims JSON, `$2` its `sub` (or empty), `$3` its role.
pub const SET_CLAIMS: &str = "SELECT set_config('request.jwt.claims', $1, true), \
     set_config('request.jwt.claim.sub', $2, true), set_config('request.jwt.claim.role', $3, true)";

/// Sets the topic `realtime.topic()` returns: `$1` the channel's sub-topic.
pub const SET_TOPIC: &str = "SELECT set_config('realtime.topic', $1, true)";

/// Run as `service_role` (it bypasses RLS) before switching role: `$1` the sub-topic. Returns
/// `(id as text, extension)`.
pub const PROBE_INSERT: &str = "INSERT INTO realtime.messages (topic, extension, private) \
     VALUES ($1, 'broadcast', true), ($1, 'presence', true) RETURNING id::text, extension";

/// Under the caller's role: `$1` the probe ids as `text[]`. Returns the extensions the caller may
/// read.
pub const READ_CHECK: &str =
    "SELECT extension FROM realtime.messages WHERE id = ANY($1::text[]::uuid[])";

/// Under the caller's role, inside a savepoint: `$1` the sub-topic, `$2` the extension.
pub const WRITE_CHECK: &str =
    "INSERT INTO realtime.messages (topic, extension, private) VALUES ($1, $2, true)";

/// `SET LOCAL ROLE` for a role name (quoted, so any name is safe).
pub fn set_role(role: &str) -> String {
    format!("SET LOCAL ROLE {}", quote_ident(role))
}

/// Claims that differ only per token, not per user: left out of a group's key and of the claims
/// the check runs with, so all sockets of one user (and all anon sockets) share one check.
const PER_TOKEN_CLAIMS: [&str; 5] = ["iat", "exp", "nbf", "jti", "session_id"];

/// The claims a group's check runs with, serialized with sorted keys: equal strings, one group.
pub fn claims_group(claims: &Map<String, Value>) -> String {
    let kept: Map<String, Value> = claims
        .iter()
        .filter(|(k, _)| !PER_TOKEN_CLAIMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept).to_string()
}

/// A primary key column and its SQL type as `format_type(atttypid, NULL)` prints it (from the
/// catalog, never from a client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    pub sql_type: String,
}

/// One statement that tells which of a batch of rows a role and claims may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisibilityQuery {
    sql: String,
    key: Vec<String>,
}

impl VisibilityQuery {
    /// For `schema.table` with primary key `key` (in key order).
    pub fn new(schema: &str, table: &str, key: &[KeyColumn]) -> Result<Self, RlsError> {
        if key.is_empty() {
            return Err(RlsError::NoPrimaryKey);
        }
        let arrays: Vec<String> = key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::text[]::{}[]", i + 1, c.sql_type))
            .collect();
        let aliases: Vec<String> = (1..=key.len()).map(|i| format!("k{i}")).collect();
        let matches: Vec<String> = key
            .iter()
            .zip(&aliases)
            .map(|(c, alias)| format!("t.{} = k.{alias}", quote_ident(&c.name)))
            .collect();
        let sql = format!(
            "SELECT k.ord FROM unnest({}) WITH ORDINALITY AS k({}, ord) \
             WHERE EXISTS (SELECT 1 FROM {}.{} AS t WHERE {})",
            arrays.join(", "),
            aliases.join(", "),
            quote_ident(schema),
            quote_ident(table),
            matches.join(" AND ")
        );
        Ok(VisibilityQuery {
            sql,
            key: key.iter().map(|c| c.name.clone()).collect(),
        })
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// One `text[]` parameter per key column, the rows' key values in PostgreSQL text form; the
    /// statement returns (as `int8`) the 1-based positions of the visible rows.
    pub fn params(&self, rows: &[&Map<String, Value>]) -> Result<Vec<Vec<String>>, RlsError> {
        self.key
            .iter()
            .map(|col| {
                rows.iter()
                    .map(|row| match row.get(col) {
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
                        Some(v @ (Value::Array(_) | Value::Object(_))) => Ok(v.to_string()),
                        _ => Err(RlsError::MissingKey(col.clone())),
                    })
                    .collect()
            })
            .collect()
    }
}

/// `"name"` with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RlsError {
    #[error("the table has no primary key: changes cannot be checked against its policies")]
    NoPrimaryKey,
    #[error("a changed row has no value for its key column {0}")]
    MissingKey(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(cols: &[(&str, &str)]) -> Vec<KeyColumn> {
        cols.iter()
            .map(|(n, t)| KeyColumn {
                name: (*n).into(),
                sql_type: (*t).into(),
            })
            .collect()
    }

    #[test]
    fn single_and_composite_keys() {
        let q = VisibilityQuery::new("public", "todos", &key(&[("id", "bigint")])).unwrap();
        assert_eq!(
            q.sql(),
            "SELECT k.ord FROM unnest($1::text[]::bigint[]) WITH ORDINALITY AS k(k1, ord) \
             WHERE EXISTS (SELECT 1 FROM \"public\".\"todos\" AS t WHERE t.\"id\" = k.k1)"
        );
        let q = VisibilityQuery::new(
            "my schema",
            "no\"tes",
            &key(&[("a", "integer"), ("b", "text")]),
        )
        .unwrap();
        assert!(q.sql().contains(
            "unnest($1::text[]::integer[], $2::text[]::text[]) WITH ORDINALITY AS k(k1, k2, ord)"
        ));
        assert!(q.sql().contains(
            "FROM \"my schema\".\"no\"\"tes\" AS t WHERE t.\"a\" = k.k1 AND t.\"b\" = k.k2"
        ));
        assert_eq!(
            VisibilityQuery::new("public", "t", &[]),
            Err(RlsError::NoPrimaryKey)
        );
    }

    #[test]
    fn params_are_key_values_as_text() {
        let q = VisibilityQuery::new("public", "notes", &key(&[("a", "integer"), ("b", "text")]))
            .unwrap();
        let r1 = json!({"a": 1, "b": "x", "body": "…"});
        let r2 = json!({"a": 2, "b": "y"});
        let rows = [r1.as_object().unwrap(), r2.as_object().unwrap()];
        assert_eq!(q.params(&rows).unwrap(), [vec!["1", "2"], vec!["x", "y"]]);
        let r3 = json!({"a": 3});
        assert_eq!(
            q.params(&[r3.as_object().unwrap()]),
            Err(RlsError::MissingKey("b".into()))
        );
    }

    #[test]
    fn claims_groups_ignore_per_token_claims() {
        let a1 =
            json!({"sub": "u1", "role": "authenticated", "iat": 1, "exp": 2, "session_id": "s1"});
        let a2 = json!({"exp": 99, "role": "authenticated", "sub": "u1", "iat": 50});
        let b = json!({"sub": "u2", "role": "authenticated", "exp": 2});
        let group = |v: &Value| claims_group(v.as_object().unwrap());
        assert_eq!(group(&a1), group(&a2));
        assert_ne!(group(&a1), group(&b));
        assert_eq!(group(&a1), r#"{"role":"authenticated","sub":"u1"}"#);
    }

    #[test]
    fn roles_are_quoted() {
        assert_eq!(
            set_role("authenticated"),
            "SET LOCAL ROLE \"authenticated\""
        );
        assert_eq!(
            set_role("x\"; DROP TABLE t; --"),
            "SET LOCAL ROLE \"x\"\"; DROP TABLE t; --\""
        );
    }
}
