//! The recording middleware: [`StatsLayer`], [`StatsService`] and [`ResponseFuture`].
//!
//! The wrapped service receives its request with a [`Body`] (axum's body type,
//! `axum::body::Body`, re-exported here) and the response leaves with one, whatever body types
//! come in and out: under axum nothing is converted, and a body is boxed only where the layer
//! must watch it (a request body to count, a response body to time and count).
//!
//! # When things are recorded
//!
//! - **start**, when [`StatsService::call`](tower_service::Service::call) runs: the request is
//!   counted in `requests_total`, gets an id and enters the in-flight table. If the `http`
//!   namespace is paused at that moment, the request is never recorded.
//! - **headers**, when the inner future resolves: the in-flight table shows the status from
//!   here on. A response to `HEAD`, a `101`, `204` or `304`, or a body that is already at its
//!   end, finishes the request here. A `101 Switching Protocols` or `text/event-stream`
//!   response is a *stream*: its status is counted now, it is kept out of the latency
//!   statistics and the slow list, and reported under `open_streams` while its body is open.
//! - **end**, when the response body ends (a `None` frame, a trailers frame, or a data frame
//!   after which `is_end_stream()` is true), fails, or is dropped: the status is counted (a
//!   stream's already was) and the time recorded. Processing time is end − start, on tokio's
//!   monotonic clock.
//!
//! Outcomes: `completed`; `aborted` when the future or body is dropped before the end (status
//! 499 if no status existed yet); `error` for an inner `Err` or a body error; `panicked` when a
//! panic unwound through the layer. Every path removes the request from the in-flight table
//! exactly once.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_stats::Stats;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stats = Stats::new();
//! let service = ServiceBuilder::new()
//!     .layer(stats.layer())
//!     .service(service_fn(|_req: Request<_>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!     }));
//!
//! let response = service.oneshot(Request::new(Full::new(Bytes::new()))).await?;
//! assert_eq!(stats.snapshot().http.requests_in_flight, 1); // the body is not consumed yet
//! response.into_body().collect().await?;
//!
//! let http = stats.snapshot().http;
//! assert_eq!(http.requests_in_flight, 0);
//! assert_eq!(http.bytes_written_total, 5);
//! assert_eq!(http.uri_sets["GET <unmatched>"].count, 1);
//! # Ok(())
//! # }
//! ```

mod body;
mod future;
mod guard;
mod handle;
mod layer;
mod request_body;
mod service;

pub use self::future::ResponseFuture;
pub use self::handle::{CustomEvent, EventError, EventTimer, RequestStats};
pub use self::layer::StatsLayer;
pub use self::service::StatsService;
/// The body type the wrapped service receives and the layer's responses carry: axum's `Body`,
/// re-exported for services that do not depend on axum.
pub use axum_core::body::Body;

pub(crate) use self::body::ResponseBody;
pub(crate) use self::guard::RecordGuard;
#[cfg(feature = "tracing")]
pub(crate) use self::handle::current_detailed;
pub(crate) use self::request_body::RequestBody;
