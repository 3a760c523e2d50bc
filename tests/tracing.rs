//! Request timelines from `tracing` (feature `tracing`): spans and events of recorded requests
//! on their timelines, per-request call totals and call statistics across requests, as the
//! JSON, the pages and the metrics show them.
//!
//! Each test installs its own subscriber for its thread (`set_default`) and runs on a
//! current-thread runtime, so spawned tasks run on that thread too, outside the request's
//! future.

#![cfg(feature = "tracing")]

mod common;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::time::sleep;
use tower_stats::{Filter, RequestStats, Stats};
use tracing::{info, info_span, Instrument};
use tracing_subscriber::layer::SubscriberExt;

use common::http::{request, send};

/// Installs a subscriber with the stats layer for this thread until the guard is dropped.
fn subscribe(stats: &Stats) -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(tracing_subscriber::registry().with(stats.tracing_layer()))
}

fn with_stats(stats: &Stats, routes: Router) -> Router {
    routes.merge(stats.router()).layer(stats.layer())
}

async fn get_text(app: &Router, uri: &str) -> (StatusCode, String) {
    let response = send(app, request(Method::GET, uri)).await;
    let body = String::from_utf8(response.body().to_vec()).expect("utf-8");
    (response.status(), body)
}

async fn get_json(app: &Router, uri: &str) -> Value {
    let (status, body) = get_text(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: {actual} is not {expected}"
    );
}

/// A span with a field around two waits, an event inside it, a timed event, and a custom
/// event: each kind of entry once.
async fn traced(stats: RequestStats) -> String {
    async {
        sleep(Duration::from_millis(10)).await;
        info!(rows = 3, "loaded");
        sleep(Duration::from_millis(5)).await;
    }
    .instrument(info_span!("load_user", user = 7))
    .await;
    info!(target: "db::query", elapsed_ms = 4u64, summary = "SELECT users");
    let timer = stats.start_event("render");
    sleep(Duration::from_millis(2)).await;
    timer.finish();
    stats.id().expect("recorded").to_string()
}

#[tokio::test(start_paused = true)]
async fn spans_and_events_nest_on_the_timeline_with_their_source() {
    let stats = Stats::new();
    let _subscriber = subscribe(&stats);
    let app = with_stats(&stats, Router::new().route("/users/{id}", get(traced)));
    let (_, id) = get_text(&app, "/users/7").await;

    let record = get_json(&app, &format!("/stats/requests/{id}?format=json")).await;
    let events = record["events"].as_array().expect("events");
    let summary: Vec<(&str, &str, Option<u64>)> = events
        .iter()
        .map(|e| {
            (
                e["label"].as_str().unwrap_or_default(),
                e["source"].as_str().unwrap_or_default(),
                e["parent"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("load_user", "span", None),
            ("loaded", "event", Some(0)),
            ("SELECT users", "event", None),
            ("render", "manual", None),
        ],
        "{record}"
    );
    let span = &events[0];
    assert_eq!(span["target"], "tracing", "{span}");
    assert_eq!(span["data"], "user=7");
    assert_eq!(span["call"], "load_user");
    assert_eq!(span["timed"], true);
    assert_close(span["offset_seconds"].as_f64().unwrap_or(-1.0), 0.0, "span");
    assert_close(
        span["duration_seconds"].as_f64().unwrap_or(-1.0),
        0.015,
        "span",
    );
    let inner = &events[1];
    assert_eq!(inner["data"], "rows=3");
    assert_eq!(inner["timed"], false);
    assert_close(
        inner["offset_seconds"].as_f64().unwrap_or(-1.0),
        0.010,
        "event",
    );
    assert_close(
        inner["duration_seconds"].as_f64().unwrap_or(-1.0),
        0.0,
        "event",
    );
    // An event that carries its elapsed time ends when emitted, and started that long before.
    let query = &events[2];
    assert_eq!(query["call"], "db::query");
    assert_eq!(query["timed"], true);
    assert_close(
        query["offset_seconds"].as_f64().unwrap_or(-1.0),
        0.011,
        "query",
    );
    assert_close(
        query["duration_seconds"].as_f64().unwrap_or(-1.0),
        0.004,
        "query",
    );
    assert!(query.get("target").is_some());
    assert_eq!(
        events[3]["target"],
        Value::Null,
        "a manual event has no target"
    );

    // Per-request totals: every timed entry, by call name.
    let totals: Vec<(&str, u64)> = record["call_totals"]
        .as_array()
        .expect("call_totals")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default(),
                t["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(totals, [("db::query", 1), ("load_user", 1), ("render", 1)]);

    // The page shows the sources, the nesting and the totals.
    let (status, page) = get_text(&app, &format!("/stats/requests/{id}?format=html")).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "Call totals",
        "load_user",
        "user=7",
        "db::query",
        ">span<",
        ">event<",
        ">manual<",
    ] {
        assert!(
            page.contains(needle),
            "the request page shows {needle}: {page}"
        );
    }
}

/// Runs `n` spans named `query` (2 ms each) and one `cache` span.
async fn queries(n: usize) {
    for _ in 0..n {
        sleep(Duration::from_millis(2))
            .instrument(info_span!("query"))
            .await;
    }
    sleep(Duration::from_millis(1))
        .instrument(info_span!("cache"))
        .await;
}

#[tokio::test(start_paused = true)]
async fn spans_created_in_the_request_count_when_they_run_in_a_spawned_task() {
    let stats = Stats::new();
    let _subscriber = subscribe(&stats);
    let handler = || async {
        let job = info_span!("job");
        // Runs on the runtime, outside the request's future: counted through its span.
        let linked = tokio::spawn(
            async {
                sleep(Duration::from_millis(3)).await;
                sleep(Duration::from_millis(2))
                    .instrument(info_span!("step"))
                    .await;
                info!("done");
            }
            .instrument(job),
        );
        // A task spawned with no span of the request: not the request's.
        let unlinked = tokio::spawn(async {
            sleep(Duration::from_millis(1))
                .instrument(info_span!("elsewhere"))
                .await;
        });
        linked.await.expect("task");
        unlinked.await.expect("task");
        "ok"
    };
    let app = with_stats(&stats, Router::new().route("/spawn", get(handler)));
    assert_eq!(get_text(&app, "/spawn").await.0, StatusCode::OK);

    let record = &stats.recent_requests()[0];
    let entries: Vec<(&str, Option<usize>, f64)> = record
        .events
        .iter()
        .map(|e| (e.label.as_str(), e.parent, e.duration_seconds))
        .collect();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!((entries[0].0, entries[0].1), ("job", None));
    assert_close(entries[0].2, 0.005, "job");
    assert_eq!((entries[1].0, entries[1].1), ("step", Some(0)));
    assert_close(entries[1].2, 0.002, "step");
    assert_eq!((entries[2].0, entries[2].1), ("done", Some(0)));
    assert_close(record.events[1].offset_seconds, 0.003, "step offset");
}

#[tokio::test(start_paused = true)]
async fn the_timeline_keeps_its_cap_and_counts_what_it_dropped() {
    let stats = Stats::builder()
        .max_events_per_request(3)
        .build()
        .expect("valid");
    let _subscriber = subscribe(&stats);
    let app = with_stats(
        &stats,
        Router::new().route(
            "/many",
            get(|| async {
                queries(5).await;
                "ok"
            }),
        ),
    );
    get_text(&app, "/many").await;
    let record = &stats.recent_requests()[0];
    assert_eq!(record.events.len(), 3);
    assert_eq!(record.events_dropped, 3);
    assert!(record.events.iter().all(|e| e.label == "query"));
    // The calls it kept are the ones counted.
    assert_eq!(stats.snapshot().http.calls["query"].count, 3);
}

#[tokio::test(start_paused = true)]
async fn requests_that_are_not_recorded_keep_nothing() {
    let stats = Stats::builder()
        .exclude(Filter::new().path("/filtered"))
        .build()
        .expect("valid");
    let _subscriber = subscribe(&stats);
    let handler = || async {
        queries(2).await;
        "ok"
    };
    let dont_record = |stats: RequestStats| async move {
        stats.dont_record();
        queries(2).await;
        "ok"
    };
    let app = with_stats(
        &stats,
        Router::new()
            .route("/filtered", get(handler))
            .route("/dont", get(dont_record))
            .route("/paused", get(handler)),
    );
    get_text(&app, "/filtered").await;
    get_text(&app, "/dont").await;
    stats.pause(None).expect("http");
    get_text(&app, "/paused").await;
    stats.resume(None).expect("http");
    let snapshot = stats.snapshot();
    assert!(snapshot.http.calls.is_empty(), "{:?}", snapshot.http.calls);
    assert!(snapshot.http.recent_requests.is_empty());

    // Sampled out: counted, but no timeline and no calls.
    let sampled = Stats::builder()
        .record_fraction(0.0)
        .build()
        .expect("valid");
    let _subscriber = subscribe(&sampled);
    let app = with_stats(&sampled, Router::new().route("/s", get(handler)));
    get_text(&app, "/s").await;
    let snapshot = sampled.snapshot();
    assert_eq!(snapshot.http.requests_total, 1);
    assert!(snapshot.http.calls.is_empty());
}

/// The allocations of one span created, entered and closed in the handler.
async fn span_allocations(stats: RequestStats) -> String {
    // The subscriber's span slots and the timeline are allocated by a first span.
    info_span!("warm").in_scope(|| ());
    let info = allocation_counter::measure(|| {
        info_span!("measured").in_scope(|| ());
    });
    format!("{} {}", stats.is_recording(), info.count_total)
}

#[tokio::test(start_paused = true)]
async fn a_span_of_a_request_that_is_not_recorded_allocates_nothing() {
    let sampled_out = Stats::builder()
        .record_fraction(0.0)
        .build()
        .expect("valid");
    let recorded = Stats::new();
    for stats in [&sampled_out, &recorded] {
        let _subscriber = subscribe(stats);
        let app = with_stats(stats, Router::new().route("/a", get(span_allocations)));
        let (_, body) = get_text(&app, "/a").await;
        // A recorded request's span allocates nothing either: its timeline slot was reserved
        // by the first span, and its link goes to the layer's table, allocated with the layer.
        assert_eq!(body, "true 0");
    }
    assert_eq!(recorded.recent_requests()[0].events.len(), 2);
}

/// More spans open at once than the layer's table of links holds (4,096 entries).
const MANY_SPANS: usize = 5000;

#[tokio::test(start_paused = true)]
async fn more_spans_open_at_once_than_the_link_table_holds_all_land_on_the_timeline() {
    let stats = Stats::builder()
        .max_events_per_request(2 * MANY_SPANS + 1)
        .build()
        .expect("valid");
    let _subscriber = subscribe(&stats);
    let handler = || async {
        // A chain: each span created in the one before, all open at once.
        let mut chain: Vec<tracing::Span> = Vec::with_capacity(MANY_SPANS);
        for i in 0..MANY_SPANS {
            let span = match chain.last() {
                Some(parent) => info_span!(parent: parent, "chain", i),
                None => info_span!("chain", i),
            };
            chain.push(span);
        }
        // Side by side: as many again, each created in the chain's last span.
        let last = chain.last().cloned().expect("spans");
        let side: Vec<tracing::Span> = (0..MANY_SPANS)
            .map(|i| info_span!(parent: &last, "side", i))
            .collect();
        sleep(Duration::from_millis(3)).await;
        // Fields recorded later reach every span, and an event in the last one nests there.
        for span in chain.iter().chain(&side) {
            span.record("i", 0);
        }
        side.last().expect("spans").in_scope(|| info!("inside"));
        drop(side);
        sleep(Duration::from_millis(2)).await;
        // The chain closes from its innermost span out (each span's handle keeps it open
        // until then, so no span's closing closes its parent in turn).
        drop(last);
        while chain.pop().is_some() {}
        "ok"
    };
    let app = with_stats(&stats, Router::new().route("/many", get(handler)));
    assert_eq!(get_text(&app, "/many").await.0, StatusCode::OK);

    let record = &stats.recent_requests()[0];
    assert_eq!(record.events_dropped, 0);
    assert_eq!(record.events.len(), 2 * MANY_SPANS + 1);
    for (i, entry) in record.events.iter().take(MANY_SPANS).enumerate() {
        assert_eq!(entry.label, "chain");
        assert_eq!(entry.parent, i.checked_sub(1), "chain span {i}");
        assert!(!entry.open, "chain span {i} closed");
        assert_close(entry.duration_seconds, 0.005, "a chain span");
        assert_eq!(entry.data.as_deref(), Some(format!("i={i} i=0").as_str()));
    }
    for (i, entry) in record.events[MANY_SPANS..2 * MANY_SPANS].iter().enumerate() {
        assert_eq!(entry.label, "side");
        assert_eq!(entry.parent, Some(MANY_SPANS - 1), "side span {i}");
        assert!(!entry.open, "side span {i} closed");
        assert_close(entry.duration_seconds, 0.003, "a side span");
        assert_eq!(entry.data.as_deref(), Some(format!("i={i} i=0").as_str()));
    }
    let event = &record.events[2 * MANY_SPANS];
    assert_eq!(event.label, "inside");
    assert_eq!(event.parent, Some(2 * MANY_SPANS - 1));
    let calls = stats.snapshot().http.calls;
    assert_eq!(calls["chain"].count, MANY_SPANS as u64);
    assert_eq!(calls["side"].count, MANY_SPANS as u64);

    // Every link was let go: a second request's spans find room in the table again, and
    // allocate nothing for their links.
    let app = with_stats(&stats, Router::new().route("/a", get(span_allocations)));
    assert_eq!(get_text(&app, "/a").await.1, "true 0");
}

#[tokio::test(start_paused = true)]
async fn call_statistics_count_calls_per_name_and_per_uri_set() {
    let stats = Stats::new();
    let _subscriber = subscribe(&stats);
    let app = with_stats(
        &stats,
        Router::new()
            .route(
                "/three",
                get(|| async {
                    queries(3).await;
                    "ok"
                }),
            )
            .route(
                "/one",
                get(|| async {
                    queries(1).await;
                    "ok"
                }),
            )
            .route("/none", get(|| async { "ok" })),
    );
    for uri in ["/three", "/three", "/one", "/none"] {
        get_text(&app, uri).await;
    }
    let data = get_json(&app, "/stats/data").await;
    let calls = &data["namespaces"]["http"]["calls"];
    let query = &calls["query"];
    assert_eq!(query["count"], 7, "{calls}");
    assert_eq!(query["requests"], 3);
    assert_close(
        query["per_request"].as_f64().unwrap_or(0.0),
        7.0 / 3.0,
        "per request",
    );
    assert_close(
        query["total_seconds"].as_f64().unwrap_or(0.0),
        0.014,
        "total",
    );
    assert_close(query["avg_seconds"].as_f64().unwrap_or(0.0), 0.002, "avg");
    let p50 = query["p50_seconds"].as_f64().unwrap_or(0.0);
    assert!((p50 - 0.002).abs() <= 0.002 / 64.0, "p50 {p50}");
    assert_eq!(query["uri_sets"]["GET /three"]["count"], 6);
    assert_eq!(query["uri_sets"]["GET /three"]["requests"], 2);
    assert_eq!(query["uri_sets"]["GET /three"]["per_request"], 3.0);
    assert_eq!(query["uri_sets"]["GET /one"]["count"], 1);
    assert_eq!(calls["cache"]["count"], 3);
    assert_eq!(calls.as_object().map(|c| c.len()), Some(2));

    // The dashboard's call table, and the metrics.
    let (_, page) = get_text(&app, "/stats").await;
    assert!(page.contains("Calls"), "{page}");
    // Each call links to the requests that made it.
    assert!(
        page.contains(
            r#"<a href="./stats/requests?call=query" title="Its recent requests">query</a>"#
        ),
        "{page}"
    );
    let listed = get_json(&app, "/stats/requests?call=query&format=json").await;
    let paths: Vec<&str> = listed["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| r["path"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(paths, ["/one", "/three", "/three"]);
    let (_, metrics) = get_text(&app, "/stats/metrics").await;
    assert!(
        metrics.contains("tower_stats_http_calls_total{call=\"query\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tower_stats_http_call_requests_total{call=\"query\"} 3"),
        "{metrics}"
    );

    // Reset clears them; pause stops them.
    stats.reset(None).expect("http");
    assert!(stats.snapshot().http.calls.is_empty());
    stats.pause(None).expect("http");
    get_text(&app, "/three").await;
    assert!(stats.snapshot().http.calls.is_empty());
    stats.resume(None).expect("http");
    get_text(&app, "/one").await;
    assert_eq!(stats.snapshot().http.calls["query"].count, 1);
}

#[tokio::test(start_paused = true)]
async fn call_names_past_the_cap_are_counted_in_overflow() {
    let stats = Stats::builder().max_call_names(1).build().expect("valid");
    let _subscriber = subscribe(&stats);
    let app = with_stats(
        &stats,
        Router::new().route(
            "/q",
            get(|| async {
                queries(2).await;
                "ok"
            }),
        ),
    );
    get_text(&app, "/q").await;
    let calls = stats.snapshot().http.calls;
    let names: Vec<&String> = calls.keys().collect();
    assert_eq!(names, ["<overflow>", "query"]);
    assert_eq!(calls["<overflow>"].count, 1);
}

#[tokio::test(start_paused = true)]
async fn a_trace_layer_inside_the_stats_layer_puts_its_request_span_on_the_timeline() {
    let stats = Stats::new();
    let _subscriber = subscribe(&stats);
    let app = Router::new()
        .route(
            "/t",
            get(|| async {
                queries(1).await;
                "ok"
            }),
        )
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(stats.layer());
    get_text(&app, "/t").await;
    let record = &stats.recent_requests()[0];
    let entries: Vec<(&str, Option<usize>)> = record
        .events
        .iter()
        .map(|e| (e.label.as_str(), e.parent))
        .collect();
    // tower-http's own events of the request are inside its span too.
    assert_eq!(entries[0], ("request", None), "{entries:?}");
    assert!(entries.contains(&("query", Some(0))), "{entries:?}");
    assert!(
        entries.contains(&("finished processing request", Some(0))),
        "{entries:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn fields_are_capped_like_every_string() {
    let stats = Stats::builder().max_string_len(16).build().expect("valid");
    let _subscriber = subscribe(&stats);
    let app = with_stats(
        &stats,
        Router::new().route(
            "/long",
            get(|| async {
                let long = "x".repeat(10_000);
                info_span!("s", text = %long).in_scope(|| info!(more = %long, "{long}"));
                "ok"
            }),
        ),
    );
    get_text(&app, "/long").await;
    let record = &stats.recent_requests()[0];
    assert_eq!(record.events.len(), 2);
    assert_eq!(record.events[0].data.as_deref(), Some("text=xxxxxxxxxxx…"));
    assert_eq!(record.events[1].label, format!("{}…", "x".repeat(16)));
    assert_eq!(record.events[1].data.as_deref(), Some("more=xxxxxxxxxxx…"));
}

#[tokio::test(start_paused = true)]
async fn an_elapsed_time_that_is_not_a_number_is_data_of_an_instant() {
    let stats = Stats::new();
    let _subscriber = subscribe(&stats);
    let app = with_stats(
        &stats,
        Router::new().route(
            "/e",
            get(|| async {
                info!(elapsed = ?Duration::from_millis(3), "took");
                info!(elapsed = ?Duration::from_millis(3), elapsed_us = 2500u64, "timed");
                "ok"
            }),
        ),
    );
    get_text(&app, "/e").await;
    let record = &stats.recent_requests()[0];
    let took = &record.events[0];
    assert_eq!(
        (took.timed, took.data.as_deref()),
        (false, Some("elapsed=3ms"))
    );
    let timed = &record.events[1];
    assert!(timed.timed);
    assert_eq!(
        timed.data, None,
        "the number gives the time; the text is left out"
    );
    assert_close(timed.duration_seconds, 0.0025, "elapsed_us");
}

#[tokio::test(start_paused = true)]
async fn a_span_still_open_when_the_request_ends_is_shown_open_and_not_counted() {
    let stats = Stats::new();
    let _subscriber = subscribe(&stats);
    let app = with_stats(
        &stats,
        Router::new().route(
            "/detached",
            get(|| async {
                // Outlives the request: the response does not wait for it.
                tokio::spawn(sleep(Duration::from_millis(50)).instrument(info_span!("background")));
                let span = info_span!("query", rows = tracing::field::Empty);
                async {
                    sleep(Duration::from_millis(2)).await;
                }
                .instrument(span.clone())
                .await;
                span.record("rows", 3);
                drop(span);
                sleep(Duration::from_millis(3)).await;
                "ok"
            }),
        ),
    );
    get_text(&app, "/detached").await;
    let record = &stats.recent_requests()[0];
    let background = &record.events[0];
    assert_eq!(background.label, "background");
    assert!(background.open, "{background:?}");
    assert_close(
        background.duration_seconds,
        0.005,
        "runs to the request's end",
    );
    // Fields recorded after the span was created are added to its data.
    assert_eq!(record.events[1].data.as_deref(), Some("rows=3"));
    assert!(!record.events[1].open);
    let totals: Vec<&str> = record.call_totals.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(totals, ["query"]);
    let calls = stats.snapshot().http.calls;
    assert!(!calls.contains_key("background"), "{calls:?}");
    // The span closing after the request changes nothing.
    sleep(Duration::from_millis(100)).await;
    assert!(stats.recent_requests()[0].events[0].open);
}
