//! The [`Stats`] handle, its builder, and the control operations (pause, resume, reset).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use crate::config::Config;
use crate::record::StatsLayer;
use crate::registry::http::{duration_nanos, Clock, HttpNamespace};
use crate::registry::{check_name, Namespace, NamespaceInner, RegistryError};
use crate::snapshot::Snapshot;

/// Name of the built-in namespace that holds the request statistics.
pub const HTTP_NAMESPACE: &str = "http";

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) next_id: AtomicU64,
    pub(crate) http: HttpNamespace,
    namespaces: RwLock<BTreeMap<String, Arc<NamespaceInner>>>,
    /// Full route templates the stats router was reached through when nested (at most 64).
    nested_stats_routes: RwLock<Vec<Box<str>>>,
    /// The application's health status served at `/status`.
    pub(crate) status: crate::status::Status,
    /// 16 random hex digits chosen at creation: with the instance name, the identity of
    /// this store across restarts.
    pub(crate) boot_id: String,
}

impl Shared {
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

impl Shared {
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
fn new_boot_id() -> String {
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

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The statistics store: the handle to every namespace, the layer and the router.
///
/// Cheap to clone (an `Arc` inside); every clone sees the same statistics. Each `Stats::new()`
/// is a separate store, so two apps in one process, or parallel tests, never interfere.
///
/// # Example
///
/// ```
/// use axum::{routing::get, Router};
/// use tower::ServiceExt;
/// use tower_stats::Stats;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let stats = Stats::new();
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "a user" }))
///     .merge(stats.router())
///     .layer(stats.layer());
///
/// let request = http::Request::get("/users/7").body(axum::body::Body::empty()).unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// # use http_body_util::BodyExt;
/// response.into_body().collect().await.unwrap();
///
/// let snapshot = stats.snapshot();
/// assert_eq!(snapshot.http.requests_total, 1);
/// assert_eq!(snapshot.http.uri_sets["GET /users/{id}"].count, 1);
/// # }
/// ```
#[derive(Clone)]
pub struct Stats {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::from_config(Config::default())
    }
}

/// A namespace name that no namespace has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNamespace(pub String);

impl fmt::Display for UnknownNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown namespace {:?}", self.0)
    }
}

impl std::error::Error for UnknownNamespace {}

impl Stats {
    /// A store with every default option (see [`StatsBuilder`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder to set the options.
    pub fn builder() -> StatsBuilder {
        StatsBuilder::default()
    }

    fn from_config(config: Config) -> Self {
        Self::with_clock(config, Clock::new())
    }

    /// A store whose clock is `clock` (tests line several stores up on one clock).
    pub(crate) fn with_clock(config: Config, clock: Clock) -> Self {
        let http = HttpNamespace::new(&config, &clock);
        let status = crate::status::Status::new(config.max_string_len);
        Self {
            shared: Arc::new(Shared {
                config,
                clock,
                next_id: AtomicU64::new(1),
                http,
                namespaces: RwLock::default(),
                nested_stats_routes: RwLock::default(),
                status,
                boot_id: new_boot_id(),
            }),
        }
    }

    /// The layer that records every request into this store.
    ///
    /// Apply it outermost (`Router::layer`) so that 404s and every route are recorded.
    pub fn layer(&self) -> StatsLayer {
        StatsLayer::new(self.clone())
    }

    /// Registers (or returns) the application namespace `name`.
    ///
    /// `http` is reserved for the built-in namespace.
    pub fn namespace(&self, name: &str) -> Result<Namespace, RegistryError> {
        check_name(name, HTTP_NAMESPACE)?;
        let mut namespaces = self
            .shared
            .namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let inner = namespaces
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(NamespaceInner::new()));
        Ok(Namespace {
            name: name.into(),
            inner: Arc::clone(inner),
        })
    }

    /// Names of every namespace, `http` included, sorted.
    #[must_use]
    pub fn namespace_names(&self) -> Vec<String> {
        let namespaces = self
            .shared
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = namespaces.keys().cloned().collect();
        names.push(HTTP_NAMESPACE.to_owned());
        names.sort();
        names
    }

    fn app_namespace(&self, name: &str) -> Option<Arc<NamespaceInner>> {
        self.shared
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn targets(&self, namespace: Option<&str>) -> Result<Vec<Target>, UnknownNamespace> {
        match namespace {
            Some(HTTP_NAMESPACE) => Ok(vec![Target::Http]),
            Some(name) => self
                .app_namespace(name)
                .map(|ns| vec![Target::App(ns)])
                .ok_or_else(|| UnknownNamespace(name.to_owned())),
            None => {
                let namespaces = self
                    .shared
                    .namespaces
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                let mut all = vec![Target::Http];
                all.extend(namespaces.values().cloned().map(Target::App));
                Ok(all)
            }
        }
    }

    /// Stops recording in `namespace` (or every namespace with `None`).
    ///
    /// Requests that started before the pause finish recording; requests that start while
    /// paused are never recorded, even if recording resumes before they end. Reports keep
    /// working and nothing is reset.
    pub fn pause(&self, namespace: Option<&str>) -> Result<(), UnknownNamespace> {
        self.set_enabled(namespace, false)
    }

    /// Resumes recording in `namespace` (or every namespace with `None`).
    pub fn resume(&self, namespace: Option<&str>) -> Result<(), UnknownNamespace> {
        self.set_enabled(namespace, true)
    }

    fn set_enabled(&self, namespace: Option<&str>, enabled: bool) -> Result<(), UnknownNamespace> {
        for target in self.targets(namespace)? {
            match target {
                Target::Http => self.shared.http.enabled.store(enabled, Ordering::SeqCst),
                Target::App(ns) => ns.enabled.store(enabled, Ordering::SeqCst),
            }
        }
        Ok(())
    }

    /// Whether `namespace` is recording.
    pub fn is_enabled(&self, namespace: &str) -> Result<bool, UnknownNamespace> {
        match self.targets(Some(namespace))?.first() {
            Some(Target::App(ns)) => Ok(ns.enabled.load(Ordering::SeqCst)),
            _ => Ok(self.shared.http.enabled.load(Ordering::SeqCst)),
        }
    }

    /// Zeroes the counters and collections of `namespace` (or every namespace with `None`).
    ///
    /// In-flight requests are kept and recorded when they finish; rates restart from now.
    pub fn reset(&self, namespace: Option<&str>) -> Result<(), UnknownNamespace> {
        for target in self.targets(namespace)? {
            match target {
                Target::Http => {
                    let now = Instant::now();
                    let offset = now.saturating_duration_since(self.shared.clock.base);
                    self.shared.http.reset(duration_nanos(offset), now);
                }
                Target::App(ns) => ns.reset(),
            }
        }
        Ok(())
    }

    /// A consistent copy of every namespace, taken without stopping recording: the read model
    /// every page is rendered from. See [`Snapshot`].
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        crate::snapshot::collect::snapshot(&self.shared)
    }

    /// The random id of this store (16 hex digits), chosen when it was created. With the
    /// instance name it identifies this run of the application: a restart under the same name
    /// gets a new one.
    #[must_use]
    pub fn boot_id(&self) -> &str {
        &self.shared.boot_id
    }

    /// The most recent finished requests with a detailed record, newest first (at most
    /// [`StatsBuilder::recent_capacity`]).
    #[must_use]
    pub fn recent_requests(&self) -> Vec<crate::RequestRecord> {
        let shared = &*self.shared;
        shared
            .http
            .recent
            .collect(|f| Some(f.record(&shared.clock, &shared.config)))
    }

    /// The request with this id: in flight, or finished and still among the recent requests.
    #[must_use]
    pub fn request(&self, id: u64) -> Option<crate::RequestRecord> {
        let shared = &*self.shared;
        let http = &shared.http;
        let now = Instant::now();
        if let Some(record) = http.in_flight.find(id, |live| {
            let path = crate::registry::http::raw_path(live.path.as_ref(), &shared.config);
            crate::registry::http::record_of(
                id,
                live,
                path,
                &shared.clock,
                now,
                None,
                &shared.config,
            )
        }) {
            return Some(record);
        }
        http.recent
            .find(|f| (f.id == id).then(|| f.record(&shared.clock, &shared.config)))
    }

    /// Adds an application event to the event stream (capped and cleaned like every recorded
    /// string). Ignored while the `http` namespace is paused.
    pub fn log_event(&self, message: &str) {
        let shared = &*self.shared;
        if !shared.http.enabled.load(Ordering::Relaxed) {
            return;
        }
        let message = crate::sanitize::clean(message, shared.config.max_string_len);
        shared.http.events.push(Instant::now(), message);
    }

    /// The event stream of this instance, newest first, without events older than
    /// [`StatsBuilder::event_max_age`].
    #[must_use]
    pub fn events(&self) -> Vec<crate::events::StreamEvent> {
        let shared = &*self.shared;
        shared.http.events.read(
            &shared.http,
            &shared.clock,
            Instant::now(),
            &shared.config.instance,
            &shared.config,
        )
    }

    /// The path prefix the router serves under (default `/stats`).
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.shared.config.prefix
    }
}

enum Target {
    Http,
    App(Arc<NamespaceInner>),
}

/// Why a [`StatsBuilder`] option was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The router prefix must start with `/`, must not end with `/` or contain `//`, and may
    /// only use ASCII letters, digits and `-._~!$&'()+,;=:@/` (no percent-encoding, no
    /// `{`, `}`, `*`, `?` or `#`).
    InvalidPrefix(String),
    /// A bearer token must be 1 to 1024 visible ASCII characters.
    InvalidBearerToken,
    /// Duration bucket bounds must be 1 to 64 finite numbers of seconds, above 0 and at most
    /// 10^9.
    InvalidDurationBuckets,
    /// The record fraction must be a number from 0.0 to 1.0.
    InvalidRecordFraction,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPrefix(p) => write!(
                f,
                "invalid stats prefix {p:?}: it must start with '/', must not end with '/' or \
                 contain '//', and may only use ASCII letters, digits and -._~!$&'()+,;=:@/"
            ),
            Self::InvalidBearerToken => {
                f.write_str("invalid bearer token: use 1 to 1024 visible ASCII characters")
            }
            Self::InvalidRecordFraction => {
                f.write_str("invalid record fraction: give a number from 0.0 to 1.0")
            }
            Self::InvalidDurationBuckets => f.write_str(
                "invalid duration buckets: give 1 to 64 finite bounds in seconds, each above 0 \
                 and at most 1e9",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Options of a [`Stats`] store. Every option has a default, stated on its method.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_stats::Stats;
///
/// # fn main() -> Result<(), tower_stats::ConfigError> {
/// let stats = Stats::builder()
///     .slow_threshold(Duration::from_millis(250))
///     .slow_capacity(50)
///     .max_uri_sets(128)
///     .bearer_token("s3cret")
///     .build()?;
/// assert_eq!(stats.prefix(), "/stats");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct StatsBuilder {
    config: Config,
}

impl StatsBuilder {
    /// Requests taking strictly longer than this are kept in the slow list.
    /// `Duration::ZERO` disables the slow list. Defaults to 1 second.
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.config.slow_threshold = threshold;
        self
    }

    /// How many slow requests are kept; the oldest is evicted first. Defaults to 100.
    pub fn slow_capacity(mut self, capacity: usize) -> Self {
        self.config.slow_capacity = capacity;
        self
    }

    /// How many URI sets are tracked; requests for later keys are counted in `<overflow>`.
    /// Defaults to 256.
    pub fn max_uri_sets(mut self, max: usize) -> Self {
        self.config.max_uri_sets = max;
        self
    }

    /// Status codes counted one by one in `status_codes`. Defaults to 404, 408, 499 and 501.
    pub fn tracked_status_codes(mut self, codes: impl IntoIterator<Item = StatusCode>) -> Self {
        let mut codes: Vec<StatusCode> = codes.into_iter().collect();
        codes.sort();
        codes.dedup();
        self.config.tracked_status_codes = codes;
        self
    }

    /// Whether recorded paths keep their query string. Defaults to `false`.
    pub fn record_query(mut self, record: bool) -> Self {
        self.config.record_query = record;
        self
    }

    /// Whether records carry the client address, taken from axum's `ConnectInfo<SocketAddr>`
    /// or a `SocketAddr` request extension. Defaults to `false`.
    pub fn record_client(mut self, record: bool) -> Self {
        self.config.record_client = record;
        self
    }

    /// Longest recorded string, in characters (paths, labels, application text); longer
    /// strings are cut and end in `…`. Control characters are always replaced.
    /// Defaults to 256.
    pub fn max_string_len(mut self, max: usize) -> Self {
        self.config.max_string_len = max.max(1);
        self
    }

    /// Path prefix of the router's routes. Defaults to `/stats`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// Requires `Authorization: Bearer <token>` on the control routes (pause, resume, reset).
    /// Defaults to no token.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.config.bearer_token = Some(token.into());
        self
    }

    /// Leaves the control routes out of the router entirely. Defaults to `false`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.config.read_only = read_only;
        self
    }

    /// Name of this instance in reports. Defaults to `host:pid`.
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.config.instance = name.into();
        self
    }

    /// A hook choosing the URI set label of a request from its head; `None` falls back to
    /// axum's `MatchedPath`, then `<unmatched>`. A [`UriSet`](crate::UriSet) request
    /// extension still takes precedence. Defaults to no hook.
    ///
    /// Return labels from a small, fixed set: every distinct label is a key, up to
    /// `max_uri_sets`.
    pub fn uri_set_with<F>(mut self, hook: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<Cow<'static, str>> + Send + Sync + 'static,
    {
        self.config.uri_set_hook = Some(Arc::new(hook));
        self
    }

    /// Upper bounds, in seconds, of the buckets of the Prometheus duration histogram
    /// (`http_server_request_duration_seconds`). Bounds must be finite and positive; they are
    /// sorted and deduplicated, and at most 64 are allowed. Defaults to OpenTelemetry's advice:
    /// 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5 and 10 seconds.
    ///
    /// The JSON quantiles do not depend on these bounds.
    pub fn duration_buckets(mut self, bounds: impl IntoIterator<Item = f64>) -> Self {
        self.config.duration_buckets = bounds.into_iter().collect();
        self
    }

    /// Records a request only if it matches one of the include groups (once any is given).
    /// See the [`filter`](crate::filter) module for the matching rules. Defaults to none.
    pub fn include(mut self, group: crate::Filter) -> Self {
        self.config.filters.include.push(group);
        self
    }

    /// Leaves out every request that matches this group: it appears nowhere, not even in the
    /// counters. See the [`filter`](crate::filter) module. Defaults to none.
    pub fn exclude(mut self, group: crate::Filter) -> Self {
        self.config.filters.exclude.push(group);
        self
    }

    /// Whether requests to the stats router itself (`/stats`, `/stats/data`, …, wherever it
    /// is nested) are recorded. Defaults to `false`: looking does not change what is seen.
    pub fn record_stats_routes(mut self, record: bool) -> Self {
        self.config.record_stats_routes = record;
        self
    }

    /// Whether the layer also puts the [`RequestStats`](crate::RequestStats) handle in every
    /// recorded request's extensions, for services that read extensions rather than calling
    /// [`RequestStats::current`](crate::RequestStats::current) or using the axum extractor.
    /// It costs an allocation per request. Defaults to `false`.
    pub fn request_extension(mut self, insert: bool) -> Self {
        self.config.request_extension = insert;
        self
    }

    /// Fraction of requests, from 0.0 to 1.0, that keep a detailed record: the slow list,
    /// the recent requests, timelines and the event stream. Counters and histograms always
    /// count every request. The choice is a hash of the request id, so it is spread evenly.
    /// Defaults to 1.0.
    pub fn record_fraction(mut self, fraction: f64) -> Self {
        self.config.record_fraction = fraction;
        self
    }

    /// How many finished requests are kept for `/stats/requests`, newest first.
    /// Defaults to 1000.
    pub fn recent_capacity(mut self, capacity: usize) -> Self {
        self.config.recent_capacity = capacity;
        self
    }

    /// How many custom events one request's timeline keeps; later ones are dropped and counted.
    /// Defaults to 32.
    pub fn max_events_per_request(mut self, max: usize) -> Self {
        self.config.max_events_per_request = max;
        self
    }

    /// How many events the event stream keeps, the oldest dropped first. Defaults to 1000.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.config.event_capacity = capacity;
        self
    }

    /// How long events stay in the event stream. Defaults to one hour.
    pub fn event_max_age(mut self, age: Duration) -> Self {
        self.config.event_max_age = age;
        self
    }

    /// Checks the options and creates the store.
    pub fn build(self) -> Result<Stats, ConfigError> {
        self.build_with_clock(Clock::new())
    }

    /// [`build`](Self::build) with the clock given.
    pub(crate) fn build_with_clock(self, clock: Clock) -> Result<Stats, ConfigError> {
        let mut config = self.config;
        let p = &config.prefix;
        if !p.starts_with('/')
            || p.len() < 2
            || p.ends_with('/')
            || p.contains("//")
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()+,;=:@/".contains(&b))
        {
            return Err(ConfigError::InvalidPrefix(p.clone()));
        }
        if let Some(token) = &config.bearer_token {
            if token.is_empty()
                || token.len() > 1024
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(ConfigError::InvalidBearerToken);
            }
        }
        if !(0.0..=1.0).contains(&config.record_fraction) {
            return Err(ConfigError::InvalidRecordFraction);
        }
        config.stats_routes = crate::routes::stats_routes(&config.prefix);
        let buckets = &mut config.duration_buckets;
        if buckets.is_empty()
            || buckets.len() > 64
            || buckets
                .iter()
                .any(|b| !b.is_finite() || *b <= 0.0 || *b > 1e9)
        {
            return Err(ConfigError::InvalidDurationBuckets);
        }
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        config.instance = crate::sanitize::clean(&config.instance, config.max_string_len);
        Ok(Stats::with_clock(config, clock))
    }
}
