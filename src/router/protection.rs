//! The protections of the stats routes: the headers every answer carries, the page's
//! headers, the allowed hosts of every route, and the checks of the control routes (same
//! origin, then the bearer token).

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::csrf::{
    CsrfLayer, ProtectionError, ProtectionErrorKind, ResponseForProtectionError,
};

use super::audit::Audit;
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

/// The cross-origin protection of the control routes: tower-http's [`CsrfLayer`] (Go 1.25's
/// `CrossOriginProtection` rules) with the configured trusted origins, refusing with the JSON
/// error of [`json_error`].
pub(super) fn cross_origin_layer(trusted_origins: &[String]) -> CsrfLayer<CrossOriginRefusal> {
    let layer = trusted_origins
        .iter()
        .fold(CsrfLayer::new(), |layer, origin| {
            // `StatsBuilder::build` has checked every origin: none is refused here.
            layer.clone().add_trusted_origin(origin).unwrap_or(layer)
        });
    layer.with_rejection_response(CrossOriginRefusal)
}

/// The answer to a cross-origin request: `403` with a JSON error saying why, and what to
/// configure if the request was meant.
#[derive(Debug, Clone, Copy)]
pub(super) struct CrossOriginRefusal;

impl ResponseForProtectionError<Body> for CrossOriginRefusal {
    fn response_for_protection_error(&mut self, error: ProtectionError) -> Response {
        let (reason, message) = match error.kind() {
            ProtectionErrorKind::CrossOriginRequest => (
                "cross_site",
                "cross-site request refused: the browser sent it from another site \
                 (Sec-Fetch-Site); to accept a page on another origin, add its origin with \
                 StatsBuilder::trusted_origin",
            ),
            _ => (
                "cross_origin",
                "cross-origin request refused: its Origin does not match the request's host; \
                 behind a proxy that rewrites Host, add the public origin with \
                 StatsBuilder::trusted_origin",
            ),
        };
        Audit::Refused { reason, host: None }.attach(json_error(StatusCode::FORBIDDEN, message))
    }
}

/// Refuses, with `421 Misdirected Request`, a request to a stats route that names a host
/// other than an IP literal, `localhost` or a configured allowed host: DNS rebinding. A
/// request that names no host at all passes.
pub(super) async fn allowed_hosts_only(
    State(stats): State<Stats>,
    request: Request,
    next: Next,
) -> Response {
    let allowed = &stats.shared.config.allowed_hosts;
    let refused = match named_host(&request) {
        Named::Nothing => None,
        Named::Host(host) if host_allowed(&host, allowed) => None,
        Named::Host(host) => Some((
            format!(
                "host {:?} is not allowed on the stats routes (DNS rebinding protection): if \
                 operators reach this server by that name, add it with \
                 StatsBuilder::allowed_host({:?})",
                crate::sanitize::clean(&host, 256),
                crate::sanitize::clean(host.trim_end_matches('.'), 256),
            ),
            Audit::Refused {
                reason: "host_not_allowed",
                host: Some(host),
            },
        )),
        Named::Malformed => Some((
            "the request's host is malformed: the stats routes answer IP literals, localhost \
             and the names given with StatsBuilder::allowed_host"
                .to_owned(),
            Audit::Refused {
                reason: "malformed_host",
                host: None,
            },
        )),
    };
    match refused {
        Some((message, audit)) => {
            audit.attach(json_error(StatusCode::MISDIRECTED_REQUEST, &message))
        }
        None => next.run(request).await,
    }
}

/// The host a request names, without its port.
#[derive(Debug, PartialEq, Eq)]
enum Named {
    /// Neither an authority in the URI nor a `Host` header (or an empty one): HTTP/1.0, or a
    /// request built in process.
    Nothing,
    /// The host, IPv6 literals in brackets.
    Host(String),
    /// Not an authority, or one with user information.
    Malformed,
}

/// The host of the request's URI authority (HTTP/2's `:authority`, an absolute-form target),
/// else of its `Host` header, as tower-http's `CsrfLayer` takes it.
fn named_host<B>(request: &http::Request<B>) -> Named {
    if let Some(authority) = request.uri().authority() {
        return host_of(authority);
    }
    match request.headers().get(header::HOST) {
        None => Named::Nothing,
        Some(value) if value.is_empty() => Named::Nothing,
        Some(value) => Authority::try_from(value.as_bytes())
            .map_or(Named::Malformed, |authority| host_of(&authority)),
    }
}

fn host_of(authority: &Authority) -> Named {
    if authority.as_str().contains('@') {
        return Named::Malformed;
    }
    Named::Host(authority.host().to_owned())
}

/// Whether `host` is an IP literal, `localhost` or one of `allowed` (lowercase, without a
/// trailing dot), which no DNS answer can point elsewhere.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    name.eq_ignore_ascii_case("localhost") || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// The bearer token check of the control routes, if a token is configured (the cross-origin
/// check is [`cross_origin_layer`], in front of them). `Some` holds the refusal to send back.
pub(super) fn token_refusal(stats: &Stats, headers: &HeaderMap) -> Option<Response> {
    let token = stats.shared.config.bearer_token.as_ref()?;
    if bearer_matches(headers, token) {
        return None;
    }
    let mut response = Audit::Refused {
        reason: "bad_token",
        host: None,
    }
    .attach(json_error(
        StatusCode::UNAUTHORIZED,
        "a valid bearer token is required",
    ));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(response)
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

    fn named(uri: &str, host: Option<&str>) -> Named {
        let mut request = http::Request::get(uri);
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        named_host(&request.body(()).expect("request"))
    }

    #[test]
    fn the_uri_authority_comes_before_host() {
        let host = |h: &str| Named::Host(h.to_owned());
        assert_eq!(named("/stats", None), Named::Nothing);
        assert_eq!(named("/stats", Some("")), Named::Nothing);
        assert_eq!(named("/stats", Some("a.example:3000")), host("a.example"));
        assert_eq!(
            named("http://b.example/x", Some("a.example")),
            host("b.example")
        );
        assert_eq!(named("/stats", Some("[::1]:9000")), host("[::1]"));
        assert_eq!(
            named("/stats", Some("127.0.0.1@evil.example")),
            Named::Malformed
        );
        assert_eq!(named("/stats", Some("a b")), Named::Malformed);
    }

    #[test]
    fn ip_literals_localhost_and_allowed_names_pass() {
        let allowed = ["stats.example.com".to_owned()];
        for host in [
            "127.0.0.1",
            "10.0.0.5",
            "[::1]",
            "[fe80::1]",
            "localhost",
            "LOCALHOST",
            "localhost.",
            "stats.example.com",
            "Stats.Example.COM.",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in [
            "evil.example",
            "127.0.0.1.nip.io",
            "localhost.evil.example",
            "example.com",
            "[::1",
            "[evil.example]",
            "2130706433",
            "",
        ] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
