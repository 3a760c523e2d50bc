//! Request timelines, recent requests, sampling, filters and the event stream, as a user sees
//! them: requests go through `oneshot` on an axum app with the stats layer over everything and
//! the stats router merged; timing comes from tokio's paused clock, so durations are exact.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio::time::{advance, sleep, Instant};
use tower::ServiceExt;
use tower_stats::{
    ConfigError, CustomEvent, EventError, Filter, RequestStats, Stats, StatsBuilder, OVERFLOW,
};

mod common;

use common::http::{request, send};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const EVIL: &str = "<script>alert(1)</script>\nnext";

fn build(builder: StatsBuilder) -> Stats {
    builder.build().expect("valid options")
}

/// `routes` with the stats router merged and the stats layer over everything.
fn with_stats(stats: &Stats, routes: Router) -> Router {
    routes.merge(stats.router()).layer(stats.layer())
}

async fn get_req(app: &Router, uri: &str) -> Response<Bytes> {
    send(app, request(Method::GET, uri)).await
}

fn text(response: &Response<Bytes>) -> String {
    String::from_utf8(response.body().to_vec()).expect("UTF-8 body")
}

fn json(response: &Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(response.body())
        )
    })
}

/// `GET uri`, expected `200` with a JSON body.
async fn get_json(app: &Router, uri: &str) -> Value {
    let response = get_req(app, uri).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "GET {uri}: {}",
        text(&response)
    );
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "GET {uri}"
    );
    json(&response)
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} is not {expected}"
    );
}

fn assert_close_to_the_microsecond(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: {actual} is not {expected}"
    );
}

/// The request id a handler returned as its body.
fn id_of(response: &Response<Bytes>) -> u64 {
    assert_eq!(response.status(), StatusCode::OK, "{}", text(response));
    text(response).parse().expect("the handler returns its id")
}

/// A handler that answers with its request's id.
async fn answer_id(stats: RequestStats) -> String {
    stats
        .id()
        .map_or_else(|| "none".to_owned(), |id| id.to_string())
}

fn recent_paths(stats: &Stats) -> Vec<String> {
    stats
        .recent_requests()
        .into_iter()
        .map(|r| r.path)
        .collect()
}

fn event_messages(stats: &Stats) -> Vec<String> {
    stats.events().into_iter().map(|e| e.message).collect()
}

/// Asserts that no string (or key) inside `value` holds a control character.
fn assert_no_control_characters(value: &Value, what: &str) {
    match value {
        Value::String(s) => assert!(!s.chars().any(char::is_control), "{what}: {s:?}"),
        Value::Array(items) => items
            .iter()
            .for_each(|v| assert_no_control_characters(v, what)),
        Value::Object(map) => {
            for (k, v) in map {
                assert!(!k.chars().any(char::is_control), "{what}: key {k:?}");
                assert_no_control_characters(v, what);
            }
        }
        _ => {}
    }
}

/// Lets a handler report itself and then wait until the test releases it.
#[derive(Clone)]
struct Gate {
    started: mpsc::UnboundedSender<(bool, Option<u64>)>,
    release: Arc<Notify>,
}

impl Gate {
    fn new() -> (Self, mpsc::UnboundedReceiver<(bool, Option<u64>)>) {
        let (started, rx) = mpsc::unbounded_channel();
        (
            Self {
                started,
                release: Arc::new(Notify::new()),
            },
            rx,
        )
    }
}

/// Reports whether the request is recorded and its id, then waits for the gate.
async fn gated(State(gate): State<Gate>, stats: RequestStats) -> &'static str {
    let _ = gate.started.send((stats.is_recording(), stats.id()));
    gate.release.notified().await;
    "released"
}

// ---------------------------------------------------------------------------------------------
// Timelines
// ---------------------------------------------------------------------------------------------

async fn timeline_handler(stats: RequestStats) -> String {
    let start = Instant::now();
    sleep(Duration::from_millis(10)).await;
    stats.event("instant").expect("an instant event is valid");
    let timer = stats.start_event("db.query");
    sleep(Duration::from_millis(20)).await;
    timer.finish();
    stats
        .record_event(
            CustomEvent::new("explicit")
                .start(start)
                .end(start + Duration::from_millis(5)),
        )
        .expect("start before end is valid");
    stats.id().expect("recorded").to_string()
}

#[tokio::test(start_paused = true)]
async fn timeline_events_are_in_order_with_exact_offsets_and_durations() {
    let stats = Stats::new();
    let app = with_stats(&stats, Router::new().route("/work", get(timeline_handler)));
    let id = id_of(&get_req(&app, "/work").await);

    let expected = [
        ("instant", 0.010, 0.0),
        ("db.query", 0.010, 0.020),
        ("explicit", 0.0, 0.005),
    ];
    let recent = stats.recent_requests();
    assert_eq!(recent.len(), 1);
    let record = &recent[0];
    assert_eq!(record.id, id.to_string());
    assert_close(record.processing_seconds, 0.030, "processing_seconds");
    let labels: Vec<&str> = record.events.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["instant", "db.query", "explicit"]);
    for (event, (label, offset, duration)) in record.events.iter().zip(expected) {
        assert_close(event.offset_seconds, offset, label);
        assert_close(event.duration_seconds, duration, label);
        assert_eq!(event.data, None, "{label}");
    }
    assert_eq!(record.events_dropped, 0);

    // The detail route shows the same timeline.
    let detail = get_json(&app, &format!("/stats/requests/{id}")).await;
    assert_eq!(detail["id"], id.to_string());
    assert_eq!(detail["path"], "/work");
    assert_eq!(detail["uri_set"], "GET /work");
    assert_eq!(detail["status"], 200);
    assert_eq!(detail["outcome"], "completed");
    assert_eq!(detail["events_dropped"], 0);
    let events = detail["events"].as_array().expect("events array");
    assert_eq!(events.len(), 3, "{detail}");
    for (event, (label, offset, duration)) in events.iter().zip(expected) {
        assert_eq!(event["label"], label, "{detail}");
        assert_eq!(event["data"], Value::Null, "{detail}");
        assert_close(
            event["offset_seconds"].as_f64().expect("offset"),
            offset,
            label,
        );
        assert_close(
            event["duration_seconds"].as_f64().expect("duration"),
            duration,
            label,
        );
    }
}

#[tokio::test(start_paused = true)]
async fn event_data_is_compact_json_and_capped() {
    let stats = Stats::new();
    let app = with_stats(
        &stats,
        Router::new().route(
            "/data",
            get(|stats: RequestStats| async move {
                stats
                    .record_event(
                        CustomEvent::new("query")
                            .data(&serde_json::json!({"rows": 3, "tables": ["a", "b"]})),
                    )
                    .expect("valid");
                stats
                    .start_event("render")
                    .finish_with(&serde_json::json!({ "ok": true }));
                stats
                    .record_event(CustomEvent::new("long").data(&"x".repeat(1000)))
                    .expect("valid");
                stats.event("y".repeat(1000)).expect("valid");
                "ok"
            }),
        ),
    );
    assert_eq!(get_req(&app, "/data").await.status(), StatusCode::OK);

    let record = &stats.recent_requests()[0];
    assert_eq!(record.events.len(), 4);
    assert_eq!(
        record.events[0].data.as_deref(),
        Some(r#"{"rows":3,"tables":["a","b"]}"#)
    );
    assert_eq!(record.events[1].label, "render");
    assert_eq!(record.events[1].data.as_deref(), Some(r#"{"ok":true}"#));
    // Capped at the default 256 characters, ending in `…`.
    let long = record.events[2].data.as_deref().expect("data");
    assert_eq!(long.chars().count(), 257, "{long}");
    assert!(long.starts_with("\"xxx") && long.ends_with('…'), "{long}");
    let label = &record.events[3].label;
    assert_eq!(label.chars().count(), 257);
    assert!(label.starts_with("yyy") && label.ends_with('…'), "{label}");
}

#[tokio::test(start_paused = true)]
async fn invalid_custom_events_are_errors_returned_to_the_handler() {
    let stats = Stats::new();
    let app = with_stats(
        &stats,
        Router::new().route(
            "/invalid",
            get(|stats: RequestStats| async move {
                let earlier = Instant::now();
                sleep(Duration::from_millis(1)).await;
                let end_only = stats.record_event(CustomEvent::new("end only").end(Instant::now()));
                let backwards = stats.record_event(
                    CustomEvent::new("backwards")
                        .start(Instant::now())
                        .end(earlier),
                );
                let fine = stats.event("after");
                format!("{end_only:?}|{backwards:?}|{fine:?}")
            }),
        ),
    );
    let response = get_req(&app, "/invalid").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        text(&response),
        "Err(EndWithoutStart)|Err(EndBeforeStart)|Ok(())"
    );

    let http = stats.snapshot().http;
    assert_eq!(http.requests_errored, 0);
    assert_eq!(http.requests_panicked, 0);
    assert_eq!(http.status_2xx, 1);
    let record = &stats.recent_requests()[0];
    assert_eq!(record.outcome.as_str(), "completed");
    let labels: Vec<&str> = record.events.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["after"], "refused events are not recorded");
    assert_eq!(record.events_dropped, 0);

    // The errors say what is wrong.
    let error: &dyn std::error::Error = &EventError::EndWithoutStart;
    assert!(!error.to_string().is_empty());
    assert_ne!(
        EventError::EndWithoutStart.to_string(),
        EventError::EndBeforeStart.to_string()
    );
}

async fn forty_events(stats: RequestStats) -> &'static str {
    stats.event("e0").expect("valid");
    stats.start_event("e1").finish();
    stats
        .record_event(CustomEvent::new("e2"))
        .expect("dropping is not an error");
    for n in 3..40 {
        stats
            .event(format!("e{n}"))
            .expect("dropping is not an error");
    }
    "ok"
}

#[tokio::test(start_paused = true)]
async fn events_beyond_the_per_request_limit_are_dropped_and_counted() {
    let stats = build(Stats::builder().max_events_per_request(3));
    let app = with_stats(&stats, Router::new().route("/many", get(forty_events)));
    assert_eq!(get_req(&app, "/many").await.status(), StatusCode::OK);
    let record = &stats.recent_requests()[0];
    let labels: Vec<&str> = record.events.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["e0", "e1", "e2"]);
    assert_eq!(record.events_dropped, 37);
    let id = &record.id;
    let detail = get_json(&app, &format!("/stats/requests/{id}")).await;
    assert_eq!(detail["events_dropped"], 37);
    assert_eq!(detail["events"].as_array().map(Vec::len), Some(3));

    // The default limit is 32.
    let stats = Stats::new();
    let app = with_stats(&stats, Router::new().route("/many", get(forty_events)));
    get_req(&app, "/many").await;
    let record = &stats.recent_requests()[0];
    assert_eq!(record.events.len(), 32);
    assert_eq!(record.events[31].label, "e31");
    assert_eq!(record.events_dropped, 8);
}

// ---------------------------------------------------------------------------------------------
// dont_record
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn dont_record_leaves_no_detailed_record_but_is_counted() {
    let stats = build(Stats::builder().slow_threshold(Duration::from_millis(1)));
    let app = with_stats(
        &stats,
        Router::new()
            .route(
                "/quiet",
                get(|stats: RequestStats| async move {
                    stats.event("before").expect("valid");
                    stats.dont_record();
                    stats.event("after").expect("ignored, not an error");
                    sleep(Duration::from_millis(5)).await;
                    stats.id().expect("counted").to_string()
                }),
            )
            .route(
                "/loud",
                get(|stats: RequestStats| async move {
                    sleep(Duration::from_millis(5)).await;
                    stats.id().expect("recorded").to_string()
                }),
            ),
    );
    let loud = id_of(&get_req(&app, "/loud").await);
    let quiet = id_of(&get_req(&app, "/quiet").await);

    // Counters and histograms count it.
    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 2);
    assert_eq!(http.status_2xx, 2);
    assert_eq!(http.windows["total"].count, 2);
    assert_eq!(http.uri_sets["GET /quiet"].count, 1);
    assert_eq!(http.uri_sets["GET /quiet"].windows["total"].count, 1);

    // No detailed record anywhere: slow list, recent ring, event stream.
    let slow: Vec<&str> = http.slow_requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(slow, ["/loud"], "both took 5 ms, over the 1 ms threshold");
    assert_eq!(recent_paths(&stats), ["/loud"]);
    let events = stats.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.request_id.as_deref() == Some(loud.to_string().as_str())),
        "{events:?}"
    );
    assert!(events.iter().all(|e| !e.message.contains("/quiet")));
    let listed = get_json(&app, "/stats/requests").await;
    assert_eq!(listed["requests"].as_array().map(Vec::len), Some(1));
    let text = text(&get_req(&app, "/stats/events").await);
    assert!(!text.contains("/quiet"), "{text}");
    assert_eq!(
        get_req(&app, &format!("/stats/requests/{quiet}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_filtered_out_request_appears_nowhere() {
    let stats = build(Stats::builder().exclude(Filter::new().path("/healthz")));
    let (gate, mut started) = Gate::new();
    let release = Arc::clone(&gate.release);
    let app = with_stats(
        &stats,
        Router::new()
            .route("/healthz", get(gated))
            .route("/hello", get(|| async { "hello" }))
            .with_state(gate),
    );

    let run = async {
        let in_flight = tokio::spawn({
            let app = app.clone();
            async move { send(&app, request(Method::GET, "/healthz")).await }
        });
        let (recording, id) = started.recv().await.expect("the handler started");
        assert!(
            !recording,
            "the handler sees a request that is not recorded"
        );
        assert_eq!(id, None);
        // In flight, yet not in the in-flight table or the counters.
        let http = stats.snapshot().http;
        assert_eq!(http.requests_total, 0);
        assert_eq!(http.requests_in_flight, 0);
        assert!(http.in_flight.is_empty());
        release.notify_one();
        let response = in_flight.await.expect("request task");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), "released");

        // A request that is not filtered out, for contrast.
        assert_eq!(get_req(&app, "/hello").await.status(), StatusCode::OK);
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("bounded");

    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 1);
    assert_eq!(http.status_2xx, 1);
    assert_eq!(http.windows["total"].count, 1);
    let keys: Vec<&String> = http.uri_sets.keys().collect();
    assert_eq!(keys, ["GET /hello"]);
    assert_eq!(recent_paths(&stats), ["/hello"]);
    assert_eq!(
        event_messages(&stats).len(),
        2,
        "only /hello: {:?}",
        stats.events()
    );
    for uri in [
        "/stats/data",
        "/stats/events",
        "/stats/events?format=json",
        "/stats/requests",
        "/stats/metrics",
        "/stats",
    ] {
        let body = text(&get_req(&app, uri).await);
        assert!(!body.contains("healthz"), "{uri}: {body}");
        assert!(body.contains("hello"), "{uri} shows the other request");
    }
}

async fn ok() -> &'static str {
    "ok"
}

fn filter_app(stats: &Stats) -> Router {
    with_stats(
        stats,
        Router::new()
            .route("/api/items", get(ok).post(ok))
            .route("/api/users/{id}", get(ok).delete(ok))
            .route("/web/page", get(ok).post(ok)),
    )
}

/// Sends `method uri` and says whether the request was counted.
async fn recorded(stats: &Stats, app: &Router, method: Method, uri: &str) -> bool {
    let before = stats.snapshot().http.requests_total;
    send(app, request(method, uri)).await;
    let after = stats.snapshot().http.requests_total;
    assert!(after <= before + 1);
    after == before + 1
}

/// Asserts which of `cases` (method, uri, recorded?) are recorded with these filters.
async fn check_filters(builder: StatsBuilder, what: &str, cases: &[(Method, &str, bool)]) {
    let stats = build(builder);
    let app = filter_app(&stats);
    for (method, uri, expected) in cases {
        assert_eq!(
            recorded(&stats, &app, method.clone(), uri).await,
            *expected,
            "{what}: {method} {uri}"
        );
    }
    let expected = cases.iter().filter(|c| c.2).count() as u64;
    let http = stats.snapshot().http;
    assert_eq!(http.windows["total"].count, expected, "{what}");
    assert_eq!(stats.recent_requests().len() as u64, expected, "{what}");
}

#[tokio::test]
async fn filters_are_an_or_of_and_groups_with_negation() {
    // Two include groups: a request matching either is recorded.
    check_filters(
        Stats::builder()
            .include(Filter::new().method("POST"))
            .include(Filter::new().path("/api/*")),
        "include POST | /api/*",
        &[
            (Method::GET, "/api/items", true),
            (Method::POST, "/web/page", true),
            (Method::DELETE, "/api/users/1", true),
            (Method::GET, "/web/page", false),
            (Method::GET, "/missing", false),
        ],
    )
    .await;

    // One group: every rule must match; `!` negates a rule.
    check_filters(
        Stats::builder().include(Filter::new().path("/api/*").method("!GET")),
        "include /api/* & !GET",
        &[
            (Method::POST, "/api/items", true),
            (Method::DELETE, "/api/users/7", true),
            (Method::GET, "/api/items", false),
            (Method::POST, "/web/page", false),
        ],
    )
    .await;

    // Route rules match the route template or `<unmatched>`.
    check_filters(
        Stats::builder()
            .exclude(Filter::new().route("/api/users/{id}"))
            .exclude(Filter::new().route("<unmatched>")),
        "exclude route /api/users/{id} | <unmatched>",
        &[
            (Method::GET, "/api/users/7", false),
            (Method::DELETE, "/api/users/8", false),
            (Method::GET, "/missing", false),
            (Method::GET, "/api/items", true),
            (Method::GET, "/web/page", true),
        ],
    )
    .await;

    // A negated exclude: everything but /api/* is left out.
    check_filters(
        Stats::builder().exclude(Filter::new().path("!/api/*")),
        "exclude !/api/*",
        &[
            (Method::GET, "/web/page", false),
            (Method::GET, "/missing", false),
            (Method::GET, "/api/items", true),
            (Method::POST, "/api/items", true),
        ],
    )
    .await;

    // An exclude group needs all its rules; excludes win over includes; globs with `*` and `?`.
    check_filters(
        Stats::builder()
            .include(Filter::new().method("P?ST"))
            .include(Filter::new().path("/api/*"))
            .exclude(Filter::new().method("DELETE").path("/api/users/*")),
        "include P?ST | /api/*, exclude DELETE & /api/users/*",
        &[
            (Method::DELETE, "/api/users/1", false),
            (Method::GET, "/api/users/1", true),
            (Method::POST, "/web/page", true),
            (Method::GET, "/web/page", false),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Stats routes
// ---------------------------------------------------------------------------------------------

/// Every route of a stats router under `prefix`, finishing with a pause.
async fn visit_stats_routes(app: &Router, prefix: &str) {
    for (method, path, status) in [
        (Method::GET, "/data", StatusCode::OK),
        (Method::GET, "", StatusCode::OK),
        (Method::HEAD, "", StatusCode::OK),
        (Method::GET, "/metrics", StatusCode::OK),
        (Method::GET, "/style.css", StatusCode::OK),
        (Method::GET, "/requests", StatusCode::OK),
        (Method::GET, "/requests/12345", StatusCode::NOT_FOUND),
        (Method::GET, "/events", StatusCode::OK),
        (Method::GET, "/events?format=json", StatusCode::OK),
        (Method::GET, "/pause", StatusCode::METHOD_NOT_ALLOWED),
        (Method::POST, "/reset?namespace=nope", StatusCode::NOT_FOUND),
        (Method::POST, "/maintenance?on=false", StatusCode::OK),
        (Method::POST, "/pause", StatusCode::OK),
    ] {
        let uri = format!("{prefix}{path}");
        let response = send(app, request(method.clone(), &uri)).await;
        assert_eq!(response.status(), status, "{method} {uri}");
    }
}

#[tokio::test]
async fn stats_routes_are_not_recorded_by_default() -> Result<(), Box<dyn std::error::Error>> {
    let hello = || Router::new().route("/hello", get(|| async { "hello" }));
    let merged = Stats::new();
    let nested = Stats::new();
    let prefixed = build(Stats::builder().prefix("/internal/metrics-ui"));
    let apps = [
        (
            &merged,
            hello().merge(merged.router()).layer(merged.layer()),
            "/stats",
        ),
        (
            &nested,
            hello()
                .nest("/admin", nested.router())
                .layer(nested.layer()),
            "/admin/stats",
        ),
        (
            &prefixed,
            hello().merge(prefixed.router()).layer(prefixed.layer()),
            "/internal/metrics-ui",
        ),
    ];
    for (stats, app, prefix) in &apps {
        visit_stats_routes(app, prefix).await;
        assert!(!stats.is_enabled("http")?, "{prefix}: the pause worked");
        let http = stats.snapshot().http;
        assert_eq!(http.requests_total, 0, "{prefix}: {:?}", http.uri_sets);
        assert!(http.uri_sets.is_empty(), "{prefix}: {:?}", http.uri_sets);
        assert_eq!(http.windows["total"].count, 0, "{prefix}");
        assert_eq!(http.status_2xx + http.status_4xx, 0, "{prefix}");
        assert!(stats.recent_requests().is_empty(), "{prefix}");
        assert!(stats.events().is_empty(), "{prefix}");

        // The application's own requests are recorded.
        stats.resume(None)?;
        assert_eq!(get_req(app, "/hello").await.status(), StatusCode::OK);
        let http = stats.snapshot().http;
        assert_eq!(http.requests_total, 1, "{prefix}");
        assert_eq!(http.uri_sets["GET /hello"].count, 1, "{prefix}");
    }
    Ok(())
}

#[tokio::test]
async fn stats_routes_are_recorded_when_asked() -> Result<(), Box<dyn std::error::Error>> {
    let hello = || Router::new().route("/hello", get(|| async { "hello" }));
    let merged = build(Stats::builder().record_stats_routes(true));
    let nested = build(Stats::builder().record_stats_routes(true));
    let apps = [
        (
            &merged,
            hello().merge(merged.router()).layer(merged.layer()),
            "/stats",
        ),
        (
            &nested,
            hello()
                .nest("/admin", nested.router())
                .layer(nested.layer()),
            "/admin/stats",
        ),
    ];
    for (stats, app, prefix) in &apps {
        visit_stats_routes(app, prefix).await;
        let http = stats.snapshot().http;
        assert_eq!(http.requests_total, 13, "{prefix}: {:?}", http.uri_sets);
        let sets = &http.uri_sets;
        assert_eq!(sets[&format!("GET {prefix}/data")].count, 1, "{sets:?}");
        assert_eq!(sets[&format!("GET {prefix}")].count, 1, "{sets:?}");
        assert_eq!(sets[&format!("HEAD {prefix}")].count, 1, "{sets:?}");
        assert_eq!(sets[&format!("GET {prefix}/metrics")].count, 1, "{sets:?}");
        assert_eq!(sets[&format!("GET {prefix}/events")].count, 2, "{sets:?}");
        assert_eq!(
            sets[&format!("GET {prefix}/requests/{{id}}")].status_4xx,
            1,
            "{sets:?}"
        );
        assert_eq!(sets[&format!("POST {prefix}/pause")].count, 1, "{sets:?}");
        assert_eq!(
            sets[&format!("GET {prefix}/pause")].status_4xx,
            1,
            "{sets:?}"
        );
        assert_eq!(
            sets[&format!("POST {prefix}/maintenance")].count,
            1,
            "{sets:?}"
        );
        assert!(
            stats
                .recent_requests()
                .iter()
                .any(|r| r.path == format!("{prefix}/data")),
            "{prefix}"
        );
        stats.resume(None)?;
    }
    Ok(())
}

#[tokio::test]
async fn application_routes_named_like_stats_routes_are_recorded() {
    let stats = Stats::new();
    let app = with_stats(
        &stats,
        Router::new()
            .route("/api/stats", get(ok))
            .route("/teams/{id}/stats/events", get(ok)),
    );
    assert_eq!(get_req(&app, "/api/stats").await.status(), StatusCode::OK);
    assert_eq!(
        get_req(&app, "/teams/7/stats/events").await.status(),
        StatusCode::OK
    );
    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 2, "{:?}", http.uri_sets);
    assert_eq!(http.uri_sets["GET /api/stats"].count, 1);
    assert_eq!(http.uri_sets["GET /teams/{id}/stats/events"].count, 1);
}

#[tokio::test]
async fn stats_routes_stay_excluded_with_a_uri_set_hook() {
    // A hook labelling every request by the API version it asks for (a common grouping).
    let stats = build(Stats::builder().uri_set_with(|parts| {
        let version = parts
            .headers
            .get("x-api-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("v1");
        Some(Cow::Owned(format!("api {version}")))
    }));
    let app = with_stats(&stats, Router::new().route("/api/items", get(ok)));
    assert_eq!(get_req(&app, "/api/items").await.status(), StatusCode::OK);
    assert_eq!(get_req(&app, "/stats/data").await.status(), StatusCode::OK);
    assert_eq!(get_req(&app, "/stats").await.status(), StatusCode::OK);
    let http = stats.snapshot().http;
    assert_eq!(http.uri_sets["GET api v1"].count, 1);
    assert_eq!(
        http.requests_total, 1,
        "only the application request: {:?}",
        http.uri_sets
    );
}

// ---------------------------------------------------------------------------------------------
// set_uri_set
// ---------------------------------------------------------------------------------------------

async fn renamed(stats: RequestStats) -> &'static str {
    stats.set_uri_set("users");
    "renamed"
}

#[tokio::test]
async fn set_uri_set_moves_the_request_to_the_named_set() {
    let stats = Stats::new();
    let app = with_stats(
        &stats,
        Router::new()
            .route("/users/{id}", get(renamed).post(renamed))
            .route(
                "/owned",
                get(|stats: RequestStats| async move {
                    stats.set_uri_set(format!("owned-{}", 1));
                    "owned"
                }),
            ),
    );
    get_req(&app, "/users/7").await;
    get_req(&app, "/users/8").await;
    send(&app, request(Method::POST, "/users/9")).await;
    get_req(&app, "/owned").await;

    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 4);
    let sets = &http.uri_sets;
    assert_eq!(sets["GET users"].count, 2, "{sets:?}");
    assert_eq!(sets["GET users"].status_2xx, 2, "{sets:?}");
    assert_eq!(sets["GET users"].method, "GET");
    assert_eq!(sets["GET users"].route, "users");
    assert_eq!(sets["POST users"].count, 1, "{sets:?}");
    assert_eq!(sets["GET owned-1"].count, 1, "{sets:?}");
    for key in ["GET /users/{id}", "POST /users/{id}", "GET /owned"] {
        assert_eq!(sets.get(key).map_or(0, |s| s.count), 0, "{key}: {sets:?}");
        assert_eq!(sets.get(key).map_or(0, |s| s.status_2xx), 0, "{key}");
    }
    let recent: Vec<String> = stats
        .recent_requests()
        .into_iter()
        .map(|r| r.uri_set)
        .collect();
    assert_eq!(
        recent,
        ["GET owned-1", "POST users", "GET users", "GET users"]
    );
}

async fn rename_if_asked(Path(id): Path<String>, stats: RequestStats) -> &'static str {
    if id == "rename" {
        stats.set_uri_set("users");
    }
    "user"
}

/// `/users/{id}` (moved to the set `users` when the id is `rename`) and `/other`, under a cap
/// of two URI sets: `/other` only gets a set of its own if the route's emptied set went.
fn renaming_app(stats: &Stats) -> Router {
    with_stats(
        stats,
        Router::new()
            .route("/users/{id}", get(rename_if_asked))
            .route("/other", get(ok)),
    )
}

async fn assert_no_empty_set_left(app: &Router, stats: &Stats) {
    get_req(app, "/other").await;
    let http = stats.snapshot().http;
    let keys: Vec<&String> = http.uri_sets.keys().collect();
    assert_eq!(keys, ["GET /other", "GET users"], "{:?}", http.uri_sets);
    assert_eq!(http.uri_sets_overflowed, 0);
    assert!(!http.uri_sets.contains_key(OVERFLOW));
}

#[tokio::test]
async fn a_renamed_request_leaves_no_empty_uri_set_behind() {
    let stats = build(Stats::builder().max_uri_sets(2));
    let app = renaming_app(&stats);
    get_req(&app, "/users/rename").await;
    assert_no_empty_set_left(&app, &stats).await;
}

#[tokio::test]
async fn after_a_reset_a_renamed_request_still_leaves_no_empty_uri_set_behind() {
    let stats = build(Stats::builder().max_uri_sets(2));
    let app = renaming_app(&stats);
    // Recorded in the route's own set, which a reset empties but keeps.
    get_req(&app, "/users/7").await;
    stats.reset(None).expect("reset");
    // The only request of the emptied set moves to another set: the emptied set goes.
    get_req(&app, "/users/rename").await;
    assert_no_empty_set_left(&app, &stats).await;
}

// ---------------------------------------------------------------------------------------------
// Recent requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn recent_ring_keeps_the_newest_and_evicts_the_oldest() {
    let stats = build(Stats::builder().recent_capacity(3).instance("ring-test"));
    let app = with_stats(&stats, Router::new().route("/r/{n}", get(answer_id)));
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(id_of(&get_req(&app, &format!("/r/{n}")).await));
    }
    assert_eq!(recent_paths(&stats), ["/r/5", "/r/4", "/r/3"]);

    let listed = get_json(&app, "/stats/requests").await;
    let keys: BTreeSet<&String> = listed.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        BTreeSet::from([&"filters".into(), &"instance".into(), &"requests".into()])
    );
    assert_eq!(listed["instance"], "ring-test");
    assert_eq!(listed["filters"], serde_json::json!({}), "no filter");
    let requests = listed["requests"].as_array().expect("requests");
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, ["/r/5", "/r/4", "/r/3"]);
    let listed_ids: Vec<&str> = requests
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    let expected: Vec<String> = ids[2..].iter().rev().map(u64::to_string).collect();
    assert_eq!(listed_ids, expected);
    for r in requests {
        assert_eq!(r["status"], 200);
        assert_eq!(r["outcome"], "completed");
        assert_eq!(r["uri_set"], "GET /r/{n}");
    }

    // Still kept: found. Evicted, never existed or not a number: 404 with a JSON error.
    let detail = get_json(&app, &format!("/stats/requests/{}", ids[2])).await;
    assert_eq!(detail["path"], "/r/3");
    for id in [
        ids[0].to_string(),
        ids[1].to_string(),
        "999999".to_owned(),
        "abc".to_owned(),
        "-1".to_owned(),
    ] {
        let response = get_req(&app, &format!("/stats/requests/{id}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "id {id}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = json(&response);
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(body["status"], 404);
    }
}

#[tokio::test]
async fn by_default_1000_recent_requests_and_1000_events_are_kept() {
    let stats = Stats::new();
    let app = with_stats(&stats, Router::new().route("/r/{n}", get(answer_id)));
    for n in 1..=1001 {
        get_req(&app, &format!("/r/{n}")).await;
    }
    let recent = recent_paths(&stats);
    assert_eq!(recent.len(), 1000);
    assert_eq!(recent[0], "/r/1001");
    assert_eq!(recent[999], "/r/2");
    // The newest event gives the newest request's own duration, however long it took.
    let newest = &stats.recent_requests()[0];
    let events = event_messages(&stats);
    assert_eq!(events.len(), 1000);
    assert_eq!(
        events[0],
        format!(
            "Finished GET /r/1001 200 in {:.3} seconds",
            newest.processing_seconds
        )
    );
    assert_eq!(events[999], "Started GET /r/502");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ids_are_unique_under_concurrent_load() {
    let stats = build(Stats::builder().recent_capacity(4000));
    let app = with_stats(&stats, Router::new().route("/r/{n}", get(answer_id)));
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(500);
                for n in 0..500 {
                    ids.push(id_of(&get_req(&app, &format!("/r/{task}-{n}")).await));
                }
                ids
            })
        })
        .collect();
    let run = async {
        let mut returned = BTreeSet::new();
        for task in tasks {
            returned.extend(task.await.expect("task"));
        }
        returned
    };
    let returned = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bounded");
    assert_eq!(returned.len(), 4000, "every request got its own id");

    let recent = stats.recent_requests();
    assert_eq!(recent.len(), 4000);
    let kept: BTreeSet<u64> = recent
        .iter()
        .map(|r| r.id.parse().expect("numeric id"))
        .collect();
    assert_eq!(kept, returned);
    let paths: BTreeSet<&str> = recent.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths.len(), 4000);
    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 4000);
    assert_eq!(http.windows["total"].count, 4000);
}

#[tokio::test]
async fn an_in_flight_request_is_found_by_id() {
    let stats = Stats::new();
    let (gate, mut started) = Gate::new();
    let release = Arc::clone(&gate.release);
    let app = with_stats(
        &stats,
        Router::new().route("/wait", get(gated)).with_state(gate),
    );
    let run = async {
        let in_flight = tokio::spawn({
            let app = app.clone();
            async move { send(&app, request(Method::GET, "/wait")).await }
        });
        let (recording, id) = started.recv().await.expect("the handler started");
        assert!(recording);
        let id = id.expect("an id");

        let live = get_json(&app, &format!("/stats/requests/{id}")).await;
        assert_eq!(live["id"], id.to_string());
        assert_eq!(live["path"], "/wait");
        assert_eq!(live["status"], Value::Null);
        assert_eq!(live["outcome"], "in_flight");
        assert_eq!(live["end_time"], Value::Null);
        let listed = get_json(&app, "/stats/requests").await;
        assert_eq!(listed["requests"], serde_json::json!([]), "finished only");

        release.notify_one();
        assert_eq!(
            in_flight.await.expect("request task").status(),
            StatusCode::OK
        );
        let done = get_json(&app, &format!("/stats/requests/{id}")).await;
        assert_eq!(done["status"], 200);
        assert_eq!(done["outcome"], "completed");
        assert!(done["end_time"].is_number(), "{done}");
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("bounded");
}

// ---------------------------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sampling_keeps_a_fraction_of_detailed_records_and_exact_counters() {
    let stats = build(
        Stats::builder()
            .record_fraction(0.25)
            .recent_capacity(10_000),
    );
    let app = with_stats(&stats, Router::new().route("/s", get(answer_id)));
    for _ in 0..10_000 {
        assert_eq!(get_req(&app, "/s").await.status(), StatusCode::OK);
    }
    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 10_000);
    assert_eq!(http.status_2xx, 10_000);
    assert_eq!(http.windows["total"].count, 10_000);
    assert_eq!(http.uri_sets["GET /s"].count, 10_000);
    assert_eq!(http.uri_sets["GET /s"].windows["total"].count, 10_000);

    let recent = stats.recent_requests();
    assert!(
        (2_300..=2_700).contains(&recent.len()),
        "{} detailed records out of 10,000",
        recent.len()
    );
    // The event stream only logs sampled requests.
    let sampled: BTreeSet<String> = recent.into_iter().map(|r| r.id).collect();
    let events = stats.events();
    assert_eq!(events.len(), 1000);
    for event in &events {
        let id = event.request_id.as_ref().expect("a request event");
        assert!(sampled.contains(id), "{event:?} is not a sampled request");
    }
}

#[tokio::test(start_paused = true)]
async fn record_fraction_zero_keeps_no_detailed_record() {
    let stats = build(
        Stats::builder()
            .record_fraction(0.0)
            .slow_threshold(Duration::from_millis(1)),
    );
    let app = with_stats(
        &stats,
        Router::new().route(
            "/s",
            get(|stats: RequestStats| async move {
                stats.event("ignored").expect("not an error");
                sleep(Duration::from_millis(2)).await;
                answer_id(stats).await
            }),
        ),
    );
    let mut last = 0;
    for _ in 0..100 {
        last = id_of(&get_req(&app, "/s").await);
    }
    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 100);
    assert_eq!(http.windows["total"].count, 100);
    assert!(http.slow_requests.is_empty(), "every request was slow");
    assert!(stats.recent_requests().is_empty());
    assert!(stats.events().is_empty());
    assert_eq!(
        get_req(&app, &format!("/stats/requests/{last}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn invalid_record_fraction_is_refused() {
    for fraction in [1.5, -0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let result = Stats::builder().record_fraction(fraction).build();
        assert!(
            matches!(result, Err(ConfigError::InvalidRecordFraction)),
            "{fraction}: {result:?}"
        );
    }
    for fraction in [0.0, 0.25, 1.0] {
        assert!(
            Stats::builder().record_fraction(fraction).build().is_ok(),
            "{fraction}"
        );
    }
    assert!(!ConfigError::InvalidRecordFraction.to_string().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Event stream
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn event_stream_logs_started_and_finished_requests() {
    let stats = build(Stats::builder().instance("web-1"));
    let app = with_stats(
        &stats,
        Router::new().route(
            "/made",
            post(|| async {
                sleep(Duration::from_millis(5)).await;
                (StatusCode::CREATED, "made")
            }),
        ),
    );
    let response = send(&app, request(Method::POST, "/made")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    advance(Duration::from_secs(2)).await;
    assert_eq!(get_req(&app, "/nope").await.status(), StatusCode::NOT_FOUND);

    let events = stats.events();
    assert_eq!(events.len(), 4, "{events:?}");
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Finished GET /nope 404 in 0.000 seconds",
            "Started GET /nope",
            "Finished POST /made 201 in 0.005 seconds",
            "Started POST /made",
        ]
    );
    let made = stats.recent_requests()[1].id.clone();
    let finished = &events[2];
    assert_eq!(finished.kind, "request_finished");
    assert_eq!(finished.status, Some(201));
    assert_close(
        finished.duration_seconds.expect("a duration"),
        0.005,
        "duration",
    );
    assert_eq!(finished.request_id.as_deref(), Some(made.as_str()));
    assert_eq!(finished.instance, "web-1");
    // Ages are differences of Unix times in seconds, which a double holds to a fraction of a
    // microsecond.
    assert_close_to_the_microsecond(finished.age_seconds, 2.0, "age of the finished event");
    let started = &events[3];
    assert_eq!(started.kind, "request_started");
    assert_eq!(started.status, None);
    assert_eq!(started.duration_seconds, None);
    assert_eq!(started.request_id.as_deref(), Some(made.as_str()));
    assert_close_to_the_microsecond(started.age_seconds, 2.005, "age of the started event");
    // Epoch seconds near 1.7e9 carry about 0.2 µs of precision.
    let apart = finished.time - started.time;
    assert!((apart - 0.005).abs() < 1e-6, "{apart}");
    assert_eq!(events[0].status, Some(404));
}

// Paused: every request takes no time at all, so the messages are exact.
#[tokio::test(start_paused = true)]
async fn event_stream_is_bounded_by_count() {
    let stats = build(Stats::builder().event_capacity(5));
    let app = with_stats(&stats, Router::new().route("/e/{n}", get(ok)));
    for n in 1..=4 {
        get_req(&app, &format!("/e/{n}")).await;
    }
    let expected = [
        "Finished GET /e/4 200 in 0.000 seconds",
        "Started GET /e/4",
        "Finished GET /e/3 200 in 0.000 seconds",
        "Started GET /e/3",
        "Finished GET /e/2 200 in 0.000 seconds",
    ];
    assert_eq!(event_messages(&stats), expected);
    let doc = get_json(&app, "/stats/events?format=json").await;
    let messages: Vec<&str> = doc["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["message"].as_str().expect("message"))
        .collect();
    assert_eq!(messages, expected);

    stats.log_event("one more");
    let messages = event_messages(&stats);
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[0], "one more");
    assert_eq!(messages[4], "Started GET /e/3", "the oldest went first");
}

#[tokio::test(start_paused = true)]
async fn event_stream_is_bounded_by_age() {
    let stats = build(Stats::builder().event_max_age(Duration::from_secs(60)));
    let app = with_stats(
        &stats,
        Router::new().route("/old", get(ok)).route("/new", get(ok)),
    );
    get_req(&app, "/old").await;
    stats.log_event("old news");
    advance(Duration::from_secs(59)).await;
    assert_eq!(stats.events().len(), 3);
    advance(Duration::from_secs(2)).await;
    assert!(stats.events().is_empty(), "{:?}", stats.events());
    let doc = get_json(&app, "/stats/events?format=json").await;
    assert_eq!(doc["events"], serde_json::json!([]));
    let text = text(&get_req(&app, "/stats/events").await);
    assert!(
        !text.contains("/old") && !text.contains("old news"),
        "{text}"
    );

    get_req(&app, "/new").await;
    assert_eq!(
        event_messages(&stats),
        ["Finished GET /new 200 in 0.000 seconds", "Started GET /new"]
    );

    // The default keeps an hour.
    let stats = Stats::new();
    stats.log_event("an hour");
    advance(Duration::from_secs(3600)).await;
    assert_eq!(event_messages(&stats), ["an hour"]);
    advance(Duration::from_secs(1)).await;
    assert!(stats.events().is_empty());
}

/// The indentation of an event line, in spaces.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

#[tokio::test(start_paused = true)]
async fn event_stream_text_layout_and_relative_times() {
    let stats = build(Stats::builder().instance("web-1"));
    let app = with_stats(&stats, Router::new().route("/x", get(ok)));
    get_req(&app, "/x").await;

    let response = get_req(&app, "/stats/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = text(&response);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 6, "{body}");
    let now = stats.snapshot().generated_at;
    assert!(now > 1.5e9);
    assert_eq!(lines[0], (now.trunc() as u64).to_string(), "{body}");
    assert_eq!(lines[1], "----------");
    assert_eq!(
        lines[2],
        "  1. web-1 Finished GET /x 200 in 0.000 seconds, moments ago"
    );
    assert_eq!(lines[3], "----------");
    assert_eq!(
        lines[4].trim_start(),
        "web-1 Finished GET /x 200 in 0.000 seconds, moments ago"
    );
    assert_eq!(lines[5].trim_start(), "web-1 Started GET /x, moments ago");
    // One column per instance: the same indentation for every line of this instance.
    assert_eq!(indent(lines[4]), indent(lines[5]), "{body}");
    assert!((1..=32).contains(&indent(lines[4])), "{body}");

    // Relative times, in TileStache's buckets.
    advance(Duration::from_secs(20)).await;
    let body = text(&get_req(&app, "/stats/events").await);
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[2].ends_with(", 20 seconds ago"), "{body}");
    assert!(
        lines[5].ends_with("Started GET /x, 20 seconds ago"),
        "{body}"
    );
    advance(Duration::from_secs(100)).await;
    let body = text(&get_req(&app, "/stats/events").await);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[2],
        "  1. web-1 Finished GET /x 200 in 0.000 seconds, 2 minutes ago"
    );
    assert!(lines[4].ends_with("Finished GET /x 200 in 0.000 seconds, 2 minutes ago"));
    assert!(
        lines[5].ends_with("Started GET /x, 2 minutes ago"),
        "{body}"
    );
    let now = stats.snapshot().generated_at;
    assert_eq!(lines[0], (now.trunc() as u64).to_string(), "{body}");

    // A newer event becomes the instance's headline.
    get_req(&app, "/x").await;
    let body = text(&get_req(&app, "/stats/events").await);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 8, "{body}");
    assert_eq!(
        lines[2],
        "  1. web-1 Finished GET /x 200 in 0.000 seconds, moments ago"
    );
    assert!(
        lines[7].ends_with("Started GET /x, 2 minutes ago"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn event_stream_json_format() {
    let stats = build(Stats::builder().instance("web-1"));
    let app = with_stats(&stats, Router::new().route("/x", get(ok)));
    get_req(&app, "/x").await;
    stats.log_event("deployed");
    advance(Duration::from_secs(3)).await;

    let doc = get_json(&app, "/stats/events?format=json").await;
    let top: Vec<&String> = doc.as_object().expect("object").keys().collect();
    assert_eq!(top, ["events"]);
    let events = doc["events"].as_array().expect("events");
    assert_eq!(events.len(), 3, "{doc}");
    let keys = BTreeSet::from([
        "age_seconds",
        "duration_seconds",
        "instance",
        "kind",
        "message",
        "request_id",
        "status",
        "time",
    ]);
    for event in events {
        let have: BTreeSet<&str> = event
            .as_object()
            .expect("event object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(have, keys, "{event}");
        assert_eq!(event["instance"], "web-1");
        assert_close_to_the_microsecond(event["age_seconds"].as_f64().expect("age"), 3.0, "age");
        assert!(event["time"].as_f64().expect("time") > 1.5e9);
    }
    assert_eq!(events[0]["kind"], "application");
    assert_eq!(events[0]["message"], "deployed");
    assert_eq!(events[0]["request_id"], Value::Null);
    assert_eq!(events[0]["status"], Value::Null);
    assert_eq!(events[0]["duration_seconds"], Value::Null);
    let id = stats.recent_requests()[0].id.clone();
    assert_eq!(events[1]["kind"], "request_finished");
    assert_eq!(events[1]["request_id"], id);
    assert_eq!(events[1]["status"], 200);
    assert_eq!(events[1]["duration_seconds"], 0.0);
    assert_eq!(events[2]["kind"], "request_started");
    assert_eq!(events[2]["request_id"], id);
    assert_eq!(events[2]["message"], "Started GET /x");

    // Without `format=json` (or with another format) the text layout is served.
    for uri in ["/stats/events", "/stats/events?format=text"] {
        let response = get_req(&app, uri).await;
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8",
            "{uri}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn log_event_adds_a_cleaned_application_event() -> Result<(), Box<dyn std::error::Error>> {
    let stats = build(Stats::builder().instance("web-1"));
    let app = with_stats(&stats, Router::new());
    stats.log_event("deploy <b>v2</b>\n");

    let events = stats.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "application");
    assert_eq!(events[0].message, "deploy <b>v2</b>\u{FFFD}");
    assert_eq!(events[0].request_id, None);
    let body = text(&get_req(&app, "/stats/events").await);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 5, "{body}");
    assert_eq!(lines[2], "  1. web-1 deploy <b>v2</b>\u{FFFD}, moments ago");
    assert_eq!(
        lines[4].trim_start(),
        "web-1 deploy <b>v2</b>\u{FFFD}, moments ago"
    );

    // Capped like every recorded string, and ignored while http is paused.
    stats.log_event(&"z".repeat(1000));
    assert_eq!(stats.events()[0].message.chars().count(), 257);
    stats.pause(Some("http"))?;
    stats.log_event("while paused");
    assert_eq!(stats.events().len(), 2);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn request_derived_strings_never_reach_output_unescaped() {
    let stats = build(Stats::builder().slow_threshold(Duration::from_millis(1)));
    let app = with_stats(
        &stats,
        Router::new().route(
            "/x/{tail}",
            get(|stats: RequestStats| async move {
                stats.set_uri_set(EVIL);
                stats.event(EVIL).expect("valid");
                stats
                    .record_event(CustomEvent::new(EVIL).data(&EVIL))
                    .expect("valid");
                stats
                    .start_event("json")
                    .finish_with(&serde_json::json!({ EVIL: EVIL }));
                sleep(Duration::from_millis(5)).await;
                answer_id(stats).await
            }),
        ),
    );
    let id = id_of(&get_req(&app, "/x/%3Cscript%3Ealert(1)%3C%2Fscript%3E%0Anext").await);
    stats.log_event(EVIL);

    // Plain text: one line per event, no control character anywhere.
    let response = get_req(&app, "/stats/events").await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = text(&response);
    let events = stats.events();
    assert_eq!(events.len(), 3);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4 + events.len(), "one line per event: {body}");
    for line in &lines {
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
    assert_eq!(
        lines[2].trim_start(),
        format!(
            "1. {} <script>alert(1)</script>\u{FFFD}next, moments ago",
            events[0].instance
        )
    );
    assert!(lines[5].ends_with(
        "Finished GET /x/%3Cscript%3Ealert(1)%3C%2Fscript%3E%0Anext 200 in 0.005 seconds, moments ago"
    ));

    // JSON: valid, and no string carries a control character.
    for uri in [
        "/stats/events?format=json".to_owned(),
        "/stats/requests".to_owned(),
        format!("/stats/requests/{id}"),
        "/stats/data".to_owned(),
    ] {
        let doc = get_json(&app, &uri).await;
        assert_no_control_characters(&doc, &uri);
    }
    let detail = get_json(&app, &format!("/stats/requests/{id}")).await;
    let cleaned = "<script>alert(1)</script>\u{FFFD}next";
    assert_eq!(detail["uri_set"], format!("GET {cleaned}"));
    assert_eq!(detail["events"][0]["label"], cleaned);
    assert_eq!(detail["events"][1]["label"], cleaned);
    assert_eq!(
        detail["events"][1]["data"],
        r#""<script>alert(1)</script>\nnext""#
    );
    assert_eq!(
        detail["events"][2]["data"],
        r#"{"<script>alert(1)</script>\nnext":"<script>alert(1)</script>\nnext"}"#
    );

    // HTML: the label reaches the page (through the slow list), escaped.
    let response = get_req(&app, "/stats").await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = text(&response);
    assert!(
        !page.to_ascii_lowercase().contains("<script"),
        "unescaped script tag on the page"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the URI set label is shown, escaped"
    );
    assert!(page.contains("/x/%3Cscript%3Ealert(1)%3C%2Fscript%3E%0Anext"));
}

/// Bidirectional formatting and line or paragraph separators would reorder or split what the
/// page and the event stream show (`/x/\u{202E}gnp.exe` reads as `/x/exe.png`): they are
/// replaced like control characters, wherever a request-derived string is stored.
#[tokio::test(start_paused = true)]
async fn bidi_and_separator_characters_are_replaced_like_control_characters() {
    const HIDDEN: [char; 14] = [
        '\u{200E}', '\u{200F}', '\u{2028}', '\u{2029}', '\u{202A}', '\u{202B}', '\u{202C}',
        '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{061C}',
    ];
    let stats = build(Stats::builder());
    let app = with_stats(
        &stats,
        Router::new()
            .route(
                "/x/{tail}",
                get(|stats: RequestStats| async move {
                    stats.event("\u{2067}label\u{2069}").expect("an instant");
                    "ok"
                }),
            )
            .route(
                "/set",
                get(|stats: RequestStats| async move {
                    stats.set_uri_set("a\u{2028}b\u{202D}");
                    "ok"
                }),
            ),
    );
    let response = get_req(&app, "/x/\u{202E}gnp.exe").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = get_req(&app, "/set").await;
    assert_eq!(response.status(), StatusCode::OK);
    let path: String = HIDDEN.iter().collect();
    let response = get_req(&app, &format!("/p/{path}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    stats.log_event("deploy\u{2029}v2\u{202E}");

    // Newest first.
    let recent = stats.recent_requests();
    assert_eq!(recent.len(), 3);
    assert_eq!(recent[2].path, "/x/\u{FFFD}gnp.exe");
    assert_eq!(recent[2].events[0].label, "\u{FFFD}label\u{FFFD}");
    assert_eq!(recent[1].uri_set, "GET a\u{FFFD}b\u{FFFD}");
    assert_eq!(
        recent[0].path,
        format!("/p/{}", "\u{FFFD}".repeat(HIDDEN.len()))
    );
    assert!(
        event_messages(&stats).contains(&"deploy\u{FFFD}v2\u{FFFD}".to_owned()),
        "{:?}",
        event_messages(&stats)
    );

    let hidden = |s: &str| s.chars().find(|c| HIDDEN.contains(c));
    for uri in [
        "/stats",
        "/stats/events",
        "/stats/events?format=json",
        "/stats/requests",
        "/stats/data",
    ] {
        let response = get_req(&app, uri).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let body = text(&response);
        assert_eq!(hidden(&body), None, "{uri}: {body}");
    }
    let events = text(&get_req(&app, "/stats/events").await);
    assert!(events.contains("GET /x/\u{FFFD}gnp.exe"), "{events}");
}

/// A plain tower service (no axum) reaching its request through `RequestStats::current()`
/// and, with `request_extension(true)`, through the request extensions.
#[tokio::test(start_paused = true)]
async fn plain_services_reach_the_request_through_current_and_the_extension() {
    use tower::{service_fn, ServiceBuilder};

    for extension in [false, true] {
        let stats = build(Stats::builder().request_extension(extension));
        let service = ServiceBuilder::new()
            .layer(stats.layer())
            .service(service_fn(|req: Request<_>| async move {
                let from_extension = req.extensions().get::<RequestStats>().cloned();
                let current = RequestStats::current();
                current.event("from current").expect("an instant");
                if let Some(handle) = &from_extension {
                    handle.event("from the extension").expect("an instant");
                    assert_eq!(handle.id(), current.id());
                }
                Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                    Bytes::from_static(b"ok"),
                )))
            }));
        let response = service
            .oneshot(Request::new(http_body_util::Empty::<Bytes>::new()))
            .await
            .expect("infallible");
        response.into_body().collect().await.expect("body");

        let recent = stats.recent_requests();
        let labels: Vec<&str> = recent[0].events.iter().map(|e| e.label.as_str()).collect();
        if extension {
            assert_eq!(labels, ["from current", "from the extension"]);
        } else {
            assert_eq!(labels, ["from current"], "no extension unless asked for");
        }
    }
    // Outside a recorded request, the handle does nothing.
    let outside = RequestStats::current();
    assert!(!outside.is_recording());
    assert_eq!(outside.event("ignored"), Ok(()));
}
