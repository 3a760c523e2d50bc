//! Options chosen with [`StatsBuilder`](crate::StatsBuilder), shared read-only by every part.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::filter::Filters;

/// Hook choosing a request's URI set label from its head.
pub(crate) type UriSetHook =
    Arc<dyn Fn(&http::request::Parts) -> Option<Cow<'static, str>> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) slow_threshold: Duration,
    pub(crate) slow_capacity: usize,
    pub(crate) max_uri_sets: usize,
    /// Write shards: see [`crate::store::shard`].
    pub(crate) shards: usize,
    pub(crate) tracked_status_codes: Vec<StatusCode>,
    pub(crate) record_query: bool,
    pub(crate) record_client: bool,
    pub(crate) max_string_len: usize,
    pub(crate) prefix: String,
    pub(crate) bearer_token: Option<String>,
    pub(crate) read_only: bool,
    /// Origins whose browser posts the control routes accept from another origin.
    #[cfg(feature = "axum")]
    pub(crate) trusted_origins: Vec<String>,
    /// Host names the stats routes answer besides IP literals and `localhost`: lowercase,
    /// without a trailing dot.
    #[cfg(feature = "axum")]
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) instance: String,
    pub(crate) uri_set_hook: Option<UriSetHook>,
    /// Upper bounds, in seconds, of the Prometheus duration histogram buckets.
    pub(crate) duration_buckets: Vec<f64>,
    pub(crate) filters: Filters,
    pub(crate) record_stats_routes: bool,
    pub(crate) request_extension: bool,
    pub(crate) record_fraction: f64,
    pub(crate) recent_capacity: usize,
    pub(crate) max_events_per_request: usize,
    pub(crate) max_call_names: usize,
    pub(crate) event_capacity: usize,
    pub(crate) event_max_age: Duration,
    /// Where to publish for the cluster view.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::cluster::RedisOptions>,
    /// Route templates of the stats router, for leaving them out of the recording.
    pub(crate) stats_routes: Vec<String>,
}

/// OpenTelemetry's advice for `http.server.request.duration`, in seconds.
pub(crate) const DEFAULT_DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// How a matched path compares with the stats router's route templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatsRouteMatch {
    /// Not a stats route.
    No,
    /// Exactly a stats route of a merged (not nested) router.
    Exact,
    /// Ends like a stats route: the stats router nested under a prefix, or an application
    /// route that happens to end the same way.
    Candidate,
}

impl Config {
    /// Whether a matched path template may be one of the stats router's routes: it ends like
    /// one. Exact matches are stats routes; other candidates are checked against the nest
    /// prefixes learned by the stats router (see `Shared::is_stats_route`).
    pub(crate) fn stats_route_match(&self, matched: &str) -> StatsRouteMatch {
        let mut candidate = false;
        for route in &self.stats_routes {
            if matched == route.as_str() {
                return StatsRouteMatch::Exact;
            }
            candidate |= matched.ends_with(route.as_str());
        }
        if candidate {
            StatsRouteMatch::Candidate
        } else {
            StatsRouteMatch::No
        }
    }

    /// The duration bucket bounds in nanoseconds, rounded to the nearest nanosecond.
    pub(crate) fn bucket_nanos(&self) -> Vec<u64> {
        self.duration_buckets
            .iter()
            .map(|s| crate::clock::duration_nanos(std::time::Duration::from_secs_f64(*s)))
            .collect()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            slow_threshold: Duration::from_secs(1),
            slow_capacity: 100,
            max_uri_sets: 256,
            shards: crate::store::shard::default_shards(),
            tracked_status_codes: [404, 408, 499, 501]
                .into_iter()
                .filter_map(|c| StatusCode::from_u16(c).ok())
                .collect(),
            record_query: false,
            record_client: false,
            max_string_len: 256,
            prefix: "/stats".to_owned(),
            bearer_token: None,
            read_only: false,
            #[cfg(feature = "axum")]
            trusted_origins: Vec::new(),
            #[cfg(feature = "axum")]
            allowed_hosts: Vec::new(),
            instance: default_instance(),
            uri_set_hook: None,
            duration_buckets: DEFAULT_DURATION_BUCKETS.to_vec(),
            filters: Filters::default(),
            record_stats_routes: false,
            request_extension: false,
            record_fraction: 1.0,
            recent_capacity: 1000,
            max_events_per_request: 32,
            max_call_names: 256,
            event_capacity: 1000,
            event_max_age: Duration::from_secs(3600),
            #[cfg(feature = "redis")]
            redis: None,
            stats_routes: crate::routes::stats_routes("/stats"),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Config");
        debug
            .field("slow_threshold", &self.slow_threshold)
            .field("slow_capacity", &self.slow_capacity)
            .field("max_uri_sets", &self.max_uri_sets)
            .field("shards", &self.shards)
            .field("tracked_status_codes", &self.tracked_status_codes)
            .field("record_query", &self.record_query)
            .field("record_client", &self.record_client)
            .field("max_string_len", &self.max_string_len)
            .field("prefix", &self.prefix)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("read_only", &self.read_only);
        #[cfg(feature = "axum")]
        debug
            .field("trusted_origins", &self.trusted_origins)
            .field("allowed_hosts", &self.allowed_hosts);
        debug
            .field("instance", &self.instance)
            .field(
                "uri_set_hook",
                &self.uri_set_hook.as_ref().map(|_| "<hook>"),
            )
            .finish()
    }
}

/// `host:pid`, with the host name from the kernel or the environment.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}
