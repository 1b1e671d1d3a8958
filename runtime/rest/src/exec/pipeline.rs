//! One request's round trip on a connection: `BEGIN`, the GUCs, the pre-request function, the statement
//! and `COMMIT` written together and their replies read together, with text parameters and prepared
//! statements reused per connection.

use super::{Outcome, Pools, MAX_STATEMENTS};
use crate::error::RestError;
use crate::session::{TxContext, TxEnd, SETUP, SETUP_SESSION};
use crate::sql::Statement;
use bytes::BytesMut;
use deadpool_postgres::Object;
use postgres_types::{to_sql_checked, Format, IsNull, ToSql, Type};
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use supactl_common::keys::Role;
use tokio_postgres::error::SqlState;

/// A bind parameter sent in text format. Statements are prepared without parameter types, so PostgreSQL
/// infers each from its context exactly as for a quoted literal (`'42'` against an integer column is an
/// integer) and parses the text with that type's input function.
#[derive(Debug)]
pub struct Text<'a>(pub &'a str);

impl ToSql for Text<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A request future polled early, to write its messages to the connection ahead of later ones, whose
/// output is kept until asked for. It must keep being polled while the task awaits anything else on the
/// same connection: tokio-postgres delivers each request's replies through a channel of two messages,
/// and a reply nobody reads stops the connection from reading the replies after it.
pub(super) struct Early<'a, F: Future> {
    fut: Pin<&'a mut F>,
    out: Option<F::Output>,
}

impl<'a, F: Future> Early<'a, F> {
    fn new(fut: Pin<&'a mut F>) -> Self {
        Early { fut, out: None }
    }

    fn poll_now(&mut self, cx: &mut std::task::Context<'_>) {
        if self.out.is_none() {
            if let Poll::Ready(r) = self.fut.as_mut().poll(cx) {
                self.out = Some(r);
            }
        }
    }

    async fn finish(mut self) -> F::Output {
        match self.out.take() {
            Some(r) => r,
            None => self.fut.await,
        }
    }
}

/// Awaits `fut` while polling what `drain` polls (see [`Early`]).
pub(super) async fn draining<F: Future>(
    fut: F,
    mut drain: impl FnMut(&mut std::task::Context<'_>),
) -> F::Output {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        drain(cx);
        fut.as_mut().poll(cx)
    })
    .await
}

/// A column read as its text, whatever its type (`EXPLAIN (FORMAT JSON)` returns `json`, whose binary
/// form is its text).
pub(super) struct AnyText(pub(super) String);

impl<'a> postgres_types::FromSql<'a> for AnyText {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<AnyText, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyText(std::str::from_utf8(raw)?.to_string()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The top plan node's row estimate from `EXPLAIN (FORMAT JSON)` output.
pub(super) fn plan_rows(explain: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(explain).ok()?;
    v.get(0)?
        .get("Plan")?
        .get("Plan Rows")?
        .as_f64()
        .map(|n| n as i64)
}

/// The statement to run for `stmt`, and the number of its value columns when it is the binary form
/// ([`Statement::binary`], taken when every column's type is one [`super::binary`] writes).
async fn prepare(
    client: &deadpool_postgres::Client,
    stmt: &Statement,
) -> Result<(tokio_postgres::Statement, Option<usize>), tokio_postgres::Error> {
    if let (Some(binary), false) = (&stmt.binary, stmt.plan) {
        let prepared = client.prepare_cached(&binary.sql).await?;
        let n = prepared.columns().len().saturating_sub(1);
        if super::binary::encodable(&prepared.columns()[..n], binary.floats) {
            return Ok((prepared, Some(n)));
        }
    }
    Ok((client.prepare_cached(&stmt.sql).await?, None))
}

/// Errors a re-prepared statement may not hit again.
pub(super) fn stale_statement(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::FEATURE_NOT_SUPPORTED
            || *c == SqlState::DATATYPE_MISMATCH
            || *c == SqlState::UNDEFINED_FUNCTION
            || *c == SqlState::UNDEFINED_COLUMN
            || *c == SqlState::UNDEFINED_TABLE
    )
}

impl Pools {
    /// The two-statement read of [`Pools::run`]: session GUCs, then the statement, pipelined.
    pub(super) async fn read_on_session(
        client: &deadpool_postgres::Client,
        setup_params: &[&(dyn ToSql + Sync)],
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
        role: Role,
    ) -> Result<(Vec<tokio_postgres::Row>, Option<usize>), RestError> {
        let setup = client
            .prepare_cached(SETUP_SESSION)
            .await
            .map_err(|e| RestError::from_pg(&e, role))?;
        let mut retried = false;
        loop {
            let set_f = pin!(async { client.query(&setup, setup_params).await.map(|_| ()) });
            let mut set = Early::new(set_f);
            // Write the GUCs first, so that a statement new to this connection is parsed after them,
            // as the request's role.
            std::future::poll_fn(|cx| {
                set.poll_now(cx);
                Poll::Ready(())
            })
            .await;
            let prepared = draining(prepare(client, stmt), |cx| set.poll_now(cx)).await;
            let set_done = set.finish();
            let (main, binary) = match prepared {
                Ok(m) => m,
                Err(e) => {
                    set_done.await.map_err(|e| RestError::from_pg(&e, role))?;
                    if !retried && stale_statement(&e) {
                        client.statement_cache.clear();
                        retried = true;
                        continue;
                    }
                    return Err(RestError::from_pg(&e, role));
                }
            };
            let (set, result) = tokio::join!(set_done, client.query(&main, params));
            // Never use a result read under GUCs this request did not set.
            set.map_err(|e| RestError::from_pg(&e, role))?;
            match result {
                Ok(rows) => return Ok((rows, binary)),
                Err(e) if !retried && stale_statement(&e) => {
                    client.statement_cache.clear();
                    retried = true;
                }
                Err(e) => return Err(RestError::from_pg(&e, role)),
            }
        }
    }

    pub(super) async fn run_on(
        client: &Object,
        ctx: &TxContext<'_>,
        stmt: &Statement,
    ) -> Result<Outcome, RestError> {
        let role = ctx.role;
        if client.statement_cache.size() > MAX_STATEMENTS {
            client.statement_cache.clear();
        }
        let params: Vec<Text> = stmt.params.iter().map(|p| Text(p)).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let setup_values = [
            Text(role.as_str()),
            Text(ctx.claims),
            Text(ctx.method),
            Text(ctx.path),
            Text(ctx.headers),
            Text(ctx.cookies),
            Text(ctx.search_path),
            Text(ctx.statement_timeout),
        ];
        let setup_params: Vec<&(dyn ToSql + Sync)> = setup_values
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        // Explicit either way: a read may have left `default_transaction_read_only` on the session.
        let begin = if ctx.read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN READ WRITE"
        };
        let end = match ctx.end {
            TxEnd::Rollback => "ROLLBACK",
            _ => "COMMIT",
        };
        let plain_read = ctx.read_only
            && ctx.pre_request.is_none()
            && ctx.end == TxEnd::Commit
            && stmt.explain.is_none();
        if plain_read {
            let (rows, binary) =
                Self::read_on_session(client, &setup_params, stmt, &params, role).await?;
            return Outcome::from_rows(&rows, stmt, None, binary);
        }
        let setup = client
            .prepare_cached(SETUP)
            .await
            .map_err(|e| RestError::from_pg(&e, role))?;
        let mut retried = false;
        let mut planned_total = None;
        let (rows, binary) = loop {
            let begin_f = client.batch_execute(begin);
            let set_f = client.query(&setup, &setup_params);
            let pre_f = async {
                match &ctx.pre_request {
                    Some(sql) => client.batch_execute(sql).await,
                    None => Ok(()),
                }
            };
            let (begin_f, set_f, pre_f) = (pin!(begin_f), pin!(set_f), pin!(pre_f));
            let (mut begin_e, mut set_e, mut pre_e) =
                (Early::new(begin_f), Early::new(set_f), Early::new(pre_f));
            let mut drain = |cx: &mut std::task::Context<'_>| {
                begin_e.poll_now(cx);
                set_e.poll_now(cx);
                pre_e.poll_now(cx);
            };
            // One poll each writes BEGIN, the GUCs and the pre-request call to the connection...
            std::future::poll_fn(|cx| {
                drain(cx);
                Poll::Ready(())
            })
            .await;
            // ...so that a statement not yet prepared on this connection is parsed inside the
            // transaction, as the request's role (which may use schemas the login role cannot). A
            // statement already prepared costs nothing here, and the whole request stays one round
            // trip; a new one costs one more, once per connection.
            let prepared = draining(prepare(client, stmt), &mut drain).await;
            let explain = match &stmt.explain {
                Some(sql) => Some(draining(client.prepare_cached(sql), &mut drain).await),
                None => None,
            };
            let (prepared, explain) = match explain {
                Some(Err(e)) => (Err(e), None),
                Some(Ok(x)) => (prepared, Some(x)),
                None => (prepared, None),
            };
            let begin_done = begin_e.finish();
            let set_done = async { set_e.finish().await.map(|_| ()) };
            let pre_done = pre_e.finish();
            let (main, binary) = match prepared {
                Ok(m) => m,
                Err(e) => {
                    let (b, st, p) = tokio::join!(begin_done, set_done, pre_done);
                    let _ = client.batch_execute("ROLLBACK").await;
                    // An earlier failure (the pre-request function, say) is the one to report.
                    if let Err(first) = b.and(st).and(p) {
                        return Err(RestError::from_pg(&first, role));
                    }
                    if !retried && stale_statement(&e) {
                        client.statement_cache.clear();
                        retried = true;
                        continue;
                    }
                    return Err(RestError::from_pg(&e, role));
                }
            };
            let finish = async {
                if matches!(ctx.end, TxEnd::CommitIf(_)) {
                    Ok(())
                } else {
                    client.batch_execute(end).await
                }
            };
            let explained = async {
                match &explain {
                    Some(x) => client
                        .query_one(x, &params)
                        .await
                        .map(|row| plan_rows(&row.get::<_, AnyText>(0).0)),
                    None => Ok(None),
                }
            };
            let (begin, set, pre, planned, result, commit) = tokio::join!(
                begin_done,
                set_done,
                pre_done,
                explained,
                client.query(&main, &params),
                finish,
            );
            let early = begin
                .and(set)
                .and(pre)
                .and(planned.map(|p| planned_total = p));
            if let Err(e) = early {
                if matches!(ctx.end, TxEnd::CommitIf(_)) {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                return Err(RestError::from_pg(&e, role));
            }
            match result {
                Ok(rows) => {
                    commit.map_err(|e| RestError::from_pg(&e, role))?;
                    break (rows, binary);
                }
                Err(e) => {
                    if matches!(ctx.end, TxEnd::CommitIf(_)) {
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                    // A cached statement can go stale when the schema changes under it (a column's
                    // type, say): forget the connection's statements and prepare again, once.
                    if !retried && stale_statement(&e) {
                        client.statement_cache.clear();
                        retried = true;
                        continue;
                    }
                    return Err(RestError::from_pg(&e, role));
                }
            }
        };
        let out = Outcome::from_rows(&rows, stmt, planned_total, binary)?;
        if let TxEnd::CommitIf(check) = ctx.end {
            let end = if check.passes(out.page) {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            client
                .batch_execute(end)
                .await
                .map_err(|e| RestError::from_pg(&e, role))?;
        }
        Ok(out)
    }
}
