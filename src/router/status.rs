//! `/status`: the application's health status (see [`Status`]), served by
//! [`Stats::status_router`] and [`Stats::status_router_at`] from the status part of a
//! snapshot.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::protection::secure;
use super::source::SnapshotSource;
use crate::{AppStatus, Stats, Status, StatusReport, StatusSnapshot};

/// A path refused by [`Stats::status_router_at`]: it must start with `/`, must not end
/// with `/` or contain `//`, and may only use ASCII letters, digits and
/// `-._~!$&'()+,;=:@/` (the rules of
/// [`StatsBuilder::prefix`](crate::StatsBuilder::prefix)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStatusPath(pub String);

impl std::fmt::Display for InvalidStatusPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid status path {:?}: it must start with '/', must not end with '/' or \
             contain '//', and may only use ASCII letters, digits and -._~!$&'()+,;=:@/",
            self.0
        )
    }
}

impl std::error::Error for InvalidStatusPath {}

impl Stats {
    /// A router answering `GET` and `HEAD` at `/status` with the application's health
    /// status: `{"application", "version", "status"}` as `application/json`, with `200`
    /// for `ok`, `503` for `maintenance` and `500` otherwise (see the [`Status`] handle).
    ///
    /// Merge it into an app, or nest it to serve it elsewhere:
    /// `Router::new().nest("/health", stats.status_router())` serves `/health/status`.
    /// [`status_router_at`](Self::status_router_at) chooses the whole path. `HEAD` gets
    /// the same code and headers without a body; other methods get `405` with
    /// `Allow: GET,HEAD`. Answers are never cached (`Cache-Control: no-store`). Unlike
    /// [`router`](Self::router), it answers under any host name: load balancers and uptime
    /// checkers call it by whatever name they know, and it shows nothing that is not public.
    ///
    /// # Example
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use http_body_util::BodyExt;
    /// use tower::ServiceExt;
    /// use tower_stats::Stats;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let stats = Stats::new();
    /// stats.set_application("shop", "1.4.2");
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "home" }))
    ///     .merge(stats.status_router())
    ///     .layer(stats.layer());
    ///
    /// let request = http::Request::get("/status").body(axum::body::Body::empty())?;
    /// let response = app.clone().oneshot(request).await?;
    /// assert_eq!(response.status(), 200);
    /// let body = response.into_body().collect().await?.to_bytes();
    /// assert_eq!(&body[..], br#"{"application":"shop","version":"1.4.2","status":"ok"}"#);
    ///
    /// stats.status().set_maintenance(true);
    /// let request = http::Request::head("/status").body(axum::body::Body::empty())?;
    /// assert_eq!(app.oneshot(request).await?.status(), 503);
    /// # Ok(())
    /// # }
    /// ```
    pub fn status_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.status_router_unchecked("/status")
    }

    /// Like [`status_router`](Self::status_router), serving at `path` instead of
    /// `/status`, such as `/healthz`.
    ///
    /// # Example
    ///
    /// ```
    /// use axum::Router;
    /// use tower_stats::Stats;
    ///
    /// # fn main() -> Result<(), tower_stats::InvalidStatusPath> {
    /// let stats = Stats::new();
    /// let app: Router = Router::new().merge(stats.status_router_at("/healthz")?);
    /// assert!(stats.status_router_at::<()>("healthz").is_err());
    /// # drop(app);
    /// # Ok(())
    /// # }
    /// ```
    pub fn status_router_at<S>(&self, path: &str) -> Result<Router<S>, InvalidStatusPath>
    where
        S: Clone + Send + Sync + 'static,
    {
        if !crate::routes::is_plain_route_path(path) {
            return Err(InvalidStatusPath(path.to_owned()));
        }
        Ok(self.status_router_unchecked(path))
    }

    fn status_router_unchecked<S>(&self, path: &str) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let route = StatusRoute {
            source: SnapshotSource::local(self.clone()),
            settings: self.status(),
        };
        Router::new().route(path, get(serve)).with_state(route)
    }
}

/// What `/status` is served with.
#[derive(Debug, Clone)]
struct StatusRoute {
    /// Where the status comes from.
    source: SnapshotSource,
    /// The status handle, read for its `Retry-After` setting only.
    settings: Status,
}

/// `GET`/`HEAD` handler: one reading gives both the code and the body.
async fn serve(State(route): State<StatusRoute>) -> Response {
    answer(route.source.status(), route.settings.retry_after())
}

/// The answer for one reading of the status: `{"application", "version", "status"}` with
/// its code, and `Retry-After` when in maintenance and `retry_after` is set.
fn answer(status: StatusSnapshot, retry_after: Option<Duration>) -> Response {
    let maintenance = status.status == AppStatus::Maintenance;
    let report = StatusReport {
        application: status.application,
        version: status.version,
        status: status.status,
    };
    let code = report.http_status();
    let mut response = secure((code, axum::Json(&report)).into_response());
    if maintenance {
        if let Some(after) = retry_after {
            if let Ok(value) = HeaderValue::from_str(&after.as_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
    }
    response
}
