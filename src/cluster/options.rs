//! [`RedisOptions`]: where and how often an instance publishes.

use std::time::Duration;

/// Where the instances of a service meet, and how often each publishes: given to
/// [`StatsBuilder::redis`](crate::StatsBuilder::redis).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_stats::{RedisOptions, Stats};
///
/// # fn main() -> Result<(), tower_stats::ConfigError> {
/// let options = RedisOptions::new("redis://127.0.0.1:6379/")
///     .service("shop")
///     .publish_interval(Duration::from_secs(5))
///     .retention(Duration::from_secs(3600));
/// # let options = options.service("doc-example");
/// let stats = Stats::builder().instance("web-1").redis(options).build()?;
/// # drop(stats);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisOptions {
    pub(crate) url: String,
    pub(crate) service: String,
    pub(crate) publish_interval: Duration,
    pub(crate) retention: Duration,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisOptions")
            .field("url", &"<redacted>")
            .field("service", &self.service)
            .field("publish_interval", &self.publish_interval)
            .field("retention", &self.retention)
            .finish()
    }
}

impl RedisOptions {
    /// Publishes to the Redis server at `url` (`redis://host:port/db`, `redis+unix:///path`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            service: "default".to_owned(),
            publish_interval: Duration::from_secs(5),
            retention: Duration::from_secs(3600),
        }
    }

    /// The service whose instances share a view: 1 to 64 ASCII letters, digits, `-`, `_` or
    /// `.`. Defaults to `default`.
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = name.into();
        self
    }

    /// How often the instance publishes its snapshot and reads the others': at least 100 ms.
    /// A publish that takes longer is skipped and counted. Defaults to 5 seconds.
    pub fn publish_interval(mut self, interval: Duration) -> Self {
        self.publish_interval = interval;
        self
    }

    /// How long an instance's last snapshot stays in Redis after it stopped publishing: at
    /// least three publish intervals. Defaults to one hour.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Why these options cannot be used, if they cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        let s = &self.service;
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!(
                "service name {s:?} must be 1 to 64 ASCII letters, digits, '-', '_' or '.'"
            ));
        }
        if self.publish_interval < Duration::from_millis(100) {
            return Err("the publish interval must be at least 100 ms".to_owned());
        }
        if self.retention < self.publish_interval * 3 {
            return Err("the retention must be at least three publish intervals".to_owned());
        }
        redis::Client::open(self.url.as_str())
            .map(drop)
            .map_err(|e| format!("invalid Redis URL: {e}"))
    }
}
