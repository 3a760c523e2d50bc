//! The protections of the stats routes: the headers every answer carries, the page's
//! headers, and the checks of the control routes (same origin, then the bearer token).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::report;
use crate::Stats;

/// Adds `nosniff`, `Cache-Control: no-store` and `Referrer-Policy: no-referrer`.
pub(super) fn secure(mut response: Response) -> Response {
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

/// An HTML page with the dashboard's headers: its `Content-Security-Policy`, no framing,
/// `nosniff`, `no-store`, and a `same-origin` referrer policy.
pub(super) fn html_response(status: StatusCode, page: String) -> Response {
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

/// `value` as `application/json`, with the headers of [`secure`].
pub(super) fn json_response(value: &impl serde::Serialize) -> Response {
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

/// A JSON error, `{"error", "status"}`, with the headers of [`secure`].
pub(super) fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "status": status.as_u16() });
    secure((status, axum::Json(body)).into_response())
}

/// The protections every control route shares: same origin, then the bearer token if one is
/// configured. `Some` holds the refusal to send back.
pub(super) fn refusal(stats: &Stats, headers: &HeaderMap) -> Option<Response> {
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

/// Whether `Authorization` carries `token` in the `Bearer` scheme, whose name is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some((scheme, given)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Compares without stopping at the first difference, so timing does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
