//! [`StatsBuilder`]: the options of a [`Stats`] store and their validation.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::clock::Clock;
use crate::config::Config;
use crate::Stats;

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
    /// The Redis options cannot be used: the reason.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    InvalidRedis(String),
    /// A trusted origin can never equal an `Origin` a browser sends: the reason. See
    /// [`StatsBuilder::trusted_origin`].
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    InvalidTrustedOrigin(String),
    /// An allowed host must be a host name of 1 to 253 ASCII letters, digits, `-`, `_` and
    /// `.`, with no scheme or port: the name given. See [`StatsBuilder::allowed_host`].
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    InvalidAllowedHost(String),
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
            #[cfg(feature = "redis")]
            Self::InvalidRedis(why) => write!(f, "invalid Redis options: {why}"),
            #[cfg(feature = "axum")]
            Self::InvalidTrustedOrigin(why) => write!(
                f,
                "invalid trusted origin: {why}; write it as browsers send `Origin`, such as \
                 `https://stats.example.com` or `http://10.0.0.5:8080`"
            ),
            #[cfg(feature = "axum")]
            Self::InvalidAllowedHost(host) => write!(
                f,
                "invalid allowed host {host:?}: give a host name such as `stats.example.com`, \
                 without scheme or port (ASCII letters, digits, '-', '_' and '.'; punycode for \
                 international names)"
            ),
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

impl Stats {
    /// A builder to set the options.
    pub fn builder() -> StatsBuilder {
        StatsBuilder::default()
    }
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

    /// How many write shards the statistics are kept in (1 to 64; values outside are
    /// clamped). Each thread that records requests writes one shard, given round robin the
    /// first time it records, so that requests on different cores write different memory;
    /// a snapshot adds the shards up, and every figure stays exact.
    ///
    /// Defaults to the available parallelism, at most 16: one shard per tokio worker on most
    /// servers. Memory grows with it: each URI set keeps a part per shard that recorded in it
    /// (about 22 KB idle and at most about 104 KB each), and each shard keeps the last
    /// `recent_capacity` finished requests. `shards(1)` keeps one copy of everything.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_stats::Stats;
    ///
    /// # fn main() -> Result<(), tower_stats::ConfigError> {
    /// // Four tokio workers: one shard each.
    /// let stats = Stats::builder().shards(4).build()?;
    /// # let _ = stats;
    /// # Ok(())
    /// # }
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.config.shards = shards.clamp(1, crate::store::shard::MAX_SHARDS);
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

    /// Accepts browser posts to the control routes whose `Origin` is exactly `origin`, even
    /// when it is not the origin of the request's host. Use it behind a proxy that rewrites
    /// `Host` (the dashboard is opened at `https://stats.example.com` but its posts reach
    /// this server as `127.0.0.1:9000`), or for a page on another origin that posts to the
    /// control routes. Repeat it for several origins. Defaults to none.
    ///
    /// Browsers that send `Sec-Fetch-Site: same-origin` need no trusted origin; older ones
    /// send only `Origin`, which is then compared with the request's host. Write the origin
    /// as browsers send it: `http` or `https`, the host in lowercase (punycode for
    /// international names), a port only if it is not the scheme's default, nothing after
    /// it. Anything else can never match and is refused by [`build`](Self::build)
    /// ([`ConfigError::InvalidTrustedOrigin`]). See the [`router`](crate::router) module.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_stats::Stats;
    ///
    /// # fn main() -> Result<(), tower_stats::ConfigError> {
    /// let stats = Stats::builder()
    ///     .trusted_origin("https://stats.example.com")
    ///     .build()?;
    /// assert!(Stats::builder().trusted_origin("https://stats.example.com/").build().is_err());
    /// # drop(stats);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.config.trusted_origins.push(origin.into());
        self
    }

    /// Serves the stats routes to requests naming `host`, on any port, besides IP literals
    /// and `localhost`: the name operators reach them by, such as `stats.example.com`.
    /// Repeat it for several names. Defaults to none: only IP literals (v4 and v6) and
    /// `localhost` are served.
    ///
    /// A request naming another host gets `421 Misdirected Request` on every route of
    /// [`Stats::router`], which keeps DNS rebinding out: a web page whose domain its author
    /// points at `127.0.0.1` reaches a loopback listener, but its requests name that domain.
    /// The name is compared without regard to case or a trailing dot. It must be 1 to 253
    /// ASCII letters, digits, `-`, `_` and `.`, without scheme or port; anything else is
    /// refused by [`build`](Self::build) ([`ConfigError::InvalidAllowedHost`]). See the
    /// [`router`](crate::router) module.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_stats::Stats;
    ///
    /// # fn main() -> Result<(), tower_stats::ConfigError> {
    /// let stats = Stats::builder().allowed_host("stats.example.com").build()?;
    /// assert!(Stats::builder().allowed_host("stats.example.com:9000").build().is_err());
    /// # drop(stats);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn allowed_host(mut self, host: impl Into<String>) -> Self {
        self.config.allowed_hosts.push(host.into());
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

    /// How many entries one request's timeline keeps (custom events, and with the `tracing`
    /// feature spans and events); later ones are dropped and counted. Defaults to 32.
    pub fn max_events_per_request(mut self, max: usize) -> Self {
        self.config.max_events_per_request = max;
        self
    }

    /// How many call names the call statistics keep (`namespaces.http.calls`); calls with
    /// later names are counted under `<overflow>`. Defaults to 256.
    pub fn max_call_names(mut self, max: usize) -> Self {
        self.config.max_call_names = max;
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

    /// Publishes this instance's statistics to Redis, for a view of every instance of the
    /// service: see the [`cluster`](crate::cluster) module. Defaults to no Redis.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, options: crate::RedisOptions) -> Self {
        self.config.redis = Some(options);
        self
    }

    /// Checks the options and creates the store.
    pub fn build(self) -> Result<Stats, ConfigError> {
        self.build_with_clock(Clock::new())
    }

    /// [`build`](Self::build) with the clock given.
    pub(crate) fn build_with_clock(self, clock: Clock) -> Result<Stats, ConfigError> {
        let mut config = self.config;
        if !crate::routes::is_plain_route_path(&config.prefix) {
            return Err(ConfigError::InvalidPrefix(config.prefix.clone()));
        }
        if let Some(token) = &config.bearer_token {
            if token.is_empty()
                || token.len() > 1024
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(ConfigError::InvalidBearerToken);
            }
        }
        #[cfg(feature = "axum")]
        {
            for origin in &config.trusted_origins {
                check_trusted_origin(origin).map_err(ConfigError::InvalidTrustedOrigin)?;
            }
            for host in &mut config.allowed_hosts {
                *host =
                    host_name(host).ok_or_else(|| ConfigError::InvalidAllowedHost(host.clone()))?;
            }
        }
        #[cfg(feature = "redis")]
        if let Some(options) = &config.redis {
            options.check().map_err(ConfigError::InvalidRedis)?;
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

/// Whether tower-http's `CsrfLayer` takes `origin`, and whether a browser can ever send it:
/// tower-http also takes capitals and default ports, which then never match.
#[cfg(feature = "axum")]
fn check_trusted_origin(origin: &str) -> Result<(), String> {
    let _layer = tower_http::csrf::CsrfLayer::new()
        .add_trusted_origin(origin)
        .map_err(|e| e.to_string())?;
    if origin.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "origin {origin:?} has capitals, which browsers never send"
        ));
    }
    let default_port = (origin.starts_with("http://") && origin.ends_with(":80"))
        || (origin.starts_with("https://") && origin.ends_with(":443"));
    if default_port {
        return Err(format!(
            "origin {origin:?} names its scheme's default port, which browsers leave out"
        ));
    }
    Ok(())
}

/// `name` as the router compares hosts, lowercase and without a trailing dot; `None` unless
/// it is a host name of 1 to 253 ASCII letters, digits, `-`, `_` and `.`.
#[cfg(feature = "axum")]
fn host_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.split('.').all(|label| !label.is_empty());
    valid.then(|| name.to_ascii_lowercase())
}
