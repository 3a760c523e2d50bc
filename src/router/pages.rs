//! The read-only routes: the dashboard, its stylesheet, the JSON document, the metrics, the
//! recent requests (list and detail) and the event stream.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::protection::{html_response, json_error, json_response, secure};
use super::wants_html;
use crate::report;
use crate::report::html::{Controls, DashboardActivity, DashboardOptions, Formatting, PageContext};
use crate::Stats;

pub(super) async fn dashboard(
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

pub(super) async fn data(State(stats): State<Stats>) -> Response {
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

pub(super) async fn metrics(State(stats): State<Stats>, headers: HeaderMap) -> Response {
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

pub(super) async fn request_detail(
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

pub(super) async fn events(State(stats): State<Stats>, RawQuery(query): RawQuery) -> Response {
    let snapshot = stats.snapshot();
    if format_param(query.as_deref()).as_deref() == Some("json") {
        return json_response(&serde_json::json!({ "events": snapshot.events }));
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
