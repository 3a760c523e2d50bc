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
    let Some(snapshot) = pages.source.snapshot_for(query.as_deref()).await else {
        return unknown_instance();
    };
    let options = DashboardOptions::new(&*pages.base)
        .controls(pages.controls)
        .with_query(query.as_deref());
    let page = report::html::render(&snapshot, &options, &pages.formatting);
    html_response(StatusCode::OK, page)
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
    let Some(snapshot) = pages.source.snapshot_for(query.as_deref()).await else {
        return unknown_instance();
    };
    let body = report::json::render(&snapshot);
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

pub(super) async fn metrics(State(pages): State<PageState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = report::prometheus::Format::from_accept(accept);
    let body = report::prometheus::render(&pages.source.snapshot(), format);
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
    let Some(snapshot) = pages.source.snapshot_for(query.as_deref()).await else {
        return unknown_instance();
    };
    if serve_html(query.as_deref(), &headers) {
        let page = report::html::render_requests(&snapshot, &pages.base);
        return vary_accept(html_response(StatusCode::OK, page));
    }
    vary_accept(json_response(&serde_json::json!({
        "instance": snapshot.server.instance,
        "requests": snapshot.http.recent_requests,
    })))
}

pub(super) async fn request_detail(
    State(pages): State<PageState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(snapshot) = pages.source.snapshot_for(query.as_deref()).await else {
        return unknown_instance();
    };
    let record = report::html::find_request(&snapshot, &id);
    if serve_html(query.as_deref(), &headers) {
        let response = match record {
            Some(record) => html_response(
                StatusCode::OK,
                report::html::render_request(&snapshot, record, &pages.base),
            ),
            None => html_response(
                StatusCode::NOT_FOUND,
                report::html::render_request_not_found(&snapshot, &pages.base),
            ),
        };
        return vary_accept(response);
    }
    vary_accept(match record {
        Some(record) => json_response(record),
        None => json_error(
            StatusCode::NOT_FOUND,
            "no such request: it never existed or is no longer among the recent requests",
        ),
    })
}

pub(super) async fn events(State(pages): State<PageState>, RawQuery(query): RawQuery) -> Response {
    let Some(snapshot) = pages.source.snapshot_for(query.as_deref()).await else {
        return unknown_instance();
    };
    if format_param(query.as_deref()).as_deref() == Some("json") {
        return json_response(&serde_json::json!({ "events": snapshot.events() }));
    }
    let body = report::events::render(&snapshot);
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

/// `404` for `?instance=NAME` naming no instance the cluster knows.
fn unknown_instance() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "no such instance: give an instance name or boot id the cluster view lists",
    )
}
