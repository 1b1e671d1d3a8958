//! A function's response body on its way to the client: streamed as the worker writes it, cut off at the
//! invocation's deadline, and holding the worker busy (not evictable) until it ends.

use crate::worker::Busy;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

pub struct Streamed {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    expired: bool,
    _busy: Busy,
}

impl Streamed {
    pub fn new(inner: Incoming, deadline: Instant, busy: Busy) -> Streamed {
        Streamed {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            expired: false,
            _busy: busy,
        }
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired = true;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the function's response did not complete within its time limit",
            ))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(io::Error::other)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
