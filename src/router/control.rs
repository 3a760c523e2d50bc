//! The control routes: `POST` pause, resume, reset and maintenance.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::audit::Audit;
use super::protection::{json_error, secure, token_refusal};
use super::wants_html;
use crate::Stats;

/// Largest control request body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

pub(super) use crate::stats::Control as Action;

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
    if let Some(refused) = token_refusal(&stats, &headers) {
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
    let audit = Audit::Maintenance { on };
    if wants_html(&headers) {
        return audit.attach(back_to_page(&stats));
    }
    let body = serde_json::json!({
        "ok": true,
        "action": "maintenance",
        "maintenance": status.is_maintenance(),
        "status": status.current(),
    });
    audit.attach(secure(axum::Json(body).into_response()))
}

#[derive(Debug, Default, Deserialize)]
struct ControlParams {
    namespace: Option<String>,
    on: Option<String>,
    /// `local` (the default) or `cluster`.
    scope: Option<String>,
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
    if let Some(refused) = token_refusal(stats, headers) {
        return refused;
    }
    let (namespace, scope) = match params(query.as_deref(), headers, body) {
        Ok(params) => (params.namespace, params.scope),
        Err((status, message)) => return json_error(status, message),
    };
    let namespace = namespace.as_deref().filter(|n| !n.is_empty());
    let cluster = match scope.as_deref() {
        None | Some("" | "local") => false,
        Some("cluster") => true,
        Some(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "`scope` must be `local` or `cluster`",
            )
        }
    };
    let result = action.apply(stats, namespace);
    if let Err(unknown) = result {
        return json_error(StatusCode::NOT_FOUND, &unknown.to_string());
    }
    if cluster {
        if let Some(refused) = post_to_cluster(stats, action, namespace) {
            return refused;
        }
    }
    let audit = Audit::Action {
        action: action.as_str(),
        namespace: namespace.map(str::to_owned),
        scope: if cluster { "cluster" } else { "local" },
    };
    if wants_html(headers) {
        return audit.attach(back_to_page(stats));
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
    let scope = if cluster { "cluster" } else { "local" };
    let body = serde_json::json!({
        "ok": true,
        "action": action.as_str(),
        "scope": scope,
        "namespaces": states,
    });
    audit.attach(secure(axum::Json(body).into_response()))
}

/// Sends a control command to every other instance through Redis (this one applied it
/// already); `Some` holds the refusal when that cannot be done.
fn post_to_cluster(stats: &Stats, action: Action, namespace: Option<&str>) -> Option<Response> {
    #[cfg(feature = "redis")]
    if let Some(cluster) = stats.shared.cluster() {
        if cluster.post(action, namespace) {
            return None;
        }
        return Some(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many control commands are waiting to reach the cluster; try again",
        ));
    }
    let _ = (stats, action, namespace);
    Some(json_error(
        StatusCode::BAD_REQUEST,
        "`scope=cluster` needs a cluster: configure Redis (feature `redis`)",
    ))
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
        scope: from_body.scope.or(from_query.scope),
    })
}
