//! What a request sets on its PostgreSQL session (see [`crate::exec::Pools::run`]): the role,
//! PostgREST's request GUCs and the role's statement timeout, set for a transaction ([`SETUP`]) or, for
//! plain reads, for the session ([`SETUP_SESSION`], all of them again on every request); and how its
//! transaction ends ([`TxEnd`]).

use supactl_common::keys::Role;

/// How the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxEnd {
    Commit,
    Rollback,
    /// Commit only when the statement's row count passes the check; costs a second round trip,
    /// since the decision needs the result.
    CommitIf(RowCheck),
}

/// What a write's row count must satisfy to be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCheck {
    /// A singular write (`vnd.pgrst.object`) affects exactly one row.
    pub exactly_one: bool,
    /// `Prefer: handling=strict, max-affected=N`.
    pub at_most: Option<i64>,
}

impl RowCheck {
    pub fn passes(self, rows: i64) -> bool {
        (!self.exactly_one || rows == 1) && self.at_most.is_none_or(|max| rows <= max)
    }
}

/// Everything about the request the transaction needs besides the statement.
#[derive(Debug)]
pub struct TxContext<'a> {
    pub role: Role,
    pub claims: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a str,
    pub cookies: &'a str,
    pub search_path: &'a str,
    /// The role's `statement_timeout` on this project, as [`crate::session::timeout_setting`] writes it.
    pub statement_timeout: &'a str,
    pub read_only: bool,
    /// Statements run after the GUCs are set: the request's time zone, then the pre-request function.
    pub pre_request: Option<String>,
    pub end: TxEnd,
}

/// Sets the role and PostgREST's request GUCs for the transaction (and hides response GUCs a function
/// may have left on the session). Like [`SETUP_SESSION`], it answers one integer: every further output
/// column would cost PostgreSQL a column to describe and send, and the client one to read.
pub(crate) const SETUP: &str = "SELECT pg_catalog.num_nulls(\
     pg_catalog.set_config('role', $1, true), pg_catalog.set_config('request.jwt.claims', $2, true), \
     pg_catalog.set_config('request.method', $3, true), pg_catalog.set_config('request.path', $4, true), \
     pg_catalog.set_config('request.headers', $5, true), \
     pg_catalog.set_config('request.cookies', $6, true), \
     pg_catalog.set_config('search_path', $7, true), \
     pg_catalog.set_config('statement_timeout', $8, true), \
     pg_catalog.set_config('response.headers', '', true), \
     pg_catalog.set_config('response.status', '', true))";

/// The same GUCs at session level, for reads in one implicit transaction (see
/// [`crate::exec::Pools::run`]): also makes the read's transaction read-only and clears response GUCs
/// a function may have left behind.
pub(crate) const SETUP_SESSION: &str = "SELECT pg_catalog.num_nulls(\
     pg_catalog.set_config('role', $1, false), \
     pg_catalog.set_config('request.jwt.claims', $2, false), \
     pg_catalog.set_config('request.method', $3, false), \
     pg_catalog.set_config('request.path', $4, false), \
     pg_catalog.set_config('request.headers', $5, false), \
     pg_catalog.set_config('request.cookies', $6, false), \
     pg_catalog.set_config('search_path', $7, false), \
     pg_catalog.set_config('statement_timeout', $8, false), \
     pg_catalog.set_config('default_transaction_read_only', 'on', false), \
     pg_catalog.set_config('response.headers', '', false), \
     pg_catalog.set_config('response.status', '', false))";

/// `statement_timeout` written as PostgreSQL shows it (`0`, `2500ms`, `3s`, `1min`, `1h`, `1d`: the
/// largest unit that divides it). Above PostgreSQL's maximum it is the maximum.
pub fn timeout_setting(ms: u32) -> String {
    let ms = ms.min(i32::MAX as u32);
    if ms == 0 {
        return "0".into();
    }
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    match units.iter().find(|(size, _)| ms.is_multiple_of(*size)) {
        Some((size, unit)) => format!("{}{unit}", ms / size),
        None => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::timeout_setting;

    #[test]
    fn timeouts_are_written_as_postgresql_shows_them() {
        for (ms, shown) in [
            (0, "0"),
            (1, "1ms"),
            (2_500, "2500ms"),
            (3_000, "3s"),
            (90_000, "90s"),
            (120_000, "2min"),
            (3_600_000, "1h"),
            (86_400_000, "1d"),
            (u32::MAX, "2147483647ms"),
        ] {
            assert_eq!(timeout_setting(ms), shown);
        }
    }
}
