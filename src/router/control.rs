//! The control routes: `POST` pause, resume, reset and maintenance.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::protection::{json_error, refusal, secure};
use super::wants_html;
use crate::Stats;

/// Largest control request body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
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
pub(super) fn control_route(action: Action) -> axum::routing::MethodRouter<Stats> {
    let handler = move |State(stats): State<Stats>, query, headers: HeaderMap, body: Bytes| {
        std::future::ready(control(&stats, action, query, &headers, &body))
    };
    post(handler)
}

/// `POST /stats/maintenance` with `on=true` or `on=false`: the switch of [`crate::Status`].
pub(super) async fn maintenance(
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
