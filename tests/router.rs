//! The `/stats` router as a user sees it, through `oneshot` on an axum app: the JSON
//! document, the page, HEAD, the control routes and their protections, and the builder.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use serde_json::Value;
use tower_stats::registry::Counter;
use tower_stats::{Combine, ConfigError, Stats, UriSet};

mod common;

use common::http::{request, send};
use common::url::resolve;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An app with two routes, the stats router merged and the stats layer over everything.
fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .merge(stats.router())
        .layer(stats.layer())
}

async fn get_req(app: &Router, uri: &str) -> Response<Bytes> {
    send(app, request(Method::GET, uri)).await
}

async fn post_req(app: &Router, uri: &str) -> Response<Bytes> {
    send(app, request(Method::POST, uri)).await
}

fn form(uri: &str, body: &'static str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("valid request")
}

fn json(response: &Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(response.body())
        )
    })
}

/// `GET /stats/data` (or `uri`), checked to be a strict JSON document.
async fn data_at(app: &Router, uri: &str) -> Value {
    let response = get_req(app, uri).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {uri}");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let text = std::str::from_utf8(response.body()).expect("UTF-8 JSON");
    for word in ["NaN", "Infinity"] {
        assert!(!text.contains(word), "{word} in strict JSON: {text}");
    }
    json(&response)
}

async fn data(app: &Router) -> Value {
    data_at(app, "/stats/data").await
}

fn http_enabled(stats: &Stats) -> bool {
    stats.is_enabled("http").expect("http always exists")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .expect("ASCII header")
}

#[test]
fn resolve_matches_browsers() {
    assert_eq!(resolve("/stats/pause", "../stats"), "/stats");
    assert_eq!(resolve("/admin/stats/pause", "../stats"), "/admin/stats");
    assert_eq!(resolve("/a/b", "c"), "/a/c");
}

/// Where the page's POST forms submit to, resolved against the page's own path.
fn form_targets(page: &str, page_path: &str) -> Vec<String> {
    page.split("<form")
        .skip(1)
        .filter(|form| {
            let tag = &form[..form.find('>').unwrap_or(form.len())];
            tag.to_ascii_lowercase().contains("method=\"post\"")
        })
        .filter_map(|form| {
            let start = form.find("action=\"")? + "action=\"".len();
            let end = start + form[start..].find('"')?;
            Some(resolve(page_path, &form[start..end]))
        })
        .collect()
}

fn assert_number(v: &Value, what: &str) {
    assert!(v.is_number(), "{what} should be a number, got {v}");
}

fn assert_count(v: &Value, what: &str) {
    assert!(
        v.is_u64(),
        "{what} should be a non-negative integer, got {v}"
    );
}

// ---------------------------------------------------------------------------------------------
// GET /stats/data
// ---------------------------------------------------------------------------------------------

/// A paused clock makes every time exact: each `GET /hello` takes 250 ms, the others none,
/// and the document is read 10 s after the store was made.
#[tokio::test(start_paused = true)]
async fn data_document_has_spec_keys_and_exact_counts() {
    let stats = Stats::new();
    let app = Router::new()
        .route(
            "/hello",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(250)).await;
                "hello"
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .merge(stats.router())
        .layer(stats.layer());

    let mut written = 0;
    for _ in 0..2 {
        let r = get_req(&app, "/hello").await;
        assert_eq!(r.status(), StatusCode::OK);
        written += r.body().len();
    }
    let r = get_req(&app, "/missing").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    written += r.body().len();
    let r = send(
        &app,
        Request::post("/echo")
            .body(Body::from("0123456789"))
            .expect("request"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body().len(), 10);
    written += r.body().len();
    tokio::time::advance(Duration::from_millis(9_500)).await;

    let response = get_req(&app, "/stats/data").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let raw = std::str::from_utf8(response.body()).expect("UTF-8");
    assert!(!raw.contains("NaN") && !raw.contains("Infinity"), "{raw}");
    let doc = json(&response);

    // Top level.
    assert_eq!(doc["schema_version"], 2);
    assert_number(&doc["generated_at"], "generated_at");
    let server = &doc["server"];
    assert!(
        server["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("tower-stats ")),
        "{server}"
    );
    assert!(server["instance"].is_string(), "{server}");
    assert_number(&server["start_time"], "server.start_time");
    assert_number(&server["uptime_seconds"], "server.uptime_seconds");
    let start = server["start_time"].as_f64().expect("start_time");
    let generated = doc["generated_at"].as_f64().expect("generated_at");
    assert!(start > 1.5e9, "epoch seconds: {doc}");
    // Times are Unix seconds in doubles, which hold them to a fraction of a microsecond:
    // durations and rates computed from them are exact to about 1e-7.
    assert_close(generated, start + 10.0, "generated_at");
    assert_close(
        server["uptime_seconds"].as_f64().expect("uptime"),
        10.0,
        "uptime",
    );

    // The http namespace: every key of SPEC §4.
    let http = &doc["namespaces"]["http"];
    assert_eq!(http["enabled"], true);
    for key in [
        "requests_total",
        "requests_in_flight",
        "requests_aborted",
        "requests_errored",
        "bytes_read_total",
        "bytes_written_total",
        "status_1xx",
        "status_2xx",
        "status_3xx",
        "status_4xx",
        "status_5xx",
        "uri_sets_overflowed",
    ] {
        assert_count(&http[key], key);
    }
    for key in [
        "requests_per_second",
        "processing_seconds_total",
        "bytes_read_per_second",
        "bytes_written_per_second",
        "bytes_read_per_request",
        "bytes_written_per_request",
    ] {
        assert_number(&http[key], key);
    }
    assert!(http["in_flight"].is_object(), "in_flight: {http}");
    assert!(http["slow_requests"].is_array(), "slow_requests: {http}");
    assert!(http["uri_sets"].is_object(), "uri_sets: {http}");

    // Exact numbers for the requests made (the data request is a stats route: not recorded).
    assert_eq!(http["requests_total"], 4);
    assert_eq!(http["requests_in_flight"], 0);
    assert_eq!(http["requests_aborted"], 0);
    assert_eq!(http["requests_errored"], 0);
    assert_eq!(http["status_1xx"], 0);
    assert_eq!(http["status_2xx"], 3);
    assert_eq!(http["status_3xx"], 0);
    assert_eq!(http["status_4xx"], 1);
    assert_eq!(http["status_5xx"], 0);
    assert_eq!(
        http["status_codes"],
        serde_json::json!({"404": 1, "408": 0, "499": 0, "501": 0})
    );
    assert_eq!(http["uri_sets_overflowed"], 0);
    assert_eq!(http["bytes_read_total"], 10);
    assert_eq!(http["bytes_written_total"], written as u64);
    assert_eq!(http["bytes_read_per_request"], 10.0 / 4.0);
    assert_eq!(http["bytes_written_per_request"], written as f64 / 4.0);
    // Two requests of 250 ms; four requests, 10 bytes read and `written` bytes in 10 s.
    assert_eq!(http["processing_seconds_total"], 0.5, "{http}");
    let number = |key: &str| {
        http[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {http}"))
    };
    assert_close(number("requests_per_second"), 0.4, "requests_per_second");
    assert_close(
        number("bytes_read_per_second"),
        1.0,
        "bytes_read_per_second",
    );
    assert_close(
        number("bytes_written_per_second"),
        written as f64 / 10.0,
        "bytes_written_per_second",
    );

    assert_eq!(http["in_flight"], serde_json::json!({}), "{http}");
    assert_eq!(http["slow_requests"], serde_json::json!([]));

    // URI sets.
    let sets = http["uri_sets"].as_object().expect("object");
    let hello = &sets["GET /hello"];
    for key in [
        "count",
        "min_seconds",
        "max_seconds",
        "sum_seconds",
        "avg_seconds",
    ] {
        assert!(!hello[key].is_null(), "{key} in {hello}");
    }
    assert_eq!(hello["count"], 2);
    assert_eq!(hello["min_seconds"], 0.25, "{hello}");
    assert_eq!(hello["max_seconds"], 0.25, "{hello}");
    assert_eq!(hello["sum_seconds"], 0.5, "{hello}");
    assert_eq!(hello["avg_seconds"], 0.25, "{hello}");
    assert_eq!(sets["POST /echo"]["count"], 1);
    assert_eq!(sets["GET <unmatched>"]["count"], 1);
    assert!(
        !sets.keys().any(|k| k.contains("/missing")),
        "the raw path is never a key: {sets:?}"
    );
    assert_eq!(sets.len(), 3, "no URI set for the data request: {sets:?}");

    // With the stats routes recorded, the one live request is the data request itself.
    let stats = Stats::builder()
        .record_stats_routes(true)
        .build()
        .expect("valid options");
    let doc = data(&self::app(&stats)).await;
    let http = &doc["namespaces"]["http"];
    assert_eq!(http["requests_total"], 1, "{http}");
    assert_eq!(http["requests_in_flight"], 1, "{http}");
    let in_flight = http["in_flight"].as_object().expect("object");
    assert_eq!(in_flight.len(), 1, "{http}");
    let (id, live) = in_flight.iter().next().expect("one record");
    assert_eq!(live["id"], id.as_str());
    assert_eq!(live["method"], "GET");
    assert_eq!(live["path"], "/stats/data");
    assert_eq!(live["uri_set"], "GET /stats/data");
    assert_eq!(live["outcome"], "in_flight");
    assert_eq!(live["end_time"], Value::Null);
    assert_eq!(live["status"], Value::Null);
    assert_eq!(live["client"], Value::Null);
}

#[tokio::test]
async fn per_request_rates_are_zero_without_requests() {
    // Without the layer nothing is ever recorded: no division by zero may leak out.
    let stats = Stats::new();
    let bare: Router = stats.router();
    let doc = data(&bare).await;
    let http = &doc["namespaces"]["http"];
    assert_eq!(http["requests_total"], 0);
    for key in [
        "bytes_read_per_request",
        "bytes_written_per_request",
        "requests_per_second",
        "bytes_read_per_second",
        "bytes_written_per_second",
        "processing_seconds_total",
    ] {
        assert_number(&http[key], key);
        assert_eq!(http[key].as_f64(), Some(0.0), "{key}: {http}");
    }
    assert_eq!(http["uri_sets"], serde_json::json!({}));
    assert_eq!(http["in_flight"], serde_json::json!({}));

    // With the layer and the stats routes recorded, the first data request is the only one:
    // still no bytes per request.
    let stats = Stats::builder()
        .record_stats_routes(true)
        .build()
        .expect("valid options");
    let doc = data(&app(&stats)).await;
    let http = &doc["namespaces"]["http"];
    assert_eq!(http["requests_total"], 1);
    assert_eq!(http["bytes_read_per_request"].as_f64(), Some(0.0));
    assert_eq!(http["bytes_written_per_request"].as_f64(), Some(0.0));
}

#[derive(Clone)]
struct Hits(Counter);

#[tokio::test]
async fn application_namespace_is_rendered_and_updated_by_handlers() -> TestResult {
    let stats = Stats::new();
    let ns = stats.namespace("app")?;
    let hits = ns.counter("hits", Combine::Sum)?;
    ns.gauge("ratio", Combine::Max)?.set(f64::NAN);
    ns.gauge("load", Combine::Max)?.set(0.5);
    ns.text("mode")?.set("blue");
    ns.computed("hits_times_ten", Combine::Instance, |view| {
        (view.number("hits").unwrap_or(-1.0) * 10.0).into()
    })?;
    let recent = ns.list("recent", 2)?;
    recent.push(&serde_json::json!({"n": 1}))?;
    recent.push(&serde_json::json!({"n": 2}))?;
    recent.push(&serde_json::json!({"n": 3}))?;

    let app = Router::new()
        .route(
            "/hit",
            get(|State(hits): State<Hits>| async move {
                hits.0.incr();
                "hit"
            }),
        )
        .with_state(Hits(hits))
        .merge(stats.router())
        .layer(stats.layer());

    for _ in 0..3 {
        assert_eq!(get_req(&app, "/hit").await.status(), StatusCode::OK);
    }
    let doc = data(&app).await;
    let names: Vec<&String> = doc["namespaces"]
        .as_object()
        .expect("namespaces")
        .keys()
        .collect();
    assert_eq!(names, ["app", "http"]);
    let app_ns = &doc["namespaces"]["app"];
    assert_eq!(app_ns["enabled"], true);
    assert_eq!(app_ns["hits"], 3);
    assert_eq!(app_ns["ratio"], Value::Null, "NaN gauge is null");
    assert_eq!(app_ns["load"], 0.5);
    assert_eq!(app_ns["mode"], "blue");
    assert_eq!(app_ns["hits_times_ten"], 30.0);
    assert_eq!(app_ns["recent"], serde_json::json!([{"n": 2}, {"n": 3}]));
    assert_eq!(
        doc["namespaces"]["http"]["uri_sets"]["GET /hit"]["count"],
        3
    );

    // The page shows the namespace too.
    let page = get_req(&app, "/stats").await;
    let page = String::from_utf8(page.body().to_vec())?;
    assert!(page.contains("<h2>app</h2>"), "{page}");
    assert!(page.contains("hits_times_ten"), "{page}");
    assert!(page.contains("blue"), "{page}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HEAD
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn head_on_get_routes_answers_without_body() {
    let stats = Stats::new();
    let app = app(&stats);
    for (uri, content_type) in [
        ("/stats/data", "application/json"),
        ("/stats", "text/html; charset=utf-8"),
        ("/stats/style.css", "text/css; charset=utf-8"),
    ] {
        let r = send(&app, request(Method::HEAD, uri)).await;
        assert_eq!(r.status(), StatusCode::OK, "HEAD {uri}");
        assert!(r.body().is_empty(), "HEAD {uri} has a body");
        assert_eq!(r.headers()[header::CONTENT_TYPE], content_type);
    }
}

// ---------------------------------------------------------------------------------------------
// Control routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pause_stops_recording_and_resume_restarts_it() {
    let stats = Stats::new();
    let app = app(&stats);
    get_req(&app, "/hello").await;

    let r = post_req(&app, "/stats/pause?namespace=http").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let body = json(&r);
    assert_eq!(body["namespaces"]["http"]["enabled"], false, "{body}");
    assert!(!http_enabled(&stats));

    // While paused: nothing new is recorded, reports still work.
    get_req(&app, "/hello").await;
    get_req(&app, "/hello").await;
    let doc = data(&app).await;
    let http = &doc["namespaces"]["http"];
    assert_eq!(http["enabled"], false);
    assert_eq!(
        http["requests_total"], 1,
        "hello only (control routes are not recorded): {http}"
    );
    assert_eq!(http["uri_sets"]["GET /hello"]["count"], 1);
    assert_eq!(
        http["requests_in_flight"], 0,
        "the data request is not recorded"
    );

    // Resume through a form body.
    let r = send(&app, form("/stats/resume", "namespace=http")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(&r)["namespaces"]["http"]["enabled"], true);
    assert!(http_enabled(&stats));

    get_req(&app, "/hello").await;
    let doc = data(&app).await;
    let http = &doc["namespaces"]["http"];
    assert_eq!(http["enabled"], true);
    // hello, hello: the stats routes (pause, resume, data) are not recorded.
    assert_eq!(http["requests_total"], 2, "{http}");
    assert_eq!(http["uri_sets"]["GET /hello"]["count"], 2);
    assert_eq!(
        http["uri_sets"].as_object().expect("uri_sets").len(),
        1,
        "{http}"
    );
}

#[tokio::test]
async fn pause_through_form_body_and_without_namespace() -> TestResult {
    let stats = Stats::new();
    let app_ns = stats.namespace("app")?;
    let counter = app_ns.counter("c", Combine::Sum)?;
    let app = app(&stats);

    // Form body naming http: only http pauses.
    let r = send(&app, form("/stats/pause", "namespace=http")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(&r);
    assert_eq!(body["namespaces"]["http"]["enabled"], false, "{body}");
    assert!(!http_enabled(&stats));
    assert!(app_ns.is_enabled());

    // No namespace: every namespace.
    let r = post_req(&app, "/stats/resume").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(http_enabled(&stats));
    let r = post_req(&app, "/stats/pause").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(&r);
    assert_eq!(body["namespaces"]["http"]["enabled"], false, "{body}");
    assert_eq!(body["namespaces"]["app"]["enabled"], false, "{body}");
    assert!(!http_enabled(&stats));
    assert!(!app_ns.is_enabled());
    counter.incr();
    assert_eq!(counter.get(), 0, "paused namespaces ignore updates");

    // Query string naming the app namespace.
    let r = post_req(&app, "/stats/resume?namespace=app").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(app_ns.is_enabled());
    assert!(!http_enabled(&stats));
    Ok(())
}

#[tokio::test]
async fn reset_zeroes_the_statistics() {
    let stats = Stats::new();
    let app = app(&stats);
    get_req(&app, "/hello").await;
    get_req(&app, "/missing").await;
    send(
        &app,
        Request::post("/echo")
            .body(Body::from("abc"))
            .expect("request"),
    )
    .await;
    assert_eq!(stats.snapshot().http.requests_total, 3);

    let r = post_req(&app, "/stats/reset?namespace=http").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(&r)["action"], "reset");

    let doc = data(&app).await;
    let http = &doc["namespaces"]["http"];
    assert_eq!(
        http["requests_total"], 0,
        "nothing since the reset (the data request is not recorded): {http}"
    );
    assert_eq!(http["bytes_read_total"], 0);
    assert_eq!(http["status_4xx"], 0);
    assert_eq!(http["status_codes"]["404"], 0);
    assert_eq!(http["slow_requests"], serde_json::json!([]));
    let sets = http["uri_sets"].as_object().expect("object");
    assert!(!sets.contains_key("GET /hello"), "{sets:?}");
    assert!(!sets.contains_key("GET <unmatched>"), "{sets:?}");
    assert!(!sets.contains_key("POST /echo"), "{sets:?}");
    assert!(http_enabled(&stats), "reset does not pause");
}

#[tokio::test]
async fn unknown_namespace_is_a_json_404() {
    let stats = Stats::new();
    let app = app(&stats);
    for action in ["pause", "resume", "reset"] {
        let r = post_req(&app, &format!("/stats/{action}?namespace=nope")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{action}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let body = json(&r);
        assert!(body["error"].is_string(), "{body}");
    }
    let r = send(&app, form("/stats/pause", "namespace=nope")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(json(&r)["error"].is_string());
    assert!(http_enabled(&stats));
}

#[tokio::test]
async fn control_routes_answer_other_methods_with_405() {
    let stats = Stats::new();
    let app = app(&stats);
    for action in ["pause", "resume", "reset"] {
        for method in [
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            let uri = format!("/stats/{action}");
            let r = send(&app, request(method.clone(), &uri)).await;
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            let allow = header_str(r.headers(), "allow");
            assert!(
                allow.split(',').any(|m| m.trim() == "POST"),
                "{method} {uri}: Allow: {allow}"
            );
            assert!(http_enabled(&stats), "{method} {uri} paused recording");
        }
    }
}

#[tokio::test]
async fn browser_form_post_redirects_to_the_page() {
    let stats = Stats::new();
    let app = app(&stats);
    let mut req = form("/stats/pause", "namespace=http");
    req.headers_mut().insert(
        header::ACCEPT,
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            .parse()
            .expect("header"),
    );
    let r = send(&app, req).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = header_str(r.headers(), "location");
    assert_eq!(location, "../stats");
    assert_eq!(resolve("/stats/pause", location), "/stats");
    assert!(!http_enabled(&stats));

    // Nested under /admin, the same relative Location leads back to /admin/stats.
    let stats = Stats::new();
    let nested: Router = Router::new()
        .nest("/admin", stats.router())
        .layer(stats.layer());
    let mut req = form("/admin/stats/resume", "namespace=http");
    req.headers_mut()
        .insert(header::ACCEPT, "text/html".parse().expect("header"));
    stats.pause(None).expect("pause");
    let r = send(&nested, req).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let target = resolve("/admin/stats/resume", header_str(r.headers(), "location"));
    assert_eq!(target, "/admin/stats");
    assert!(http_enabled(&stats));
    let page = get_req(&nested, &target).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
}

#[tokio::test]
async fn cross_origin_control_requests_are_refused() {
    let cases: [&[(&str, &str)]; 7] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[
            ("origin", "http://evil.example"),
            ("host", "localhost:3000"),
        ],
        &[("origin", "null"), ("host", "localhost:3000")],
        // Same host, other port: another origin.
        &[
            ("origin", "http://localhost:3001"),
            ("host", "localhost:3000"),
        ],
        // An Origin with no Host to compare it with.
        &[("origin", "http://localhost:3000")],
        // A matching Origin does not excuse a cross-site fetch.
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://localhost:3000"),
            ("host", "localhost:3000"),
        ],
    ];
    for headers in cases {
        for action in ["pause", "reset"] {
            let stats = Stats::new();
            let app = app(&stats);
            get_req(&app, "/hello").await;
            let mut req = form(&format!("/stats/{action}"), "namespace=http");
            for (name, value) in headers {
                req.headers_mut()
                    .insert(*name, value.parse().expect("header"));
            }
            let r = send(&app, req).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{action} {headers:?}");
            assert!(http_enabled(&stats), "{action} {headers:?} paused");
            let http = stats.snapshot().http;
            assert_eq!(
                http.uri_sets["GET /hello"].count, 1,
                "{action} {headers:?} reset"
            );
        }
    }
}

#[tokio::test]
async fn same_origin_and_header_less_control_requests_are_allowed() {
    let cases: [&[(&str, &str)]; 5] = [
        &[("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "none")],
        &[
            ("origin", "http://localhost:3000"),
            ("host", "localhost:3000"),
        ],
        &[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://localhost:3000"),
            ("host", "localhost:3000"),
        ],
        &[], // curl
    ];
    for headers in cases {
        let stats = Stats::new();
        let app = app(&stats);
        let mut req = request(Method::POST, "/stats/pause?namespace=http");
        for (name, value) in headers {
            req.headers_mut()
                .insert(*name, value.parse().expect("header"));
        }
        let r = send(&app, req).await;
        assert_eq!(r.status(), StatusCode::OK, "{headers:?}");
        assert!(!http_enabled(&stats), "{headers:?} did not pause");
    }
}

#[tokio::test]
async fn malformed_control_parameters_are_a_400() {
    let stats = Stats::new();
    let app = app(&stats);
    let r = send(&app, form("/stats/pause", "namespace=http&namespace=app")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(json(&r)["error"].is_string());
    assert!(http_enabled(&stats));

    let r = post_req(&app, "/stats/pause?namespace=http&namespace=x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(http_enabled(&stats));
}

// ---------------------------------------------------------------------------------------------
// Bearer token and read-only mode
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bearer_token_protects_control_routes_only() -> TestResult {
    let stats = Stats::builder().bearer_token("t0ken").build()?;
    let app = app(&stats);

    let r = post_req(&app, "/stats/pause").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        header_str(r.headers(), "www-authenticate").starts_with("Bearer"),
        "{:?}",
        r.headers()
    );
    assert!(http_enabled(&stats));

    for auth in ["Bearer wrong", "Bearer t0ken2", "Basic dDBrZW4=", "t0ken"] {
        let mut req = request(Method::POST, "/stats/pause");
        req.headers_mut()
            .insert(header::AUTHORIZATION, auth.parse()?);
        let r = send(&app, req).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth}");
        assert!(http_enabled(&stats), "{auth}");
    }

    get_req(&app, "/hello").await;
    let mut req = request(Method::POST, "/stats/reset");
    req.headers_mut()
        .insert(header::AUTHORIZATION, "Bearer wrong".parse()?);
    assert_eq!(send(&app, req).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stats.snapshot().http.uri_sets["GET /hello"].count, 1);

    let mut req = request(Method::POST, "/stats/pause");
    req.headers_mut()
        .insert(header::AUTHORIZATION, "Bearer t0ken".parse()?);
    let r = send(&app, req).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!http_enabled(&stats));

    // Reading needs no token.
    assert_eq!(get_req(&app, "/stats/data").await.status(), StatusCode::OK);
    assert_eq!(get_req(&app, "/stats").await.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() -> TestResult {
    // RFC 9110 §11.1: the authentication scheme is case-insensitive.
    for auth in [
        "Bearer t0ken",
        "bearer t0ken",
        "BEARER t0ken",
        "bEaReR t0ken",
    ] {
        let stats = Stats::builder().bearer_token("t0ken").build()?;
        let app = app(&stats);
        let mut req = request(Method::POST, "/stats/pause");
        req.headers_mut()
            .insert(header::AUTHORIZATION, auth.parse()?);
        let r = send(&app, req).await;
        assert_eq!(r.status(), StatusCode::OK, "{auth}");
        assert!(!http_enabled(&stats), "{auth}");
    }
    // The token itself is compared exactly.
    let stats = Stats::builder().bearer_token("t0ken").build()?;
    let app = app(&stats);
    for auth in ["Bearer T0KEN", "Bearert0ken", "Bearer: t0ken"] {
        let mut req = request(Method::POST, "/stats/pause");
        req.headers_mut()
            .insert(header::AUTHORIZATION, auth.parse()?);
        assert_eq!(
            send(&app, req).await.status(),
            StatusCode::UNAUTHORIZED,
            "{auth}"
        );
        assert!(http_enabled(&stats), "{auth}");
    }
    Ok(())
}

#[tokio::test]
async fn read_only_mode_has_no_control_routes() -> TestResult {
    let stats = Stats::builder().read_only(true).build()?;
    let app = app(&stats);
    for action in ["pause", "resume", "reset"] {
        let r = post_req(&app, &format!("/stats/{action}")).await;
        assert!(
            r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::METHOD_NOT_ALLOWED,
            "{action}: {}",
            r.status()
        );
    }
    assert!(http_enabled(&stats));

    get_req(&app, "/hello").await;
    let doc = data(&app).await;
    assert_eq!(doc["namespaces"]["http"]["enabled"], true);
    assert_eq!(
        doc["namespaces"]["http"]["uri_sets"]["GET /hello"]["count"],
        1
    );

    let page = get_req(&app, "/stats").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = String::from_utf8(page.body().to_vec())?;
    assert!(page.contains("<h2>http</h2>"), "{page}");
    assert!(!page.to_ascii_lowercase().contains("<form"), "{page}");
    Ok(())
}

#[tokio::test]
async fn page_has_control_forms_unless_read_only() -> TestResult {
    let stats = Stats::new();
    let page = get_req(&app(&stats), "/stats").await;
    let page = String::from_utf8(page.body().to_vec())?;
    let targets = form_targets(&page, "/stats");
    for action in ["pause", "resume", "reset"] {
        let target = format!("/stats/{action}");
        assert!(
            targets.contains(&target),
            "no form posts to {target}: {page}"
        );
    }

    // Nested, the same page posts to the nested routes.
    let stats = Stats::new();
    let nested: Router = Router::new()
        .nest("/admin", stats.router())
        .layer(stats.layer());
    let page = get_req(&nested, "/admin/stats").await;
    let page = String::from_utf8(page.body().to_vec())?;
    let targets = form_targets(&page, "/admin/stats");
    assert!(
        targets.contains(&"/admin/stats/pause".to_owned()),
        "{targets:?}"
    );
    // Its stylesheet link resolves to the nested stylesheet route too.
    let link = page
        .split("<link")
        .skip(1)
        .map(|tag| &tag[..tag.find('>').unwrap_or(tag.len())])
        .find(|tag| tag.contains("stylesheet"))
        .expect("a stylesheet link");
    let start = link.find("href=\"").expect("href") + "href=\"".len();
    let end = start + link[start..].find('"').expect("closing quote");
    let css = resolve("/admin/stats", &link[start..end]);
    let r = get_req(&nested, &css).await;
    assert_eq!(r.status(), StatusCode::OK, "GET {css}");
    assert!(header_str(r.headers(), "content-type").starts_with("text/css"));
    for target in targets {
        let r = send(&nested, form(&target, "namespace=http")).await;
        assert_eq!(r.status(), StatusCode::OK, "POST {target}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Builder, prefix, nesting, isolation
// ---------------------------------------------------------------------------------------------

#[test]
fn builder_rejects_invalid_prefixes_tokens_origins_and_hosts() {
    for prefix in ["stats", "/stats/", "/", "/a{b}", "", "/a b", "/a*", "/a?b"] {
        let err = Stats::builder().prefix(prefix).build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidPrefix(prefix.to_owned()),
            "{prefix:?}"
        );
    }
    for token in ["t 0ken", "", "tab\there", "é"] {
        let err = Stats::builder().bearer_token(token).build().unwrap_err();
        assert_eq!(err, ConfigError::InvalidBearerToken, "{token:?}");
    }
    assert!(Stats::builder().prefix("/a/b-c").build().is_ok());
    assert!(Stats::builder().bearer_token("t0ken").build().is_ok());

    for origin in [
        "stats.example.com",
        "ftp://stats.example.com",
        "https://stats.example.com/",
        "https://stats.example.com/stats",
        "https://Stats.example.com",
        "https://stats.example.com:443",
        "http://stats.example.com:80",
    ] {
        let err = Stats::builder().trusted_origin(origin).build().unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidTrustedOrigin(_)),
            "{origin}: {err:?}"
        );
    }
    for origin in ["https://stats.example.com", "http://10.0.0.5:8080"] {
        assert!(
            Stats::builder().trusted_origin(origin).build().is_ok(),
            "{origin}"
        );
    }

    for host in [
        "",
        ".",
        "a..b",
        "stats.example.com:9000",
        "http://a",
        "a/b",
        "*.example.com",
    ] {
        let err = Stats::builder().allowed_host(host).build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidAllowedHost(host.to_owned()),
            "{host}"
        );
    }
    for host in [
        "stats.example.com",
        "Stats.Internal.",
        "my_host",
        "10.0.0.5",
    ] {
        assert!(
            Stats::builder().allowed_host(host).build().is_ok(),
            "{host}"
        );
    }
}

#[tokio::test]
async fn custom_prefix_serves_its_routes_there() -> TestResult {
    let stats = Stats::builder().prefix("/internal/metrics-ui").build()?;
    assert_eq!(stats.prefix(), "/internal/metrics-ui");
    let app = app(&stats);

    let doc = data_at(&app, "/internal/metrics-ui/data").await;
    assert_eq!(doc["schema_version"], 2);
    let page = get_req(&app, "/internal/metrics-ui").await;
    assert_eq!(page.status(), StatusCode::OK);
    let text = String::from_utf8(page.body().to_vec())?;
    let targets = form_targets(&text, "/internal/metrics-ui");
    assert!(
        targets.contains(&"/internal/metrics-ui/pause".to_owned()),
        "relative form action: {targets:?}"
    );

    assert_eq!(
        get_req(&app, "/stats").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_req(&app, "/stats/data").await.status(),
        StatusCode::NOT_FOUND
    );

    let r = post_req(&app, "/internal/metrics-ui/pause").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!http_enabled(&stats));

    let mut req = form("/internal/metrics-ui/resume", "namespace=http");
    req.headers_mut()
        .insert(header::ACCEPT, "text/html".parse()?);
    let r = send(&app, req).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let target = resolve(
        "/internal/metrics-ui/resume",
        header_str(r.headers(), "location"),
    );
    assert_eq!(target, "/internal/metrics-ui");
    assert!(http_enabled(&stats));
    Ok(())
}

#[tokio::test]
async fn non_ascii_prefix_is_rejected_or_served() {
    // A request line is ASCII: a browser sends `/статистика` percent-encoded.
    let encoded = "/%D1%81%D1%82%D0%B0%D1%82%D0%B8%D1%81%D1%82%D0%B8%D0%BA%D0%B0";
    match Stats::builder().prefix("/статистика").build() {
        Err(err) => assert!(matches!(err, ConfigError::InvalidPrefix(_)), "{err:?}"),
        Ok(stats) => {
            let app = app(&stats);
            let doc = data_at(&app, &format!("{encoded}/data")).await;
            assert_eq!(doc["schema_version"], 1);
            let r = post_req(&app, &format!("{encoded}/pause")).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
}

#[tokio::test]
async fn router_nests_under_another_prefix() {
    let stats = Stats::new();
    let app: Router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .nest("/admin", stats.router())
        .layer(stats.layer());
    get_req(&app, "/hello").await;
    let doc = data_at(&app, "/admin/stats/data").await;
    let sets = &doc["namespaces"]["http"]["uri_sets"];
    assert_eq!(sets["GET /hello"]["count"], 1);
    assert_eq!(get_req(&app, "/admin/stats").await.status(), StatusCode::OK);
    assert_eq!(
        get_req(&app, "/stats/data").await.status(),
        StatusCode::NOT_FOUND
    );
    let r = post_req(&app, "/admin/stats/pause").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!http_enabled(&stats));
}

/// Requests to a nested stats router are learned as such when first served, and taken back
/// out of the statistics then: they leave no trace, bytes included, whether pages (with
/// response bodies) or control posts (with request bodies), before and after a reset.
#[tokio::test]
async fn a_nested_stats_router_leaves_no_trace_in_the_counters() {
    let stats = Stats::new();
    let app: Router = Router::new()
        .route("/hello", get(|| async { "Hello, world!\n" }))
        .nest("/admin", stats.router())
        .layer(stats.layer());
    let check = |requests: u64, what: &str| {
        let http = stats.snapshot().http;
        let counts = (
            http.requests_total,
            http.status_2xx,
            http.bytes_written_total,
            http.bytes_read_total,
            http.requests_in_flight,
        );
        assert_eq!(
            counts,
            (requests, requests, 14 * requests, 0, 0),
            "{what}: (requests, 2xx, bytes written, bytes read, in flight)"
        );
        let sets: Vec<&String> = http.uri_sets.keys().collect();
        let expected: &[&str] = if requests == 0 { &[] } else { &["GET /hello"] };
        assert_eq!(sets, expected, "{what}");
    };

    assert_eq!(get_req(&app, "/hello").await.body().len(), 14);
    check(1, "GET /hello");
    let id = stats.recent_requests()[0].id.clone();
    let detail = format!("/admin/stats/requests/{id}");
    let pages = [
        "/admin/stats",
        "/admin/stats/style.css",
        "/admin/stats/data",
        "/admin/stats/metrics",
        "/admin/stats/requests",
        &detail,
        "/admin/stats/events",
    ];
    for round in ["first", "second"] {
        for page in pages {
            let r = get_req(&app, page).await;
            assert_eq!(r.status(), StatusCode::OK, "{page}");
            assert!(!r.body().is_empty(), "{page}");
            check(1, &format!("{round} GET {page}"));
        }
    }

    for round in ["first", "second"] {
        let r = send(&app, form("/admin/stats/reset", "namespace=http")).await;
        assert!(r.status().is_success(), "{round} reset: {}", r.status());
        check(0, &format!("{round} reset"));
        get_req(&app, "/hello").await;
        check(1, &format!("GET /hello after the {round} reset"));
        for action in ["pause", "resume"] {
            let r = send(
                &app,
                form(&format!("/admin/stats/{action}"), "namespace=http"),
            )
            .await;
            assert!(r.status().is_success(), "{round} {action}: {}", r.status());
            check(1, &format!("{action} after the {round} reset"));
        }
    }
}

#[tokio::test]
async fn two_stores_do_not_interfere() {
    let a = Stats::new();
    let b = Stats::new();
    let app_a = app(&a);
    let app_b = app(&b);
    for _ in 0..3 {
        get_req(&app_a, "/hello").await;
    }
    get_req(&app_b, "/missing").await;
    post_req(&app_a, "/stats/pause").await;

    assert!(!http_enabled(&a));
    assert!(http_enabled(&b));
    let doc_b = data(&app_b).await;
    let http_b = &doc_b["namespaces"]["http"];
    assert_eq!(http_b["requests_total"], 1, "{http_b}");
    assert!(http_b["uri_sets"].get("GET /hello").is_none(), "{http_b}");
    assert_eq!(http_b["status_codes"]["404"], 1);

    let snap_a = a.snapshot().http;
    assert_eq!(snap_a.requests_total, 3);
    assert_eq!(snap_a.uri_sets["GET /hello"].count, 3);
    assert_eq!(snap_a.status_codes["404"], 0);
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

const SCRIPT: &str = "<script>alert(1)</script>";
const ATTRIBUTE: &str = "\"onmouseover=alert(1) x=\"";
const TEXT: &str = "</table><img src=x onerror=alert(1)>";

#[tokio::test]
async fn page_is_locked_down_and_escapes_everything() -> TestResult {
    let stats = Stats::builder()
        .instance(SCRIPT)
        // Every finished request is "slow", so recorded paths and labels appear on the page.
        .slow_threshold(Duration::from_nanos(1))
        .uri_set_with(|parts| {
            parts
                .uri
                .path()
                .starts_with("/hook")
                .then_some(Cow::Borrowed(ATTRIBUTE))
        })
        .build()?;
    let ns = stats.namespace("app")?;
    ns.text("note")?.set(TEXT);
    ns.gauge("infinite", Combine::Max)?.set(f64::INFINITY);
    stats
        .namespace("x\"><img src=x onerror=alert(2)>")?
        .counter(SCRIPT, Combine::Sum)?
        .incr();
    ns.list("events", 10)?
        .push(&serde_json::json!({ "<b>field</b>": SCRIPT }))?;
    let app = app(&stats);

    let encoded = "/%3Cscript%3Ealert(1)%3C/script%3E";
    assert_eq!(get_req(&app, encoded).await.status(), StatusCode::NOT_FOUND);
    let mut req = request(Method::GET, "/hello");
    req.extensions_mut().insert(UriSet::new(SCRIPT));
    assert_eq!(send(&app, req).await.status(), StatusCode::OK);
    get_req(&app, "/hook").await;
    // `"` is legal in a request path: the raw path is recorded as is.
    let quoted = "/x\"onmouseover=alert(1)//\"";
    assert_eq!(get_req(&app, quoted).await.status(), StatusCode::NOT_FOUND);

    // The labels really are recorded raw.
    let snapshot = stats.snapshot();
    assert!(snapshot
        .http
        .uri_sets
        .contains_key(&format!("GET {SCRIPT}")));
    assert!(snapshot
        .http
        .uri_sets
        .contains_key(&format!("GET {ATTRIBUTE}")));
    assert!(snapshot
        .http
        .slow_requests
        .iter()
        .any(|r| r.path == encoded));
    assert!(snapshot.http.slow_requests.iter().any(|r| r.path == quoted));

    let r = get_req(&app, "/stats").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let csp = header_str(r.headers(), "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");

    let page = String::from_utf8(r.body().to_vec())?;
    let lower = page.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{page}");
    assert!(!lower.contains("<img"), "{page}");
    assert!(!lower.contains("<b>"), "{page}");
    assert!(!page.contains("\"onmouseover"), "{page}");
    assert!(!page.contains(SCRIPT) && !page.contains(ATTRIBUTE) && !page.contains(TEXT));

    for escaped in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&quot;onmouseover=alert(1) x=&quot;",
        "&lt;/table&gt;&lt;img src=x onerror=alert(1)&gt;",
        "&lt;b&gt;field&lt;/b&gt;",
        "/x&quot;onmouseover=alert(1)//&quot;",
        encoded,
    ] {
        assert!(page.contains(escaped), "missing {escaped}: {page}");
    }

    // The JSON carries the same strings, unchanged, as strict JSON.
    let doc = data(&app).await;
    assert_eq!(doc["server"]["instance"], SCRIPT);
    assert_eq!(doc["namespaces"]["app"]["note"], TEXT);
    assert_eq!(doc["namespaces"]["app"]["infinite"], Value::Null);
    assert_eq!(
        doc["namespaces"]["http"]["uri_sets"][format!("GET {ATTRIBUTE}")]["count"],
        1
    );
    Ok(())
}

#[tokio::test]
async fn page_does_not_reflect_its_own_url() -> TestResult {
    let stats = Stats::new();
    let app = app(&stats);
    for query in [
        "%3Cscript%3E=%22x%22",
        "sort=%3Cscript%3Ealert(1)%3C/script%3E",
        "refresh=%22%3E%3Cscript%3E",
        "sort=max&refresh=5%22onload=%22x",
    ] {
        let r = get_req(&app, &format!("/stats?{query}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        let page = String::from_utf8(r.body().to_vec())?;
        let lower = page.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{query}: {page}");
        assert!(!lower.contains("%3cscript"), "{query}: {page}");
        assert!(!lower.contains("%22"), "{query}: {page}");
        assert!(!lower.contains("onload"), "{query}: {page}");
    }
    Ok(())
}

/// `actual` is `expected` to within a microsecond's worth of a Unix time in a double.
fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0),
        "{what}: {actual} is not {expected}"
    );
}
