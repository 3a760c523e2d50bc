//! The application's health status: the [`Status`] handle. The router answering at `/status`
//! is in the `router` module (feature `axum`).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::StatusCode;
use serde::{Serialize, Serializer};

use crate::sanitize::clean;

/// Name and version reported before [`Stats::set_application`](crate::Stats::set_application) is called, and the status
/// reported for an empty status string.
const UNKNOWN: &str = "unknown";

/// `Retry-After` not set.
const NO_RETRY_AFTER: u64 = u64::MAX;

/// The status an application reports at `/status`.
///
/// `ok` answers `200`, `maintenance` answers `503`, and any other string answers `500`.
/// Strings are compared exactly: `AppStatus::from("ok")` is [`AppStatus::Ok`], and an
/// [`AppStatus::Other`] holding `"ok"` or `"maintenance"` is reported as those.
///
/// # Example
///
/// ```
/// use http::StatusCode;
/// use tower_stats::AppStatus;
///
/// assert_eq!(AppStatus::from("ok"), AppStatus::Ok);
/// assert_eq!(AppStatus::Maintenance.http_status(), StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(AppStatus::from("degraded").http_status(), StatusCode::INTERNAL_SERVER_ERROR);
/// assert_eq!(AppStatus::from("degraded").as_str(), "degraded");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AppStatus {
    /// `ok`: the application serves normally (`200`).
    #[default]
    Ok,
    /// `maintenance`: the application is drained on purpose (`503`).
    Maintenance,
    /// Any other status, reported as is (`500`).
    Other(String),
}

impl AppStatus {
    /// The status as reported in the `status` key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ok => "ok",
            Self::Maintenance => "maintenance",
            Self::Other(s) => s,
        }
    }

    /// The HTTP code `/status` answers with: `200`, `503`, or `500`.
    #[must_use]
    pub fn http_status(&self) -> StatusCode {
        match self.as_str() {
            "ok" => StatusCode::OK,
            "maintenance" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Capped and cleaned, with `Other("ok")` and `Other("maintenance")` folded into their
    /// variants and an empty string reported as `unknown`.
    fn normalized(self, cap: usize) -> Self {
        match self {
            Self::Other(s) => {
                let s = clean(&s, cap);
                match s.as_str() {
                    "ok" => Self::Ok,
                    "maintenance" => Self::Maintenance,
                    "" => Self::Other(UNKNOWN.to_owned()),
                    _ => Self::Other(s),
                }
            }
            known => known,
        }
    }
}

impl fmt::Display for AppStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for AppStatus {
    fn from(s: &str) -> Self {
        match s {
            "ok" => Self::Ok,
            "maintenance" => Self::Maintenance,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl From<String> for AppStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "ok" => Self::Ok,
            "maintenance" => Self::Maintenance,
            _ => Self::Other(s),
        }
    }
}

impl Serialize for AppStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for AppStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(Self::from)
    }
}

/// One reading of the status: what `/status` serves, computed once.
///
/// Serializes to `{"application", "version", "status"}`, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// The application name, `unknown` until [`Stats::set_application`](crate::Stats::set_application) is called.
    pub application: String,
    /// The application version, `unknown` until [`Stats::set_application`](crate::Stats::set_application) is called.
    pub version: String,
    /// The status.
    pub status: AppStatus,
}

impl StatusReport {
    /// The HTTP code for this report: `200`, `503` or `500` (see [`AppStatus::http_status`]).
    #[must_use]
    pub fn http_status(&self) -> StatusCode {
        self.status.http_status()
    }
}

type Callback = Arc<dyn Fn() -> AppStatus + Send + Sync>;

enum Source {
    Fixed(AppStatus),
    Computed(Callback),
}

struct Application {
    name: String,
    version: String,
}

struct Inner {
    cap: usize,
    application: RwLock<Application>,
    maintenance: AtomicBool,
    source: RwLock<Source>,
    retry_after: AtomicU64,
}

/// The application's health status, as served at `/status`.
///
/// Cheap to clone (an `Arc` inside); every clone, and the [`Stats`](crate::Stats) it came from
/// ([`Stats::status`](crate::Stats::status)), sees the same status.
///
/// `/status` ([`Stats::status_router`](crate::Stats::status_router), feature `axum`) serves a document of exactly three
/// keys, `{"application": "my-app", "version": "1.2.3", "status": "ok"}`, with `200` for
/// `ok`, `503` for `maintenance` (with `Retry-After` when [`set_retry_after`] is set) and
/// `500` for anything else. The status is computed **once** per request, so the code and the
/// body always agree, even when a callback returns a different value on every call.
///
/// Where the status comes from, in order:
///
/// 1. the maintenance switch ([`set_maintenance`], or `POST /stats/maintenance?on=true` on
///    the stats router): while it is on, the status is `maintenance` and the callback is not
///    called;
/// 2. the callback given to [`status_with`], if any;
/// 3. the value given to [`set`] (default `ok`).
///
/// The application name and version are set in one call ([`Stats::set_application`](crate::Stats::set_application)) and read
/// `unknown` until then. Every string is capped at
/// [`StatsBuilder::max_string_len`](crate::StatsBuilder::max_string_len) characters and has its
/// control characters replaced.
///
/// [`set_retry_after`]: Self::set_retry_after
/// [`set_maintenance`]: Self::set_maintenance
/// [`status_with`]: Self::status_with
/// [`set`]: Self::set
///
/// # Example
///
/// ```
/// use tower_stats::{AppStatus, Stats};
///
/// let stats = Stats::new();
/// let status = stats.status();
/// assert_eq!(status.current(), AppStatus::Ok);
///
/// status.set_maintenance(true); // drain: /status answers 503
/// assert_eq!(status.current(), AppStatus::Maintenance);
/// status.set_maintenance(false);
///
/// status.set("degraded"); // any other status answers 500
/// assert_eq!(status.report().http_status(), 500);
///
/// // Or compute it on every request, from a health check of your own.
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// let db_up = Arc::new(AtomicBool::new(true));
/// let up = Arc::clone(&db_up);
/// status.status_with(move || if up.load(Ordering::Relaxed) { "ok" } else { "db down" });
/// assert_eq!(status.current(), AppStatus::Ok);
/// db_up.store(false, Ordering::Relaxed);
/// assert_eq!(status.report().http_status(), 500);
/// assert_eq!(status.current().as_str(), "db down");
/// ```
#[derive(Clone)]
pub struct Status {
    inner: Arc<Inner>,
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let application = self
            .inner
            .application
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let source = match &*self.inner.source.read().unwrap_or_else(|e| e.into_inner()) {
            Source::Fixed(status) => format!("{:?}", status.as_str()),
            Source::Computed(_) => "<callback>".to_owned(),
        };
        f.debug_struct("Status")
            .field("application", &application.name)
            .field("version", &application.version)
            .field("maintenance", &self.is_maintenance())
            .field("source", &source)
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl Status {
    /// A status of `ok` for an `unknown` application; strings capped at `cap` characters.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                cap,
                application: RwLock::new(Application {
                    name: UNKNOWN.to_owned(),
                    version: UNKNOWN.to_owned(),
                }),
                maintenance: AtomicBool::new(false),
                source: RwLock::new(Source::Fixed(AppStatus::Ok)),
                retry_after: AtomicU64::new(NO_RETRY_AFTER),
            }),
        }
    }

    /// Sets the application name and version reported at `/status`, in one call.
    ///
    /// Same as [`Stats::set_application`](crate::Stats::set_application).
    pub fn set_application(&self, name: &str, version: &str) {
        let cap = self.inner.cap;
        let application = Application {
            name: clean(name, cap),
            version: clean(version, cap),
        };
        *self
            .inner
            .application
            .write()
            .unwrap_or_else(|e| e.into_inner()) = application;
    }

    /// Reports `status` from now on.
    ///
    /// [`AppStatus::Maintenance`] turns the maintenance switch on, as
    /// [`set_maintenance(true)`](Self::set_maintenance) does, and leaves the rest alone, so
    /// switching maintenance off returns to the previous status. Any other status turns the
    /// switch off and replaces the callback of [`status_with`](Self::status_with), if any.
    pub fn set(&self, status: impl Into<AppStatus>) {
        match status.into().normalized(self.inner.cap) {
            AppStatus::Maintenance => self.set_maintenance(true),
            status => {
                *self.inner.source.write().unwrap_or_else(|e| e.into_inner()) =
                    Source::Fixed(status);
                self.set_maintenance(false);
            }
        }
    }

    /// Turns the maintenance switch on or off. While it is on, the status is `maintenance`
    /// (`503`) whatever [`set`](Self::set) or the callback says. Defaults to off.
    ///
    /// `POST /stats/maintenance` with `on=true` or `on=false` does the same over HTTP.
    pub fn set_maintenance(&self, on: bool) {
        self.inner.maintenance.store(on, Ordering::SeqCst);
    }

    /// Whether the maintenance switch is on.
    #[must_use]
    pub fn is_maintenance(&self) -> bool {
        self.inner.maintenance.load(Ordering::SeqCst)
    }

    /// Computes the status with `callback`, once per `/status` request (and per call of
    /// [`current`](Self::current) or [`report`](Self::report)), while the maintenance switch
    /// is off. Replaces the value of [`set`](Self::set); a later `set` with anything but
    /// `maintenance` replaces the callback. Defaults to no callback.
    ///
    /// The callback runs on the request's task: keep it quick and non-blocking (read a flag
    /// that a background task updates, rather than calling a remote service). A callback that
    /// panics is reported as `error` (`500`).
    pub fn status_with<F, T>(&self, callback: F)
    where
        F: Fn() -> T + Send + Sync + 'static,
        T: Into<AppStatus>,
    {
        let callback: Callback = Arc::new(move || callback().into());
        *self.inner.source.write().unwrap_or_else(|e| e.into_inner()) = Source::Computed(callback);
    }

    /// Sends `Retry-After` (in whole seconds) with the `503` answers of maintenance, or
    /// nothing with `None`. Defaults to `None`.
    pub fn set_retry_after(&self, after: Option<Duration>) {
        let secs = after.map_or(NO_RETRY_AFTER, |d| d.as_secs().min(NO_RETRY_AFTER - 1));
        self.inner.retry_after.store(secs, Ordering::SeqCst);
    }

    /// The `Retry-After` delay sent with maintenance answers, if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self.inner.retry_after.load(Ordering::SeqCst) {
            NO_RETRY_AFTER => None,
            secs => Some(Duration::from_secs(secs)),
        }
    }

    /// The status now, computed once (the callback, if any, is called at most once).
    #[must_use]
    pub fn current(&self) -> AppStatus {
        if self.is_maintenance() {
            return AppStatus::Maintenance;
        }
        // Clone out of the lock, so that a callback may itself use this handle.
        let callback = match &*self.inner.source.read().unwrap_or_else(|e| e.into_inner()) {
            Source::Fixed(status) => return status.clone(),
            Source::Computed(callback) => Arc::clone(callback),
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback()))
            .unwrap_or_else(|_| AppStatus::Other("error".to_owned()))
            .normalized(self.inner.cap)
    }

    /// The application name, version and [`current`](Self::current) status: one reading,
    /// what `/status` serves.
    #[must_use]
    pub fn report(&self) -> StatusReport {
        let status = self.current();
        let application = self
            .inner
            .application
            .read()
            .unwrap_or_else(|e| e.into_inner());
        StatusReport {
            application: application.name.clone(),
            version: application.version.clone(),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_normalized() {
        assert_eq!(AppStatus::Other("ok".into()).normalized(10), AppStatus::Ok);
        assert_eq!(
            AppStatus::Other("maintenance".into()).normalized(20),
            AppStatus::Maintenance
        );
        assert_eq!(
            AppStatus::Other(String::new()).normalized(10).as_str(),
            "unknown"
        );
        assert_eq!(
            AppStatus::Other("a\nverylongstatus".into())
                .normalized(4)
                .as_str(),
            "a\u{FFFD}ve…"
        );
    }

    #[test]
    fn maintenance_switch_overrides_and_restores() {
        let status = Status::new(64);
        status.set("degraded");
        status.set(AppStatus::Maintenance);
        assert_eq!(status.current(), AppStatus::Maintenance);
        status.set_maintenance(false);
        assert_eq!(status.current().as_str(), "degraded");
        status.set(AppStatus::Ok);
        assert_eq!(status.current(), AppStatus::Ok);
    }

    #[test]
    fn panicking_callback_is_an_error() {
        let status = Status::new(64);
        status.status_with(|| -> AppStatus { panic!("health check failed") });
        assert_eq!(status.current().as_str(), "error");
    }

    #[test]
    fn callback_may_use_the_handle() {
        let status = Status::new(64);
        let inner = status.clone();
        status.status_with(move || {
            inner.set_application("x", "y");
            "ok"
        });
        assert_eq!(status.report().application, "x");
    }

    #[test]
    fn retry_after_round_trips() {
        let status = Status::new(64);
        assert_eq!(status.retry_after(), None);
        status.set_retry_after(Some(Duration::from_secs(30)));
        assert_eq!(status.retry_after(), Some(Duration::from_secs(30)));
        status.set_retry_after(None);
        assert_eq!(status.retry_after(), None);
    }
}
