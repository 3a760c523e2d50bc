//! The axum [`Router`] serving the statistics: `GET /stats`, `GET /stats/data`,
//! `/stats/metrics`, `/stats/requests`, `/stats/requests/{id}`, `/stats/events` and the
//! control routes `POST /stats/pause`, `/stats/resume`, `/stats/reset` and
//! `/stats/maintenance`.
//!
//! Each read-only route takes one [`Snapshot`](crate::Snapshot) per request, always from the
//! same source (this store), and renders it with the view's options and nothing else (see
//! the [`report`](crate::report) module).
//!
//! # Allowed hosts
//!
//! Every route of this router answers only requests that name an IP literal (v4 or v6, with
//! or without a port), `localhost`, or a host given with [`StatsBuilder::allowed_host`]. The
//! name is taken from the request's URI authority (HTTP/2's `:authority`, an absolute-form
//! target), else from its `Host` header. Any other name gets `421 Misdirected Request` with a
//! JSON error (`{"error", "status"}`) saying how to allow it. This keeps DNS rebinding out: a
//! web page whose domain its author points at `127.0.0.1` reaches a loopback listener, but
//! its requests name that domain. The code is `421` rather than `403` because the request is
//! not refused for who sent it but for the name it was sent to, which this server does not
//! answer for (RFC 9110 §15.5.20); logs and metrics tell it apart from a cross-origin
//! refusal. A request that names no host at all (HTTP/1.0, or a request built in process
//! with a bare path, as tests do) passes: it did not come from a browser page.
//! [`Stats::status_router`] does not check hosts: load balancers and uptime checkers call it
//! under any name, and it shows nothing that is not public.
//!
//! # Control routes
//!
//! The control routes change state only on `POST` (other methods get `405` with
//! `Allow: POST`), refuse cross-origin browser requests with `403` and a JSON error, require
//! `Authorization: Bearer <token>` (the scheme in any case) when
//! [`StatsBuilder::bearer_token`] is set, and are left out entirely in
//! [`StatsBuilder::read_only`] mode.
//!
//! Cross-origin requests are told apart by tower-http's
//! [`CsrfLayer`](tower_http::csrf::CsrfLayer), the rules of Go 1.25's `CrossOriginProtection`:
//! `Sec-Fetch-Site: same-origin` or `none` passes and any other value is refused; without it,
//! an `Origin` must match the request's authority (from the URI, as over HTTP/2, else
//! `Host`); an `Origin` given with [`StatsBuilder::trusted_origin`] always passes, for a proxy
//! that rewrites `Host`. Clients that send neither `Origin` nor `Sec-Fetch-Site`, such as
//! curl, are allowed.
//!
//! The control routes take an optional `namespace` (query string or form field; default: every namespace).
//! A browser form post (`Accept` includes `text/html`) gets `303 See Other` back to the page;
//! other clients get `200` with JSON of the new state. An unknown namespace gets `404` with a
//! JSON error.
//!
//! `POST /stats/maintenance` takes `on=true` or `on=false` instead (query string or form
//! field; anything else, or nothing, gets `400`) and turns the maintenance switch of
//! [`Stats::status`] on or off: `/status` (see [`Stats::status_router`]) then answers `503`.
//!
//! [`Stats::status_router`] serves `/status` apart from these routes, so that it can be
//! mounted where load balancers look for it.
//!
//! [`StatsBuilder::allowed_host`]: crate::StatsBuilder::allowed_host
//! [`StatsBuilder::bearer_token`]: crate::StatsBuilder::bearer_token
//! [`StatsBuilder::read_only`]: crate::StatsBuilder::read_only
//! [`StatsBuilder::trusted_origin`]: crate::StatsBuilder::trusted_origin

mod audit;
mod control;
mod pages;
mod protection;
mod source;
pub(crate) mod status;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use self::control::{control_route, maintenance, Action};
use self::pages::{
    dashboard, data, events, metrics, request_detail, requests, stylesheet, PageState,
};
use self::source::SnapshotSource;
use crate::report::html::{Controls, Formatting};
use crate::routes::{Endpoint, STATS_ROUTES};
use crate::Stats;

impl Stats {
    /// The router serving this store's statistics under the configured prefix.
    ///
    /// Merge it into an app, nest it under another prefix, or serve it on a separate loopback
    /// listener (recommended in production). It can be wrapped in any tower layer, such as
    /// authentication or an IP allow-list. It answers requests naming an IP literal or
    /// `localhost`; add the names operators use with
    /// [`StatsBuilder::allowed_host`](crate::StatsBuilder::allowed_host) (see the
    /// [module docs](crate::router)).
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
    ///     .route("/", get(|| async { "home" }))
    ///     .nest("/admin", stats.router())
    ///     .layer(stats.layer());
    ///
    /// let request = http::Request::get("/admin/stats/data").body(axum::body::Body::empty()).unwrap();
    /// let response = app.oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// # }
    /// ```
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.router_with_formatting(Formatting::default())
    }

    /// Like [`router`](Self::router), with per-key display rules for the dashboard's
    /// namespaces, `http` included (hide a value, or format it with a function of your own).
    ///
    /// # Example
    ///
    /// ```
    /// use axum::Router;
    /// use tower_stats::report::html::Formatting;
    /// use tower_stats::Stats;
    ///
    /// let stats = Stats::new();
    /// let formatting = Formatting::new()
    ///     .hide("shop", "supplier_key")
    ///     .format_with("shop", "basket_size", |v| format!("{} items", v));
    /// let app: Router = Router::new()
    ///     .merge(stats.router_with_formatting(formatting))
    ///     .layer(stats.layer());
    /// # drop(app);
    /// ```
    pub fn router_with_formatting<S>(&self, formatting: Formatting) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let config = &self.shared.config;
        let controls = if config.read_only {
            Controls::None
        } else if config.bearer_token.is_some() {
            Controls::TokenRequired
        } else {
            Controls::Forms
        };
        let page_state = PageState {
            source: SnapshotSource::local(self.clone()),
            base: self.page_segment().into(),
            controls,
            formatting: Arc::new(formatting),
        };
        // The read-only routes render snapshots; the control routes act on the store.
        let mut pages = Router::new();
        let mut control = Router::new();
        for (sub, endpoint) in STATS_ROUTES {
            if endpoint.is_control() && config.read_only {
                continue;
            }
            let path = format!("{}{sub}", self.prefix());
            match endpoint {
                Endpoint::Dashboard => pages = pages.route(&path, get(dashboard)),
                Endpoint::Stylesheet => pages = pages.route(&path, get(stylesheet)),
                Endpoint::Data => pages = pages.route(&path, get(data)),
                Endpoint::Metrics => pages = pages.route(&path, get(metrics)),
                Endpoint::Requests => pages = pages.route(&path, get(requests)),
                Endpoint::Request => pages = pages.route(&path, get(request_detail)),
                Endpoint::Events => pages = pages.route(&path, get(events)),
                Endpoint::Pause => control = control.route(&path, control_route(Action::Pause)),
                Endpoint::Resume => control = control.route(&path, control_route(Action::Resume)),
                Endpoint::Reset => control = control.route(&path, control_route(Action::Reset)),
                Endpoint::Maintenance => control = control.route(&path, post(maintenance)),
            }
        }
        if !config.read_only {
            control = control.route_layer(protection::cross_origin_layer(&config.trusted_origins));
        }
        // `route_layer`: the fallback (404s of the app this router is merged into) is not ours.
        // The last layer is the outermost: a refused request is left out too.
        let router = pages
            .with_state(page_state)
            .merge(control.with_state(self.clone()))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                protection::allowed_hosts_only,
            ));
        // The audit log sees every answer, refusals of the allowed hosts included.
        #[cfg(feature = "tracing")]
        let router = router.route_layer(axum::middleware::from_fn(audit::log));
        router.route_layer(axum::middleware::from_fn_with_state(
            self.clone(),
            leave_out_stats_request,
        ))
    }

    /// Last segment of the prefix: the relative name of the page from its control routes.
    fn page_segment(&self) -> &str {
        self.prefix().rsplit('/').next().unwrap_or("stats")
    }
}

/// Takes a request to the stats routes back out of the statistics (unless
/// `record_stats_routes`), and remembers the template it was reached through, so that when the
/// router is nested, later requests are left out as soon as they start.
async fn leave_out_stats_request(
    State(stats): State<Stats>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !stats.shared.config.record_stats_routes {
        crate::RequestStats::current().withdraw();
        if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
            stats.shared.learn_stats_route(matched.as_str());
        }
    }
    next.run(request).await
}

/// Whether the client asked for a page: an `Accept` that includes `text/html`, as browsers send.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}
