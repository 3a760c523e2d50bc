use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::service::StoreRef;
use crate::store::in_flight::SlotKey;

pin_project! {
    /// A request body that counts the bytes of every data frame the inner service actually
    /// reads, so a handler that reads half a body counts half. `size_hint` and `is_end_stream`
    /// are passed through.
    pub(crate) struct RequestBody<B> {
        #[pin]
        inner: B,
        shared: StoreRef,
        id: u64,
        key: SlotKey,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, shared: StoreRef, id: u64, key: SlotKey) -> Self {
        Self {
            inner,
            shared,
            id,
            key,
        }
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
        if let Poll::Ready(Some(Ok(frame))) = &poll {
            if let Some(data) = frame.data_ref() {
                let (id, key) = (*this.id, *this.key);
                let n = data.remaining() as u64;
                // Read while the request's future is polled (the usual case): counted in the
                // thread-local slot, no lock. Otherwise straight into the live record; bytes
                // read after the request ended (or was withdrawn) belong to no record.
                let counted = n > 0
                    && match super::handle::count_read_locally(id, n) {
                        Some(counted) => counted,
                        None => this
                            .shared
                            .http
                            .in_flight
                            .update(key, id, |live| {
                                live.bytes_read = live.bytes_read.saturating_add(n);
                            })
                            .is_some(),
                    };
                if counted {
                    this.shared
                        .http
                        .key_shard(key)
                        .bytes_read_total
                        .fetch_add(n, Ordering::Relaxed);
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
