//! What a request sets on its PostgreSQL session (see [`crate::exec::Pools::run`]): the role,
//! PostgREST's request GUCs and the role's statement timeout, set for a transaction ([`SETUP`]); for
//! a plain read of a relation, the request GUCs alone for its transaction ([`setup_request`]) on a
//! session that already holds the role, search path and timeout ([`SESSION_BASELINE`]); for a plain
//! read calling a function, all of them for the session ([`SETUP_SESSION`]); and how its transaction
//! ends ([`TxEnd`]).

use std::sync::OnceLock;
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
    /// A function call (`/rpc/…`): its transaction commits even when read-only, so that what it
    /// sends with `NOTIFY` is delivered; a plain read of a relation is rolled back instead.
    pub function_call: bool,
    /// Statements run after the GUCs are set: the request's time zone, then the pre-request function.
    pub pre_request: Option<String>,
    pub end: TxEnd,
}

/// Sets the role and PostgREST's request GUCs for the transaction (and hides response GUCs a function
/// may have left on the session).
pub(crate) const SETUP: &str =
    "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
     set_config('request.method', $3, true), set_config('request.path', $4, true), \
     set_config('request.headers', $5, true), set_config('request.cookies', $6, true), \
     set_config('search_path', $7, true), set_config('statement_timeout', $8, true), \
     set_config('response.headers', '', true), set_config('response.status', '', true)";

/// The same GUCs at session level, for reads in one implicit transaction (see
/// [`crate::exec::Pools::run`]): also makes the read's transaction read-only and clears response GUCs
/// a function may have left behind.
pub(crate) const SETUP_SESSION: &str =
    "SELECT set_config('role', $1, false), set_config('request.jwt.claims', $2, false), \
     set_config('request.method', $3, false), set_config('request.path', $4, false), \
     set_config('request.headers', $5, false), set_config('request.cookies', $6, false), \
     set_config('search_path', $7, false), set_config('statement_timeout', $8, false), \
     set_config('default_transaction_read_only', 'on', false), \
     set_config('response.headers', '', false), set_config('response.status', '', false)";

/// The request GUCs for a read's transaction, on a session holding [`SESSION_BASELINE`]: the claims
/// and headers (`$1`, `$2`), then those of the method, path and cookies that differ from the ones the
/// session holds, in that order.
pub(crate) fn setup_request(method: bool, path: bool, cookies: bool) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..8)
            .map(|mask: u8| {
                let mut sql = String::from(
                    "SELECT set_config('request.jwt.claims', $1, true), \
                     set_config('request.headers', $2, true)",
                );
                let names = ["request.method", "request.path", "request.cookies"];
                let mut n = 2;
                for (bit, name) in names.iter().enumerate() {
                    if mask & (1 << bit) != 0 {
                        n += 1;
                        sql.push_str(&format!(", set_config('{name}', ${n}, true)"));
                    }
                }
                sql
            })
            .collect()
    });
    &all[usize::from(method) | usize::from(path) << 1 | usize::from(cookies) << 2]
}

/// What a session holds before a read of a relation (see [`crate::exec::Pools::run`]): the role,
/// search path and statement timeout, the method, path and cookies of the request that set it, and no
/// response GUCs. Run in a transaction of its own, and again only when a request needs another role,
/// search path or timeout, or something else may have run on the session.
pub(crate) const SESSION_BASELINE: &str =
    "SELECT set_config('role', $1, false), set_config('search_path', $2, false), \
     set_config('statement_timeout', $3, false), set_config('request.method', $4, false), \
     set_config('request.path', $5, false), set_config('request.cookies', $6, false), \
     set_config('response.headers', '', false), set_config('response.status', '', false)";

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
