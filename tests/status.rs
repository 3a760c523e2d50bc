//! `/status` as a load balancer sees it, through `oneshot` on an axum app: the three codes
//! and their bodies, HEAD, mounting, and the maintenance switch behind the control route's
//! protections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use http::{header, Method, Request, Response, StatusCode};
use serde_json::Value;
use tower_stats::{AppStatus, InvalidStatusPath, Stats};

mod common;

use common::http::{request, send};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An app with one route, `/status` and the stats router merged, and the layer over all.
fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .merge(stats.status_router())
        .merge(stats.router())
        .layer(stats.layer())
}

fn form(uri: &str, body: &'static str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("valid request")
}

fn with_header(mut request: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(name, value.parse().expect("header value"));
    request
}

fn json(response: &Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(response.body())
        )
    })
}

/// `GET` at `uri`, checked to be a `/status` document of exactly three string keys with the
/// status headers; returns the code and the document.
async fn status_at(app: &Router, uri: &str) -> (StatusCode, Value) {
    let r = send(app, request(Method::GET, uri)).await;
    assert_status_headers(&r, uri);
    let doc = json(&r);
    let object = doc.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["application", "status", "version"], "{doc}");
    assert!(object.values().all(Value::is_string), "{doc}");
    (r.status(), doc)
}

async fn status(app: &Router) -> (StatusCode, Value) {
    status_at(app, "/status").await
}

fn assert_status_headers(r: &Response<Bytes>, what: &str) {
    let headers = r.headers();
    assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{what}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{what}");
}

fn expected_code(status: &str) -> StatusCode {
    match status {
        "ok" => StatusCode::OK,
        "maintenance" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

// ---------------------------------------------------------------------------------------------
// The document and its codes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ok_maintenance_and_other_statuses_have_their_codes() {
    let stats = Stats::new();
    stats.set_application("shop", "1.4.2");
    let app = app(&stats);

    let (code, doc) = status(&app).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        doc,
        serde_json::json!({"application": "shop", "version": "1.4.2", "status": "ok"})
    );

    stats.status().set(AppStatus::Maintenance);
    let (code, doc) = status(&app).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(doc["status"], "maintenance");
    assert_eq!(doc["application"], "shop");
    assert_eq!(doc["version"], "1.4.2");

    stats.status().set("degraded");
    let (code, doc) = status(&app).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(doc["status"], "degraded");

    // "unknown" is not "ok", and an empty status reads "unknown".
    for (set, shown) in [("unknown", "unknown"), ("", "unknown"), ("OK", "OK")] {
        stats.status().set(set);
        let (code, doc) = status(&app).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{set:?}");
        assert_eq!(doc["status"], shown, "{set:?}");
    }

    stats.status().set(AppStatus::Ok);
    assert_eq!(status(&app).await.0, StatusCode::OK);
}

#[tokio::test]
async fn maintenance_switch_overrides_and_restores_the_status() {
    let stats = Stats::new();
    let app = app(&stats);
    stats.status().set("degraded");
    stats.status().set_maintenance(true);
    let (code, doc) = status(&app).await;
    assert_eq!(
        (code, doc["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("maintenance"))
    );
    stats.status().set_maintenance(false);
    let (code, doc) = status(&app).await;
    assert_eq!(
        (code, doc["status"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("degraded"))
    );
}

#[tokio::test]
async fn unset_name_and_version_read_unknown() {
    let stats = Stats::new();
    let (code, doc) = status(&app(&stats)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        doc,
        serde_json::json!({"application": "unknown", "version": "unknown", "status": "ok"})
    );
}

#[tokio::test]
async fn strings_are_capped_and_cleaned() -> TestResult {
    let stats = Stats::builder().max_string_len(8).build()?;
    let app = app(&stats);
    stats.set_application("name\u{1b}[31mred", "1.0\n");
    stats.status().set("draining\r\nX-Injected: 1");
    let (code, doc) = status(&app).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(doc["application"], "name\u{FFFD}[31…");
    assert_eq!(doc["version"], "1.0\u{FFFD}");
    assert_eq!(doc["status"], "draining…");
    Ok(())
}

#[tokio::test]
async fn code_and_body_agree_with_a_changing_callback() {
    let stats = Stats::new();
    let app = app(&stats);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    stats
        .status()
        .status_with(move || match counter.fetch_add(1, Ordering::SeqCst) % 3 {
            0 => AppStatus::Ok,
            1 => AppStatus::Maintenance,
            _ => AppStatus::from("broken"),
        });
    let mut seen = Vec::new();
    for i in 0..30 {
        let (code, doc) = status(&app).await;
        let shown = doc["status"].as_str().expect("string status").to_owned();
        assert_eq!(
            code,
            expected_code(&shown),
            "request {i}: {code} with {doc}"
        );
        seen.push(shown);
    }
    // One call per request: the statuses follow the callback's cycle exactly.
    assert_eq!(calls.load(Ordering::SeqCst), 30);
    for (i, shown) in seen.iter().enumerate() {
        assert_eq!(shown, ["ok", "maintenance", "broken"][i % 3], "request {i}");
    }

    // HEAD too: one call, and the code follows the same cycle.
    for i in 30..36 {
        let r = send(&app, request(Method::HEAD, "/status")).await;
        assert_eq!(
            r.status(),
            expected_code(["ok", "maintenance", "broken"][i % 3])
        );
        assert!(r.body().is_empty());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 36);

    // The maintenance switch wins without calling the callback.
    stats.status().set_maintenance(true);
    assert_eq!(status(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 36);
}

#[tokio::test]
async fn concurrent_requests_see_matching_codes_and_bodies() {
    let stats = Stats::new();
    let app = app(&stats);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    stats.status().status_with(move || {
        if counter.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            "ok"
        } else {
            "maintenance"
        }
    });
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let (code, doc) = status(&app).await;
                let shown = doc["status"].as_str().expect("string status");
                assert_eq!(code, expected_code(shown), "{code} with {doc}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 200);
}

// ---------------------------------------------------------------------------------------------
// HEAD and other methods
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn head_has_the_code_and_headers_of_get_and_no_body() {
    let stats = Stats::new();
    stats.set_application("shop", "1");
    stats
        .status()
        .set_retry_after(Some(Duration::from_secs(120)));
    let app = app(&stats);
    let cases: [(AppStatus, StatusCode); 3] = [
        (AppStatus::Ok, StatusCode::OK),
        (AppStatus::Maintenance, StatusCode::SERVICE_UNAVAILABLE),
        (AppStatus::from("down"), StatusCode::INTERNAL_SERVER_ERROR),
    ];
    for (set, code) in cases {
        stats.status().set(set.clone());
        let get = send(&app, request(Method::GET, "/status")).await;
        let head = send(&app, request(Method::HEAD, "/status")).await;
        assert_eq!(get.status(), code, "GET {set}");
        assert_eq!(head.status(), code, "HEAD {set}");
        assert_status_headers(&head, "HEAD");
        assert!(head.body().is_empty(), "HEAD {set} has a body");
        assert!(!get.body().is_empty());
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::CACHE_CONTROL,
            header::X_CONTENT_TYPE_OPTIONS,
            header::RETRY_AFTER,
        ] {
            assert_eq!(
                get.headers().get(&name),
                head.headers().get(&name),
                "{set}: {name}"
            );
        }
        if set == AppStatus::Maintenance {
            assert_eq!(head.headers()[header::RETRY_AFTER], "120");
        } else {
            assert!(head.headers().get(header::RETRY_AFTER).is_none(), "{set}");
        }
        // The maintenance switch stays off after `set(ok | other)`.
        stats.status().set_maintenance(false);
    }
}

#[tokio::test]
async fn retry_after_is_absent_unless_set() {
    let stats = Stats::new();
    let app = app(&stats);
    stats.status().set_maintenance(true);
    let r = send(&app, request(Method::GET, "/status")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get(header::RETRY_AFTER).is_none());
}

#[tokio::test]
async fn other_methods_get_405_with_allow_get_and_head() {
    let stats = Stats::new();
    let app = app(&stats);
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = send(&app, request(method.clone(), "/status")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = r.headers()[header::ALLOW].to_str().expect("ASCII");
        let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
        allowed.sort_unstable();
        assert_eq!(allowed, ["GET", "HEAD"], "{method}");
    }
}

// ---------------------------------------------------------------------------------------------
// Mounting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn status_router_nests_and_serves_at_a_chosen_path() -> TestResult {
    let stats = Stats::new();
    stats.set_application("shop", "2");
    let app: Router = Router::new()
        .nest("/health", stats.status_router())
        .merge(stats.status_router_at("/healthz")?)
        .merge(stats.status_router_at("/internal/ready")?)
        .layer(stats.layer());
    for uri in ["/health/status", "/healthz", "/internal/ready"] {
        let (code, doc) = status_at(&app, uri).await;
        assert_eq!(code, StatusCode::OK, "{uri}");
        assert_eq!(doc["application"], "shop", "{uri}");
    }
    assert_eq!(
        send(&app, request(Method::GET, "/status")).await.status(),
        StatusCode::NOT_FOUND
    );
    stats.status().set_maintenance(true);
    let head = send(&app, request(Method::HEAD, "/health/status")).await;
    assert_eq!(head.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(head.body().is_empty());

    Ok(())
}

#[test]
fn status_router_at_rejects_invalid_paths() {
    let stats = Stats::new();
    for path in [
        "",
        "/",
        "healthz",
        "/healthz/",
        "//x",
        "/a//b",
        "/h z",
        "/{id}",
        "/*x",
        "/a?b",
        "/é",
    ] {
        let err = stats.status_router_at::<()>(path).expect_err(path);
        assert_eq!(err, InvalidStatusPath(path.to_owned()));
        assert!(err.to_string().contains("invalid status path"), "{err}");
    }
}

#[tokio::test]
async fn status_is_per_store() {
    let one = Stats::new();
    let two = Stats::new();
    one.set_application("one", "1");
    one.status().set_maintenance(true);
    let (code, doc) = status(&app(&two)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(doc["application"], "unknown");
    assert_eq!(status(&app(&one)).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

// ---------------------------------------------------------------------------------------------
// POST /stats/maintenance
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn maintenance_toggles_through_query_and_form() {
    let stats = Stats::new();
    let app = app(&stats);

    let r = send(&app, request(Method::POST, "/stats/maintenance?on=true")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        json(&r),
        serde_json::json!({
            "ok": true,
            "action": "maintenance",
            "maintenance": true,
            "status": "maintenance",
        })
    );
    assert!(stats.status().is_maintenance());
    assert_eq!(status(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);

    let r = send(&app, request(Method::POST, "/stats/maintenance?on=false")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(&r)["maintenance"], false);
    assert_eq!(json(&r)["status"], "ok");
    assert_eq!(status(&app).await.0, StatusCode::OK);

    let r = send(&app, form("/stats/maintenance", "on=true")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(&r)["maintenance"], true);
    let (code, doc) = status(&app).await;
    assert_eq!(
        (code, doc["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("maintenance"))
    );

    let r = send(&app, form("/stats/maintenance", "on=false")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(status(&app).await.0, StatusCode::OK);

    // The form field wins over the query string.
    let r = send(&app, form("/stats/maintenance?on=false", "on=true")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(stats.status().is_maintenance());

    // Leaving maintenance returns to the status set from code.
    stats.status().set("degraded");
    send(&app, request(Method::POST, "/stats/maintenance?on=true")).await;
    assert_eq!(status(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let r = send(&app, request(Method::POST, "/stats/maintenance?on=false")).await;
    assert_eq!(json(&r)["status"], "degraded");
    assert_eq!(status(&app).await.0, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn maintenance_needs_a_valid_on_value() {
    let stats = Stats::new();
    let app = app(&stats);
    let bad: [Request<Body>; 8] = [
        request(Method::POST, "/stats/maintenance"),
        request(Method::POST, "/stats/maintenance?on="),
        request(Method::POST, "/stats/maintenance?on=yes"),
        request(Method::POST, "/stats/maintenance?on=1"),
        request(Method::POST, "/stats/maintenance?on=TRUE"),
        request(Method::POST, "/stats/maintenance?on=true&on=false"),
        form("/stats/maintenance", "on=maybe"),
        form("/stats/maintenance", "namespace=http"),
    ];
    for req in bad {
        let what = format!("{}", req.uri());
        let r = send(&app, req).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/json",
            "{what}"
        );
        assert!(json(&r)["error"].is_string(), "{what}");
        assert!(!stats.status().is_maintenance(), "{what}");
    }
}

#[tokio::test]
async fn maintenance_answers_other_methods_with_405() {
    let stats = Stats::new();
    let app = app(&stats);
    for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
        let r = send(&app, request(method.clone(), "/stats/maintenance?on=true")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = r.headers()[header::ALLOW].to_str().expect("ASCII");
        assert!(
            allow.split(',').any(|m| m.trim() == "POST"),
            "{method}: Allow: {allow}"
        );
        assert!(!stats.status().is_maintenance(), "{method}");
    }
}

#[tokio::test]
async fn cross_origin_maintenance_requests_are_refused() {
    let cases: [&[(&'static str, &str)]; 4] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[
            ("origin", "http://evil.example"),
            ("host", "localhost:3000"),
        ],
        &[("origin", "null"), ("host", "localhost:3000")],
    ];
    for headers in cases {
        let stats = Stats::new();
        let app = app(&stats);
        let mut req = form("/stats/maintenance", "on=true");
        for (name, value) in headers {
            req = with_header(req, name, value);
        }
        let r = send(&app, req).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(json(&r)["error"].is_string());
        assert!(!stats.status().is_maintenance(), "{headers:?}");
        assert_eq!(status(&app).await.0, StatusCode::OK, "{headers:?}");
    }

    // Same origin passes.
    let stats = Stats::new();
    let app = app(&stats);
    let req = with_header(
        with_header(
            request(Method::POST, "/stats/maintenance?on=true"),
            "origin",
            "http://localhost:3000",
        ),
        "host",
        "localhost:3000",
    );
    assert_eq!(send(&app, req).await.status(), StatusCode::OK);
    assert!(stats.status().is_maintenance());
}

#[tokio::test]
async fn maintenance_requires_the_bearer_token_when_configured() -> TestResult {
    let stats = Stats::builder().bearer_token("t0ken").build()?;
    let app = app(&stats);

    let r = send(&app, request(Method::POST, "/stats/maintenance?on=true")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()[header::WWW_AUTHENTICATE]
        .to_str()?
        .starts_with("Bearer"));
    assert!(!stats.status().is_maintenance());

    let req = with_header(
        request(Method::POST, "/stats/maintenance?on=true"),
        "authorization",
        "Bearer wrong",
    );
    assert_eq!(send(&app, req).await.status(), StatusCode::UNAUTHORIZED);
    assert!(!stats.status().is_maintenance());

    let req = with_header(
        request(Method::POST, "/stats/maintenance?on=true"),
        "authorization",
        "Bearer t0ken",
    );
    let r = send(&app, req).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(stats.status().is_maintenance());

    // /status itself needs no token.
    assert_eq!(status(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
    Ok(())
}

#[tokio::test]
async fn browser_form_post_redirects_to_the_page() {
    let stats = Stats::new();
    let app = app(&stats);
    let req = with_header(
        form("/stats/maintenance", "on=true"),
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    );
    let r = send(&app, req).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "../stats");
    assert!(stats.status().is_maintenance());
}

#[tokio::test]
async fn read_only_mode_has_no_maintenance_route() -> TestResult {
    let stats = Stats::builder().read_only(true).build()?;
    let app = app(&stats);
    for req in [
        request(Method::POST, "/stats/maintenance?on=true"),
        form("/stats/maintenance", "on=true"),
    ] {
        let r = send(&app, req).await;
        assert!(
            r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::METHOD_NOT_ALLOWED,
            "{}",
            r.status()
        );
    }
    assert!(!stats.status().is_maintenance());
    // /status is still served, and code can still drain the app.
    assert_eq!(status(&app).await.0, StatusCode::OK);
    stats.status().set_maintenance(true);
    assert_eq!(status(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);
    Ok(())
}
