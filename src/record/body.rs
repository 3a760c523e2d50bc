use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::grpc::MessageCounter;
use super::RecordGuard;
use crate::store::request::Outcome;

pin_project! {
    /// Response body for [`StatsService`](super::StatsService): what the response carries in
    /// the [`GenericBodies`](super::GenericBodies) mode (boxed in the default mode).
    ///
    /// Counts the bytes of every data frame the server polls and finalizes the request's
    /// record at the end of the stream (a `None` frame, a trailers frame, or a data frame after
    /// which [`is_end_stream`](Body::is_end_stream) is true), on a body error, or when dropped
    /// (aborted). A gRPC call's `grpc-status` is read from the trailers. `size_hint` and
    /// `is_end_stream` are passed through untouched. See the [module docs](crate::record)
    /// for an example.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<RecordGuard>,
        // Where a gRPC call's messages are, across frames.
        messages: MessageCounter,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, guard: Option<RecordGuard>) -> Self {
        Self {
            inner,
            guard,
            messages: MessageCounter::default(),
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

    /// The inner body. A request still being recorded ends here, as aborted.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Default> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::new(B::default(), None)
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("recording", &self.guard.is_some())
            .finish()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let Some(guard) = this.guard.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        // The current request is not entered here: handlers take their `RequestStats` before
        // they return a body, and most bodies are one frame.
        guard.polling = true;
        let poll = this.inner.as_mut().poll_frame(cx);
        guard.polling = false;
        let outcome = match &poll {
            Poll::Pending => return poll,
            Poll::Ready(Some(Ok(frame))) => {
                let last = frame.is_trailers() || this.inner.is_end_stream();
                if let Some(data) = frame.data_ref() {
                    if guard.is_grpc() {
                        guard.on_grpc_data(this.messages, data);
                    }
                    guard.on_data(data.remaining() as u64, last);
                } else if let Some(trailers) = frame.trailers_ref() {
                    guard.on_trailers(trailers);
                }
                last.then_some(Outcome::Completed)
            }
            Poll::Ready(Some(Err(_))) => Some(Outcome::Error),
            Poll::Ready(None) => Some(Outcome::Completed),
        };
        if let Some(outcome) = outcome {
            // Finished and dropped where it is, rather than moved out first.
            guard.finish(outcome);
            *this.guard = None;
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
