//! What a request sets on its PostgreSQL session, and how a pooled session that already holds it is
//! recognised (see [`crate::exec::Pools::run`]): the role, PostgREST's request GUCs and the role's
//! statement timeout, set for a transaction ([`SETUP`]) or, for plain reads, for the session
//! ([`SETUP_SESSION`]) and read back at the end of every statement ([`OBSERVED_GUCS`]); and how its
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

/// The session GUCs a plain read depends on, read back as the last columns of every statement (after
/// `response.headers` and `response.status`), in the order of [`session_values`]. What they hold once a
/// read has run is what the connection's next request starts from, so when they already equal what that
/// request needs, it skips [`SETUP_SESSION`] and sends its statement alone (see
/// [`crate::exec::Pools::run`]).
pub(crate) const OBSERVED_GUCS: &str = "current_setting('role'), \
     current_setting('request.jwt.claims', true), current_setting('request.method', true), \
     current_setting('request.path', true), current_setting('request.headers', true), \
     current_setting('request.cookies', true), current_setting('search_path'), \
     current_setting('statement_timeout'), current_setting('default_transaction_read_only')";

/// Column of the first [`OBSERVED_GUCS`] value; `response.headers` and `response.status` are 3 and 4.
const FIRST_OBSERVED: usize = 6;

/// Values in [`session_values`]: the [`OBSERVED_GUCS`], then `response.headers` and `response.status`.
pub(crate) const SESSION_VALUES: usize = 11;

/// What [`SETUP_SESSION`] leaves on the session for `ctx`: the request's values (its statement timeout
/// included, so a function that changed it for the session is noticed like any other), reads made
/// read-only, and no response GUCs.
pub(crate) fn session_values<'a>(ctx: &TxContext<'a>) -> [&'a str; SESSION_VALUES] {
    [
        ctx.role.as_str(),
        ctx.claims,
        ctx.method,
        ctx.path,
        ctx.headers,
        ctx.cookies,
        ctx.search_path,
        ctx.statement_timeout,
        "on",
        "",
        "",
    ]
}

/// The same values as a statement's last row reports them (`None` when a column is missing or NULL:
/// an unknown session).
pub(crate) fn observed_values(row: &tokio_postgres::Row) -> Option<[&str; SESSION_VALUES]> {
    let text = |i: usize| row.try_get::<_, Option<&str>>(i).ok().flatten();
    let mut out = [""; SESSION_VALUES];
    for (k, slot) in out.iter_mut().enumerate().take(SESSION_VALUES - 2) {
        *slot = text(FIRST_OBSERVED + k)?;
    }
    out[SESSION_VALUES - 2] = text(3)?;
    out[SESSION_VALUES - 1] = text(4)?;
    Some(out)
}

/// The same values from a binary read's trailer (`{total, response.headers, response.status,
/// OBSERVED_GUCS…}`).
pub(crate) fn observed_in_trailer<'a>(t: &[Option<&'a str>]) -> Option<[&'a str; SESSION_VALUES]> {
    let mut out = [""; SESSION_VALUES];
    for (k, slot) in out.iter_mut().enumerate().take(SESSION_VALUES - 2) {
        *slot = (*t.get(3 + k)?)?;
    }
    out[SESSION_VALUES - 2] = (*t.get(1)?)?;
    out[SESSION_VALUES - 1] = (*t.get(2)?)?;
    Some(out)
}

/// `statement_timeout` written as PostgreSQL shows it (`0`, `2500ms`, `3s`, `1min`, `1h`, `1d`: the
/// largest unit that divides it), so that the value read back from a session compares equal to the
/// value set. Above PostgreSQL's maximum it is the maximum.
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
