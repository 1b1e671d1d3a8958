//! A pooled connection lent to one request, and what happens when the request ends badly.
//!
//! A request whose future is dropped (the client went away, or a deadline fired) would otherwise leave
//! its statement running on the server and hand the connection back to the pool in the middle of it,
//! perhaps inside an open transaction holding the request's role. Dropped before
//! [`Lease::release`], a lease instead cancels the statement (through
//! [`supactl_common::pg::cancel`]) and closes the connection, so the server stops working for nobody
//! and no later request can inherit the half-finished session. A connection that broke under a
//! request (terminated backend, closed socket) is closed too, so the next request gets a live one.

use deadpool_postgres::Object;
use supactl_common::pg_tls::PgTls;

pub(crate) struct Lease<'a> {
    /// `None` once released.
    client: Option<Object>,
    /// The connection's TLS settings, which a cancel request uses too.
    tls: &'a PgTls,
}

impl<'a> Lease<'a> {
    pub(crate) fn new(client: Object, tls: &'a PgTls) -> Lease<'a> {
        Lease {
            client: Some(client),
            tls,
        }
    }

    /// The request is over: the connection goes back to the pool, or is closed when `broken`.
    pub(crate) fn release(mut self, broken: bool) {
        if let Some(client) = self.client.take() {
            if broken {
                drop(Object::take(client));
            }
        }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a lease holds its connection until released")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let (token, tls) = (client.cancel_token(), self.tls.clone());
        // Out of the pool and closed first: nothing else can run on that backend any more, so the
        // cancel below can only reach the abandoned statement.
        drop(Object::take(client));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = supactl_common::pg::cancel(&token, &tls).await {
                tracing::warn!(error = %e, "could not cancel an abandoned statement");
            }
        });
    }
}
