use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::registry::http::SlotKey;
use crate::stats::Shared;

pin_project! {
    /// Request body for [`StatsService`](super::StatsService).
    ///
    /// Counts the bytes of every data frame the inner service actually reads, so a handler
    /// that reads half a body counts half. `size_hint` and `is_end_stream` are passed through.
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        tracker: Option<(Arc<Shared>, u64, SlotKey)>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn tracked(inner: B, shared: Arc<Shared>, id: u64, key: SlotKey) -> Self {
        Self {
            inner,
            tracker: Some((shared, id, key)),
        }
    }

    pub(crate) fn untracked(inner: B) -> Self {
        Self {
            inner,
            tracker: None,
        }
    }

    /// A reference to the inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// A mutable reference to the inner body.
    pub fn get_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// A pinned mutable reference to the inner body.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut B> {
        self.project().inner
    }

    /// The inner body; bytes read from it afterwards are not counted.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Default> Default for RequestBody<B> {
    fn default() -> Self {
        Self::untracked(B::default())
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("inner", &self.inner)
            .field("recording", &self.tracker.is_some())
            .finish()
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let poll = this.inner.poll_frame(cx);
        if let (Some((shared, id, key)), Poll::Ready(Some(Ok(frame)))) =
            (this.tracker.as_ref(), &poll)
        {
            if let Some(data) = frame.data_ref() {
                let n = data.remaining() as u64;
                // Read while the request's future is polled (the usual case): counted in the
                // thread-local slot, no lock. Otherwise straight into the live record; bytes
                // read after the request ended (or was withdrawn) belong to no record.
                if n > 0
                    && (super::handle::count_read_locally(*id, n)
                        || shared
                            .http
                            .in_flight
                            .update(*key, *id, |live| {
                                live.bytes_read = live.bytes_read.saturating_add(n);
                            })
                            .is_some())
                {
                    shared.http.bytes_read_total.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
