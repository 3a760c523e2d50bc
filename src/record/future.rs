use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::handle::PollScope;
use super::{RecordGuard, ResponseBody};
use crate::store::request::Outcome;

pin_project! {
    /// Response future for [`StatsService`](super::StatsService).
    ///
    /// Records the status when the inner future resolves and hands the record to the response
    /// body, which finishes it. Dropped before that, the request is recorded as aborted (status 499).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RecordGuard>,
        head: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, guard: Option<RecordGuard>, head: bool) -> Self {
        Self { inner, guard, head }
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("recording", &self.guard.is_some())
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum_core::BoxError>,
{
    type Output = Result<Response<axum_core::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.guard.as_mut() {
            Some(guard) => {
                guard.polling = true;
                let entered = PollScope::enter(&mut guard.current);
                let result = this.inner.poll(cx);
                drop(entered);
                guard.polling = false;
                if result.is_pending() {
                    guard.flush_read();
                }
                result
            }
            None => this.inner.poll(cx),
        };
        let result = ready!(result);
        let mut guard = this.guard.take();
        match result {
            Ok(response) => {
                if let Some(g) = guard.as_mut() {
                    let ended = g.on_response(
                        response.status(),
                        response.headers(),
                        *this.head,
                        response.body().size_hint().exact().is_some(),
                        response.body().is_end_stream(),
                    );
                    if ended {
                        guard = None;
                    }
                }
                // A body that is already a `Body` and needs no watching is passed on as it is.
                Poll::Ready(Ok(response.map(|body| match guard {
                    Some(guard) => axum_core::body::Body::new(ResponseBody::new(body, guard)),
                    None => axum_core::body::Body::new(body),
                })))
            }
            Err(error) => {
                if let Some(mut g) = guard {
                    g.finish(Outcome::Error);
                }
                Poll::Ready(Err(error))
            }
        }
    }
}
