//! A minimal per-route latency layer, for comparison only: the least that any layer which
//! times requests per route has to do.
//!
//! For each request it finds its route's counters (cached per service instance, as the
//! stats layer does), counts the request and keeps an in-flight gauge, reads the clock when
//! the request starts and when its response body is dropped, and then counts the status
//! class, the response bytes, the latency sum and one power-of-two latency bucket. It has no
//! in-flight table, no windows, no detailed record, no request byte counting, no pause
//! switch and no report: measured next to the stats layer, it shows what the stats layer's
//! features cost on top of the floor of this kind of layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::extract::MatchedPath;
use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

/// Power-of-two latency buckets: up to 2^31 ns (about 2 s), and one for everything above.
const BUCKETS: usize = 32;

/// The counters of one route.
#[derive(Debug)]
pub struct RouteCounters {
    /// The route's template, `<unmatched>` for the fallback.
    pub route: String,
    pub requests: AtomicU64,
    pub in_flight: AtomicU64,
    /// By status class: 1xx to 5xx, and anything else.
    pub status: [AtomicU64; 6],
    pub bytes_written: AtomicU64,
    pub latency_sum_nanos: AtomicU64,
    pub latency_buckets: [AtomicU64; BUCKETS],
}

impl RouteCounters {
    fn new(route: &str) -> Self {
        Self {
            route: route.to_owned(),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            status: Default::default(),
            bytes_written: AtomicU64::new(0),
            latency_sum_nanos: AtomicU64::new(0),
            latency_buckets: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }
}

/// Applies [`MinimalService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MinimalLayer;

impl<S> Layer<S> for MinimalLayer {
    type Service = MinimalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MinimalService {
            inner,
            counters: Arc::default(),
        }
    }
}

/// Times every request it serves into its route's [`RouteCounters`].
#[derive(Debug, Clone)]
pub struct MinimalService<S> {
    inner: S,
    /// Under `Router::layer` an instance serves one route: its counters, found on first use.
    counters: Arc<OnceLock<Arc<RouteCounters>>>,
}

impl<S> Service<Request<Body>> for MinimalService<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = MinimalFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>();
        let counters = Arc::clone(self.counters.get_or_init(|| {
            Arc::new(RouteCounters::new(
                route.map_or("<unmatched>", MatchedPath::as_str),
            ))
        }));
        counters.requests.fetch_add(1, Relaxed);
        counters.in_flight.fetch_add(1, Relaxed);
        let timing = Timing {
            counters,
            start: Instant::now(),
            status: 0,
            bytes: 0,
        };
        MinimalFuture {
            inner: self.inner.call(req),
            timing: Some(timing),
        }
    }
}

/// A request being timed; counted when dropped (with its response body, or earlier).
#[derive(Debug)]
struct Timing {
    counters: Arc<RouteCounters>,
    start: Instant,
    status: u16,
    bytes: u64,
}

impl Drop for Timing {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let c = &*self.counters;
        c.in_flight.fetch_sub(1, Relaxed);
        let class = usize::from(self.status / 100).wrapping_sub(1).min(5);
        c.status[class].fetch_add(1, Relaxed);
        c.bytes_written.fetch_add(self.bytes, Relaxed);
        c.latency_sum_nanos.fetch_add(nanos, Relaxed);
        let bucket = (u64::BITS - nanos.leading_zeros()) as usize;
        c.latency_buckets[bucket.min(BUCKETS - 1)].fetch_add(1, Relaxed);
    }
}

pin_project! {
    /// Response future of [`MinimalService`].
    pub struct MinimalFuture<F> {
        #[pin]
        inner: F,
        timing: Option<Timing>,
    }
}

impl<F, E> Future for MinimalFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut timing = this.timing.take();
        Poll::Ready(result.map(|response| {
            if let Some(timing) = timing.as_mut() {
                timing.status = response.status().as_u16();
            }
            response.map(|inner| Body::new(MinimalBody { inner, timing }))
        }))
    }
}

pin_project! {
    /// Response body of [`MinimalService`]: counts the bytes polled.
    struct MinimalBody {
        #[pin]
        inner: Body,
        timing: Option<Timing>,
    }
}

impl http_body::Body for MinimalBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let poll = this.inner.poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(timing)) = (&poll, this.timing.as_mut()) {
            if let Some(data) = frame.data_ref() {
                timing.bytes += data.remaining() as u64;
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
