//! The [`Stats`] handle: the store's namespaces, snapshots and the control operations (pause, resume,
//! reset).

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use tokio::time::Instant;

use crate::clock::{duration_nanos, Clock};
use crate::config::Config;
use crate::registry::{check_name, Namespace, NamespaceInner, RegistryError};
use crate::snapshot::Snapshot;
use crate::store::http::HttpStore;
use crate::store::Store;

/// Name of the built-in namespace that holds the request statistics.
pub const HTTP_NAMESPACE: &str = "http";

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
    pub(crate) shared: Arc<Store>,
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
    /// A store with every default option (see [`StatsBuilder`](crate::StatsBuilder)).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn from_config(config: Config) -> Self {
        Self::with_clock(config, Clock::new())
    }

    /// A store whose clock is `clock` (tests line several stores up on one clock).
    pub(crate) fn with_clock(config: Config, clock: Clock) -> Self {
        let http = HttpStore::new(&config, &clock);
        let status = crate::status::Status::new(config.max_string_len);
        #[cfg(feature = "redis")]
        let redis = config.redis.clone();
        let stats = Self {
            shared: Arc::new(Store {
                config,
                clock,
                http,
                namespaces: RwLock::default(),
                nested_stats_routes: RwLock::default(),
                status,
                boot_id: crate::store::new_boot_id(),
                #[cfg(feature = "redis")]
                cluster: std::sync::OnceLock::new(),
            }),
        };
        #[cfg(feature = "redis")]
        if let Some(options) = redis {
            let boot_id = stats.shared.boot_id.clone();
            let cluster =
                crate::cluster::Cluster::start(options, boot_id, Arc::downgrade(&stats.shared));
            let _ = stats.shared.cluster.set(cluster);
        }
        stats
    }

    /// Publishes a last snapshot with state `stopped` and stops publishing to Redis: call it
    /// on graceful shutdown, so that the cluster view shows this instance as `stopped` rather
    /// than `stale`. Waits at most five seconds; does nothing without a cluster.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> std::io::Result<()> {
    /// # let stats = tower_stats::Stats::new();
    /// # let app: axum::Router = axum::Router::new().layer(stats.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
    ///     .await?;
    /// stats.leave_cluster().await;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub async fn leave_cluster(&self) {
        if let Some(cluster) = self.shared.cluster() {
            cluster.leave(std::time::Duration::from_secs(5)).await;
        }
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
    /// [`StatsBuilder::recent_capacity`](crate::StatsBuilder::recent_capacity)).
    #[must_use]
    pub fn recent_requests(&self) -> Vec<crate::RequestRecord> {
        let shared = &*self.shared;
        shared.http.collect_recent(|f| {
            Some(crate::snapshot::collect::finished_record(
                f,
                &shared.clock,
                &shared.config,
            ))
        })
    }

    /// The request with this id: in flight, or finished and still among the recent requests.
    #[must_use]
    pub fn request(&self, id: u64) -> Option<crate::RequestRecord> {
        let shared = &*self.shared;
        let http = &shared.http;
        let now = Instant::now();
        if let Some(record) = http.in_flight.find(id, |live| {
            crate::snapshot::collect::record_of(id, live, &shared.clock, now, None, &shared.config)
        }) {
            return Some(record);
        }
        http.find_recent(|f| {
            (f.id == id).then(|| {
                crate::snapshot::collect::finished_record(f, &shared.clock, &shared.config)
            })
        })
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
    /// [`StatsBuilder::event_max_age`](crate::StatsBuilder::event_max_age).
    #[must_use]
    pub fn events(&self) -> Vec<crate::StreamEvent> {
        self.snapshot().events()
    }

    /// The path prefix the router serves under (default `/stats`).
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.shared.config.prefix
    }
}

#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
impl Stats {
    /// A [`tracing_subscriber::Layer`] that puts the spans and events of each recorded
    /// request on its timeline, and feeds the call statistics; add it to the application's
    /// subscriber next to its own layers. See the [`tracing`](crate::tracing) module. Each
    /// layer allocates its table of span links (128 KiB) here, once.
    ///
    /// # Example
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let stats = tower_stats::Stats::new();
    /// let subscriber = tracing_subscriber::registry().with(stats.tracing_layer());
    /// # drop(subscriber);
    /// ```
    #[must_use]
    pub fn tracing_layer(&self) -> crate::tracing::StatsTracingLayer {
        crate::tracing::StatsTracingLayer::new(std::sync::Arc::clone(&self.shared))
    }
}

impl Stats {
    /// The handle to the application's health status served at `/status`.
    ///
    /// See [`Status`](crate::Status) for an example.
    #[must_use]
    pub fn status(&self) -> crate::Status {
        self.shared.status.clone()
    }

    /// Sets the application name and version reported at `/status`, in one call; both read
    /// `unknown` until then.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_stats::Stats;
    ///
    /// let stats = Stats::new();
    /// assert_eq!(stats.status().report().application, "unknown");
    ///
    /// stats.set_application(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    /// let report = stats.status().report();
    /// assert_eq!(report.application, env!("CARGO_PKG_NAME"));
    /// assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
    /// ```
    pub fn set_application(&self, name: &str, version: &str) {
        self.shared.status.set_application(name, version);
    }
}

/// A control operation: what `POST {prefix}/pause|resume|reset` do, locally or through a
/// cluster.
#[cfg(feature = "axum")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Pause,
    Resume,
    Reset,
}

#[cfg(feature = "axum")]
impl Control {
    /// The route's and the command's name: `pause`, `resume` or `reset`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Reset => "reset",
        }
    }

    /// The operation named `name`.
    #[cfg(feature = "redis")]
    pub(crate) fn parse(name: &str) -> Option<Self> {
        [Self::Pause, Self::Resume, Self::Reset]
            .into_iter()
            .find(|c| c.as_str() == name)
    }

    /// Applies it to `namespace` (or every namespace) of `stats`.
    pub(crate) fn apply(
        self,
        stats: &Stats,
        namespace: Option<&str>,
    ) -> Result<(), UnknownNamespace> {
        match self {
            Self::Pause => stats.pause(namespace),
            Self::Resume => stats.resume(namespace),
            Self::Reset => stats.reset(namespace),
        }
    }
}

enum Target {
    Http,
    App(Arc<NamespaceInner>),
}
