use std::marker::PhantomData;

use tower_layer::Layer;

use super::{AxumBodies, BodyMode, GenericBodies, StatsService};
use crate::Stats;

/// Layer that applies the [`StatsService`] middleware, recording into a [`Stats`] store.
///
/// Made by [`Stats::layer`]. `M` is the [body mode](BodyMode): [`AxumBodies`] by default,
/// [`GenericBodies`] with [`generic_bodies`](Self::generic_bodies). See the
/// [module docs](crate::record) for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct StatsLayer<M = AxumBodies> {
    stats: Stats,
    mode: PhantomData<M>,
}

impl StatsLayer {
    /// A layer recording into `stats`, in the default body mode ([`AxumBodies`]).
    pub fn new(stats: Stats) -> Self {
        Self {
            stats,
            mode: PhantomData,
        }
    }
}

impl<M: BodyMode> StatsLayer<M> {
    /// Hands bodies on as tower-http's layers do: the inner service receives a
    /// [`RequestBody<B>`](super::RequestBody) around the request's own body type `B`, and the
    /// response carries a [`ResponseBody<B>`](super::ResponseBody) around the inner service's.
    /// For a service that takes a body type of its own, and for servers other than axum
    /// (tonic, hyper). Defaults to [`AxumBodies`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// use tower_stats::record::RequestBody;
    /// use tower_stats::Stats;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let stats = Stats::new();
    /// // A service that insists on its own request body type.
    /// let service = ServiceBuilder::new()
    ///     .layer(stats.layer().generic_bodies())
    ///     .service(service_fn(|req: Request<RequestBody<Full<Bytes>>>| async move {
    ///         let upload = req.into_body().collect().await?.to_bytes();
    ///         Ok::<_, std::convert::Infallible>(Response::new(Full::new(upload)))
    ///     }));
    ///
    /// let response = service.oneshot(Request::new(Full::new(Bytes::from("ping")))).await?;
    /// let body: Bytes = response.into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "ping");
    /// let http = stats.snapshot().http;
    /// assert_eq!((http.bytes_read_total, http.bytes_written_total), (4, 4));
    /// # Ok(())
    /// # }
    /// ```
    pub fn generic_bodies(self) -> StatsLayer<GenericBodies> {
        StatsLayer {
            stats: self.stats,
            mode: PhantomData,
        }
    }
}

impl Stats {
    /// The layer that records every request into this store.
    ///
    /// Apply it outermost (`Router::layer`) so that 404s and every route are recorded. For a
    /// service that takes a body type of its own, or a server other than axum, see
    /// [`StatsLayer::generic_bodies`].
    pub fn layer(&self) -> StatsLayer {
        StatsLayer::new(self.clone())
    }
}

impl<S, M: BodyMode> Layer<S> for StatsLayer<M> {
    type Service = StatsService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        StatsService::with_mode(inner, self.stats.clone())
    }
}
