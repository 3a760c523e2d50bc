//! The axum [`Router`] serving the statistics: `GET /stats`, `GET /stats/data` and the
//! control routes `POST /stats/pause`, `/stats/resume`, `/stats/reset` and
//! `/stats/maintenance`.
//!
//! The control routes change state only on `POST` (other methods get `405` with
//! `Allow: POST`), refuse cross-origin browser requests with `403` (a `Sec-Fetch-Site` other
//! than `same-origin` or `none`, or an `Origin` that does not match `Host`), require
//! `Authorization: Bearer <token>` when [`StatsBuilder::bearer_token`] is set, and are left
//! out entirely in [`StatsBuilder::read_only`] mode. Clients that send neither `Origin` nor
//! `Sec-Fetch-Site`, such as curl, are allowed.
//!
//! They take an optional `namespace` (query string or form field; default: every namespace).
//! A browser form post (`Accept` includes `text/html`) gets `303 See Other` back to the page;
//! other clients get `200` with JSON of the new state. An unknown namespace gets `404` with a
//! JSON error.
//!
//! `POST /stats/maintenance` takes `on=true` or `on=false` instead (query string or form
//! field; anything else, or nothing, gets `400`) and turns the maintenance switch of
//! [`Stats::status`] on or off: `/status` (see [`Stats::status_router`]) then answers `503`.
//!
//! [`StatsBuilder::bearer_token`]: crate::StatsBuilder::bearer_token
//! [`StatsBuilder::read_only`]: crate::StatsBuilder::read_only

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::report;
use crate::report::html::{Controls, DashboardActivity, DashboardOptions, Formatting, PageContext};
use crate::Stats;

/// Largest control request body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

impl Stats {
    /// The router serving this store's statistics under the configured prefix.
    ///
    /// Merge it into an app, nest it under another prefix, or serve it on a separate loopback
    /// listener (recommended in production). It can be wrapped in any tower layer, such as
    /// authentication or an IP allow-list.
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

    /// Like [`router`](Self::router), with per-key display rules for the page's application
    /// namespaces (hide a value, or format it with a function of your own).
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
        let prefix = self.prefix().to_owned();
        let formatting = Arc::new(formatting);
        let mut router = Router::new()
            .route(
                &prefix,
                get(move |state: State<Self>, query: RawQuery| {
                    dashboard(state, query, Arc::clone(&formatting))
                }),
            )
            .route(&format!("{prefix}/style.css"), get(stylesheet))
            .route(&format!("{prefix}/data"), get(data))
            .route(&format!("{prefix}/metrics"), get(metrics))
            .route(&format!("{prefix}/requests"), get(requests))
            .route(&format!("{prefix}/requests/{{id}}"), get(request_detail))
            .route(&format!("{prefix}/events"), get(events));
        if !self.shared.config.read_only {
            router = router
                .route(&format!("{prefix}/pause"), control_route(Action::Pause))
                .route(&format!("{prefix}/resume"), control_route(Action::Resume))
                .route(&format!("{prefix}/reset"), control_route(Action::Reset))
                .route(&format!("{prefix}/maintenance"), post(maintenance));
        }
        // `route_layer`: the fallback (404s of the app this router is merged into) is not ours.
        router
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                leave_out_stats_request,
            ))
            .with_state(self.clone())
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

/// Adds `nosniff`, `Cache-Control: no-store` and `Referrer-Policy: no-referrer`.
pub(crate) fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn dashboard(
    State(stats): State<Stats>,
    RawQuery(query): RawQuery,
    formatting: Arc<Formatting>,
) -> Response {
    let config = &stats.shared.config;
    let controls = if config.read_only {
        Controls::None
    } else if config.bearer_token.is_some() {
        Controls::TokenRequired
    } else {
        Controls::Forms
    };
    let options = DashboardOptions::new(stats.page_segment())
        .controls(controls)
        .with_query(query.as_deref());
    let status = stats.status();
    let activity = DashboardActivity {
        recent: stats.recent_requests(),
        events: stats.events(),
        maintenance: status.is_maintenance(),
        status: status.current(),
    };
    let page =
        report::html::render_dashboard(&stats.snapshot(), Some(&activity), &options, &formatting);
    html_response(StatusCode::OK, page)
}

/// An HTML page with the dashboard's headers: its `Content-Security-Policy`, no framing,
/// `nosniff`, `no-store`, and a `same-origin` referrer policy.
fn html_response(status: StatusCode, page: String) -> Response {
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(report::html::CONTENT_SECURITY_POLICY),
    );
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let mut response = secure(response);
    // `no-referrer` would make browsers send `Origin: null` with the page's own form posts,
    // which the control routes refuse as cross-origin; `same-origin` still sends nothing to
    // any other origin.
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(report::html::REFERRER_POLICY),
    );
    response
}

async fn stylesheet() -> Response {
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        report::html::STYLESHEET,
    )
        .into_response();
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn data(State(stats): State<Stats>) -> Response {
    let body = report::json::render(&stats.snapshot());
    secure(
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
    )
}

async fn metrics(State(stats): State<Stats>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = report::prometheus::Format::from_accept(accept);
    let body = report::prometheus::render(&stats.snapshot(), format);
    secure(
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            body,
        )
            .into_response(),
    )
}

/// `?format=json` or `?format=text`/`html`; anything else is ignored.
#[derive(Debug, Default, Deserialize)]
struct FormatParam {
    format: Option<String>,
}

fn format_param(query: Option<&str>) -> Option<String> {
    query
        .and_then(|q| serde_urlencoded::from_str::<FormatParam>(q).ok())
        .and_then(|p| p.format)
}

fn json_response(value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    secure(
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
    )
}

/// Whether to answer with a page: `?format=html`, or an `Accept` that includes `text/html`
/// (as browsers send) unless `?format=json`.
fn serve_html(query: Option<&str>, headers: &HeaderMap) -> bool {
    match format_param(query).as_deref() {
        Some("json") => false,
        Some("html") => true,
        _ => wants_html(headers),
    }
}

/// Adds `Vary: Accept`: the same URL answers JSON or HTML depending on it.
fn vary_accept(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

async fn requests(
    State(stats): State<Stats>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let records = stats.recent_requests();
    if serve_html(query.as_deref(), &headers) {
        let snapshot = stats.snapshot();
        let context = PageContext::new(stats.page_segment(), &snapshot);
        let page = report::html::render_requests(&records, &context);
        return vary_accept(html_response(StatusCode::OK, page));
    }
    vary_accept(json_response(&serde_json::json!({
        "instance": stats.shared.config.instance,
        "requests": records,
    })))
}

async fn request_detail(
    State(stats): State<Stats>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let record = id.parse::<u64>().ok().and_then(|id| stats.request(id));
    if serve_html(query.as_deref(), &headers) {
        let snapshot = stats.snapshot();
        let context = PageContext::new(stats.page_segment(), &snapshot);
        let response = match record {
            Some(record) => html_response(
                StatusCode::OK,
                report::html::render_request(&record, &context),
            ),
            None => html_response(
                StatusCode::NOT_FOUND,
                report::html::render_request_not_found(&context),
            ),
        };
        return vary_accept(response);
    }
    vary_accept(match record {
        Some(record) => json_response(&record),
        None => json_error(
            StatusCode::NOT_FOUND,
            "no such request: it never existed or is no longer among the recent requests",
        ),
    })
}

async fn events(State(stats): State<Stats>, RawQuery(query): RawQuery) -> Response {
    let events = stats.events();
    if format_param(query.as_deref()).as_deref() == Some("json") {
        return json_response(&serde_json::json!({ "events": events }));
    }
    let now = stats.snapshot_time();
    let body = crate::events::render_text(&events, now);
    secure(
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
    )
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "status": status.as_u16() });
    secure((status, axum::Json(body)).into_response())
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Reset,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Reset => "reset",
        }
    }
}

/// The `POST` route of a pause, resume or reset control.
fn control_route(action: Action) -> axum::routing::MethodRouter<Stats> {
    let handler = move |State(stats): State<Stats>, query, headers: HeaderMap, body: Bytes| {
        std::future::ready(control(&stats, action, query, &headers, &body))
    };
    post(handler)
}

/// `POST /stats/maintenance` with `on=true` or `on=false`: the switch of [`crate::Status`].
async fn maintenance(
    State(stats): State<Stats>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&stats, &headers) {
        return refused;
    }
    let on = match params(query.as_deref(), &headers, &body) {
        Ok(params) => params.on,
        Err((status, message)) => return json_error(status, message),
    };
    let on = match on.as_deref() {
        Some("true") => true,
        Some("false") => false,
        Some(_) => return json_error(StatusCode::BAD_REQUEST, "`on` must be `true` or `false`"),
        None => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "missing `on` parameter: `true` or `false`",
            )
        }
    };
    let status = stats.status();
    status.set_maintenance(on);
    if wants_html(&headers) {
        return back_to_page(&stats);
    }
    let body = serde_json::json!({
        "ok": true,
        "action": "maintenance",
        "maintenance": status.is_maintenance(),
        "status": status.current(),
    });
    secure(axum::Json(body).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct ControlParams {
    namespace: Option<String>,
    on: Option<String>,
}

/// The protections every control route shares: same origin, then the bearer token if one is
/// configured. `Some` holds the refusal to send back.
fn refusal(stats: &Stats, headers: &HeaderMap) -> Option<Response> {
    if let Err(reason) = check_same_origin(headers) {
        return Some(json_error(StatusCode::FORBIDDEN, reason));
    }
    if let Some(token) = &stats.shared.config.bearer_token {
        if !bearer_matches(headers, token) {
            let mut response =
                json_error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Some(response);
        }
    }
    None
}

/// `303 See Other` back to the page, for browser form posts; relative, so it works nested.
fn back_to_page(stats: &Stats) -> Response {
    let location = format!("../{}", stats.page_segment());
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    secure(response)
}

fn control(
    stats: &Stats,
    action: Action,
    RawQuery(query): RawQuery,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(refused) = refusal(stats, headers) {
        return refused;
    }
    let namespace = match params(query.as_deref(), headers, body) {
        Ok(params) => params.namespace,
        Err((status, message)) => return json_error(status, message),
    };
    let namespace = namespace.as_deref().filter(|n| !n.is_empty());
    let result = match action {
        Action::Pause => stats.pause(namespace),
        Action::Resume => stats.resume(namespace),
        Action::Reset => stats.reset(namespace),
    };
    if let Err(unknown) = result {
        return json_error(StatusCode::NOT_FOUND, &unknown.to_string());
    }
    if wants_html(headers) {
        return back_to_page(stats);
    }
    let names = match namespace {
        Some(name) => vec![name.to_owned()],
        None => stats.namespace_names(),
    };
    let states: serde_json::Map<String, serde_json::Value> = names
        .into_iter()
        .map(|name| {
            let enabled = stats.is_enabled(&name).unwrap_or(false);
            (name, serde_json::json!({ "enabled": enabled }))
        })
        .collect();
    let body = serde_json::json!({ "ok": true, "action": action.as_str(), "namespaces": states });
    secure(axum::Json(body).into_response())
}

/// The `namespace` and `on` parameters from the query string or a form body (the form wins).
fn params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ControlParams, (StatusCode, &'static str)> {
    let from_query: ControlParams = match query {
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|_| (StatusCode::BAD_REQUEST, "malformed query string"))?,
        None => ControlParams::default(),
    };
    if body.len() > MAX_FORM_BYTES {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "control request body too large",
        ));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let from_body: ControlParams = if is_form && !body.is_empty() {
        serde_urlencoded::from_bytes(body)
            .map_err(|_| (StatusCode::BAD_REQUEST, "malformed form body"))?
    } else {
        ControlParams::default()
    };
    Ok(ControlParams {
        namespace: from_body.namespace.or(from_query.namespace),
        on: from_body.on.or(from_query.on),
    })
}

/// Refuses cross-origin browser requests; requests with neither header (curl) pass.
fn check_same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return Err("cross-site request refused");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let matches = match (origin_authority(origin), host) {
            (Some((scheme, authority)), Some(host)) => strip_default_port(scheme, authority)
                .eq_ignore_ascii_case(strip_default_port(scheme, host)),
            _ => false,
        };
        if !matches {
            return Err("cross-origin request refused");
        }
    }
    Ok(())
}

/// `("http", "host:port")` from an `Origin` value; `None` for `null` or anything malformed.
fn origin_authority(origin: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = origin.split_once("://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    Some((scheme, rest))
}

fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Compares without stopping at the first difference, so timing does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_parsing() {
        assert_eq!(origin_authority("http://a:1"), Some(("http", "a:1")));
        assert_eq!(origin_authority("null"), None);
        assert_eq!(origin_authority("http://a/b"), None);
        assert_eq!(strip_default_port("https", "a:443"), "a");
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
