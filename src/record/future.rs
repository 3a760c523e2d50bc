use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::handle::PollScope;
use super::{AxumBodies, GenericBodies, RecordGuard, ResponseBody};
use crate::store::request::Outcome;

pin_project! {
    /// Response future for [`StatsService`](super::StatsService).
    ///
    /// Records the status when the inner future resolves and hands the record to the response
    /// body, which finishes it. Dropped before that, the request is recorded as aborted (status
    /// 499). `M` is the service's [body mode](super::BodyMode).
    pub struct ResponseFuture<F, M = AxumBodies> {
        #[pin]
        inner: F,
        guard: Option<RecordGuard>,
        head: bool,
        mode: PhantomData<M>,
    }
}

impl<F, M> ResponseFuture<F, M> {
    pub(crate) fn new(inner: F, guard: Option<RecordGuard>, head: bool) -> Self {
        Self {
            inner,
            guard,
            head,
            mode: PhantomData,
        }
    }
}

impl<F: std::fmt::Debug, M> std::fmt::Debug for ResponseFuture<F, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("recording", &self.guard.is_some())
            .finish()
    }
}

impl<F, B, E, M> ResponseFuture<F, M>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    /// Polls the inner future; once it resolves, records the response head and makes the
    /// response's body with `body` and the guard the body is to carry (`None` when the
    /// request is finished or not recorded).
    #[inline(always)]
    fn poll_with<Out>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        body: impl FnOnce(B, Option<RecordGuard>) -> Out,
    ) -> Poll<Result<Response<Out>, E>> {
        let this = self.project();
        let Some(guard) = this.guard.as_mut() else {
            // Not recorded, or already finished.
            return this
                .inner
                .poll(cx)
                .map(|result| result.map(|response| response.map(|b| body(b, None))));
        };
        guard.polling = true;
        let entered = PollScope::enter(&mut guard.current);
        let poll = this.inner.poll(cx);
        drop(entered);
        guard.polling = false;
        match poll {
            Poll::Pending => {
                guard.flush_read();
                Poll::Pending
            }
            Poll::Ready(Ok(response)) => {
                let ended = guard.on_response(
                    response.status(),
                    response.headers(),
                    *this.head,
                    response.body().size_hint().exact().is_some(),
                    response.body().is_end_stream(),
                );
                if ended {
                    // Finished: dropped where it is.
                    *this.guard = None;
                }
                Poll::Ready(Ok(response.map(|b| body(b, this.guard.take()))))
            }
            Poll::Ready(Err(error)) => {
                if let Some(mut guard) = this.guard.take() {
                    guard.finish(Outcome::Error);
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, AxumBodies>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum_core::BoxError>,
{
    type Output = Result<Response<axum_core::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A body that is already a `Body` and needs no watching is passed on as it is.
        self.poll_with(cx, |body, guard| match guard {
            Some(guard) => axum_core::body::Body::new(ResponseBody::new(body, Some(guard))),
            None => axum_core::body::Body::new(body),
        })
    }
}

impl<F, B, E> Future for ResponseFuture<F, GenericBodies>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_with(cx, ResponseBody::new)
    }
}
