use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::service::StoreRef;
use crate::store::in_flight::SlotKey;

pin_project! {
    /// Request body for [`StatsService`](super::StatsService) in the
    /// [`GenericBodies`](super::GenericBodies) mode (and, boxed, in the default mode).
    ///
    /// Counts the bytes of every data frame the inner service actually reads, so a handler
    /// that reads half a body counts half. A body that was already at its end, or a request
    /// that is not recorded, is passed through untouched. `size_hint` and `is_end_stream` are
    /// passed through. See the [module docs](crate::record) for an example.
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        counter: Option<ReadCounter>,
    }
}

/// What a [`RequestBody`] counts into: the store and the request's id and slot.
#[derive(Debug)]
pub(crate) struct ReadCounter {
    shared: StoreRef,
    id: u64,
    key: SlotKey,
}

impl ReadCounter {
    pub(crate) fn new(shared: StoreRef, id: u64, key: SlotKey) -> Self {
        Self { shared, id, key }
    }

    #[inline]
    fn count(&self, n: u64) {
        // Read while the request's future is polled (the usual case): counted in the
        // thread-local slot, no lock. Otherwise straight into the live record; bytes read
        // after the request ended (or was withdrawn) belong to no record.
        let counted = n > 0
            && match super::handle::count_read_locally(self.id, n) {
                Some(counted) => counted,
                None => self
                    .shared
                    .http
                    .in_flight
                    .update(self.key, self.id, |live| {
                        live.bytes_read = live.bytes_read.saturating_add(n);
                    })
                    .is_some(),
            };
        if counted {
            self.shared
                .http
                .key_shard(self.key)
                .bytes_read_total
                .fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, counter: Option<ReadCounter>) -> Self {
        Self { inner, counter }
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

impl<B: std::fmt::Debug> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("inner", &self.inner)
            .field("counting", &self.counter.is_some())
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
        if let (Some(counter), Poll::Ready(Some(Ok(frame)))) = (this.counter.as_ref(), &poll) {
            if let Some(data) = frame.data_ref() {
                counter.count(data.remaining() as u64);
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

impl<B: Default> Default for RequestBody<B> {
    fn default() -> Self {
        Self::new(B::default(), None)
    }
}
