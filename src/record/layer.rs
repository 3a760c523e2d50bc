use tower_layer::Layer;

use super::StatsService;
use crate::Stats;

/// Layer that applies the [`StatsService`] middleware, recording into a [`Stats`] store.
///
/// Made by [`Stats::layer`]. See the [module docs](crate::record) for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct StatsLayer {
    stats: Stats,
}

impl StatsLayer {
    /// A layer recording into `stats`.
    pub fn new(stats: Stats) -> Self {
        Self { stats }
    }
}

impl Stats {
    /// The layer that records every request into this store.
    ///
    /// Apply it outermost (`Router::layer`) so that 404s and every route are recorded.
    pub fn layer(&self) -> StatsLayer {
        StatsLayer::new(self.clone())
    }
}

impl<S> Layer<S> for StatsLayer {
    type Service = StatsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatsService::new(inner, self.stats.clone())
    }
}
