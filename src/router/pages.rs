//! The read-only routes: the dashboard, its stylesheet, the JSON document, the metrics, the
//! recent requests (list and detail) and the event stream.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::protection::{html_response, json_error, json_response, secure};
use super::source::SnapshotSource;
use super::wants_html;
use crate::report;
use crate::report::html::{Controls, DashboardOptions, Formatting};
use crate::report::requests::RequestFilter;

/// What the read-only routes are served with: where snapshots come from, and the options of
/// the view. Each route takes one snapshot per request and renders it with these.
#[derive(Debug, Clone)]
pub(super) struct PageState {
    /// Where the snapshots come from.
    pub(super) source: SnapshotSource,
    /// Last segment of the router prefix, as [`DashboardOptions::base`].
    pub(super) base: Arc<str>,
    /// The controls the dashboard shows.
    pub(super) controls: Controls,
    /// Display rules for application values.
    pub(super) formatting: Arc<Formatting>,
}

pub(super) async fn dashboard(
    State(pages): State<PageState>,
    RawQuery(query): RawQuery,
) -> Response {
    let options = DashboardOptions::new(&*pages.base)
        .controls(pages.controls)
        .with_query(query.as_deref());
    let formatting = Arc::clone(&pages.formatting);
    pages
        .source
        .render(query, move |snapshot| {
            let page = report::html::render(snapshot, &options, &formatting);
            html_response(StatusCode::OK, page)
        })
        .await
}

pub(super) async fn stylesheet() -> Response {
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

pub(super) async fn data(State(pages): State<PageState>, RawQuery(query): RawQuery) -> Response {
    pages
        .source
        .render(query, |snapshot| {
            let body = report::json::render(snapshot);
            typed(HeaderValue::from_static("application/json"), body)
        })
        .await
}

pub(super) async fn metrics(State(pages): State<PageState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = report::prometheus::Format::from_accept(accept);
    // Per instance, whatever the scope: Prometheus scrapes every instance and sums them itself.
    pages
        .source
        .render(Some("scope=local".to_owned()), move |snapshot| {
            let body = report::prometheus::render(snapshot, format);
            typed(HeaderValue::from_static(format.content_type()), body)
        })
        .await
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

pub(super) async fn requests(
    State(pages): State<PageState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let html = serve_html(query.as_deref(), &headers);
    let base = Arc::clone(&pages.base);
    let filter = RequestFilter::from_query(query.as_deref());
    let view = query.clone();
    let response = pages
        .source
        .render(query, move |snapshot| match (html, filter) {
            (true, Ok(filter)) => html_response(
                StatusCode::OK,
                report::html::render_requests(snapshot, &base, &filter, None, view.as_deref()),
            ),
            (true, Err(error)) => html_response(
                StatusCode::BAD_REQUEST,
                report::html::render_requests(
                    snapshot,
                    &base,
                    &RequestFilter::default(),
                    Some(&error.to_string()),
                    view.as_deref(),
                ),
            ),
            (false, Ok(filter)) => json_response(&serde_json::json!({
                "instance": snapshot.server.instance,
                "filters": filter,
                "requests": filter.select(snapshot),
            })),
            (false, Err(error)) => json_error(StatusCode::BAD_REQUEST, &error.to_string()),
        })
        .await;
    vary_accept(response)
}

pub(super) async fn request_detail(
    State(pages): State<PageState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let html = serve_html(query.as_deref(), &headers);
    let base = Arc::clone(&pages.base);
    let response = pages
        .source
        .render(query, move |snapshot| {
            let record = report::html::find_request(snapshot, &id);
            match (html, record) {
                (true, Some(record)) => html_response(
                    StatusCode::OK,
                    report::html::render_request(snapshot, record, &base),
                ),
                (true, None) => html_response(
                    StatusCode::NOT_FOUND,
                    report::html::render_request_not_found(snapshot, &base),
                ),
                (false, Some(record)) => json_response(record),
                (false, None) => json_error(
                    StatusCode::NOT_FOUND,
                    "no such request: it never existed or is no longer among the recent requests",
                ),
            }
        })
        .await;
    vary_accept(response)
}

pub(super) async fn events(State(pages): State<PageState>, RawQuery(query): RawQuery) -> Response {
    let json = format_param(query.as_deref()).as_deref() == Some("json");
    pages
        .source
        .render(query, move |snapshot| {
            if json {
                return json_response(&serde_json::json!({ "events": snapshot.events() }));
            }
            let body = report::events::render(snapshot);
            typed(HeaderValue::from_static("text/plain; charset=utf-8"), body)
        })
        .await
}

/// `body` with its content type and the headers of every stats answer.
fn typed(content_type: HeaderValue, body: impl IntoResponse) -> Response {
    secure(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
