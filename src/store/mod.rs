//! The write side: everything the layer touches for each request, kept in atomics and short
//! critical sections so that recording never waits on a reader.
//!
//! - [`calls`]: call statistics across requests, from their timelines;
//! - [`durations`]: a URI set's Prometheus duration buckets by status code and error type;
//! - [`event_log`]: the application events of the event stream;
//! - [`exemplars`]: one recent request per duration bucket, for OpenMetrics exemplars;
//! - [`grpc`]: the responses of gRPC requests by status code;
//! - [`http`]: the built-in `http` namespace's counters and its request-facing API;
//! - [`in_flight`]: the table of requests in flight;
//! - [`lifecycle`]: what the layer records over a request's life, the store's API to it;
//! - [`request`]: a request's record while it runs and once it has finished;
//! - [`ring`]: the ring of recent requests (and of application events);
//! - [`shard`]: which write shard a thread writes to, request ids in blocks, padding;
//! - `timeline` (feature `tracing`): spans and events on a request's timeline;
//! - [`uri_sets`]: the bounded table of URI sets and their counters;
//! - [`windows`]: latency histograms per wall-clock period.
//!
//! The read side ([`crate::snapshot`]) copies what it needs out of here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::config::Config;
use crate::registry::NamespaceInner;

use self::http::HttpStore;

pub(crate) mod calls;
pub(crate) mod durations;
pub(crate) mod event_log;
pub(crate) mod exemplars;
pub(crate) mod grpc;
pub(crate) mod http;
pub(crate) mod in_flight;
pub(crate) mod lifecycle;
pub(crate) mod request;
pub(crate) mod ring;
pub(crate) mod shard;
#[cfg(feature = "tracing")]
pub(crate) mod timeline;
pub(crate) mod uri_sets;
pub(crate) mod windows;

/// Everything recorded for one [`Stats`](crate::Stats) value, shared by its clones, the layer
/// and the router.
pub(crate) struct Store {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) http: HttpStore,
    pub(crate) namespaces: RwLock<BTreeMap<String, Arc<NamespaceInner>>>,
    /// Full route templates the stats router was reached through when nested (at most 64).
    pub(crate) nested_stats_routes: RwLock<Vec<Box<str>>>,
    /// The application's health status served at `/status`.
    pub(crate) status: crate::status::Status,
    /// 16 random hex digits chosen at creation: with the instance name, the identity of
    /// this store across restarts.
    pub(crate) boot_id: String,
    /// The publishing to Redis, when configured.
    #[cfg(feature = "redis")]
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl Store {
    /// Adds an event of the store itself (not of the application) to the event stream, even
    /// while recording is paused.
    #[cfg(feature = "redis")]
    pub(crate) fn log_internal_event(&self, message: String) {
        self.http.events.push(tokio::time::Instant::now(), message);
    }

    /// The cluster this store publishes to, when configured.
    #[cfg(feature = "redis")]
    pub(crate) fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    /// Whether a request matched to this route template is a request to the stats router,
    /// which is not recorded unless `record_stats_routes`.
    pub(crate) fn is_stats_route(&self, matched: &str) -> bool {
        match self.config.stats_route_match(matched) {
            crate::config::StatsRouteMatch::No => false,
            crate::config::StatsRouteMatch::Exact => true,
            crate::config::StatsRouteMatch::Candidate => self
                .nested_stats_routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|r| &**r == matched),
        }
    }

    #[cfg(feature = "axum")]
    /// Remembers a template the stats router was reached through, so later requests to it
    /// are left out as soon as they start.
    pub(crate) fn learn_stats_route(&self, matched: &str) {
        let mut routes = self
            .nested_stats_routes
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if routes.len() < 64 && !routes.iter().any(|r| &**r == matched) {
            routes.push(matched.into());
        }
    }
}

impl Store {
    /// The application namespaces, by name.
    pub(crate) fn app_namespaces(&self) -> Vec<(String, Arc<NamespaceInner>)> {
        self.namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }
}

/// 16 hex digits that differ from one store to the next, even in one process: the standard
/// library's randomly keyed hasher over the time, the process id and a counter.
pub(crate) fn new_boot_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
