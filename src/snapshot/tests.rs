//! Properties of the read model: merging two stores' snapshots is recording both stores'
//! requests into one; merging is commutative and associative; a snapshot survives JSON.

use std::time::Duration;

use axum::extract::{Path, Query};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use proptest::prelude::*;
use tower::ServiceExt;

use crate::clock::Clock;
use crate::registry::Combine;
use crate::{Snapshot, Stats};

/// Unix time of the stores' common start: not on a period boundary.
const ORIGIN_NANOS: u64 = 1_700_000_007_123_456_789;

/// One request: its route, status, processing time, the pause before it, and which of the
/// two stores gets it.
#[derive(Debug, Clone)]
struct Req {
    route: u8,
    status: u16,
    millis: u64,
    gap_millis: u64,
    to_first: bool,
}

fn req() -> impl Strategy<Value = Req> {
    (
        0u8..4,
        prop::sample::select(vec![200u16, 201, 302, 404, 499, 500, 503]),
        prop_oneof![0u64..5, 5u64..2_000],
        prop_oneof![0u64..100, 100u64..90_000],
        any::<bool>(),
    )
        .prop_map(|(route, status, millis, gap_millis, to_first)| Req {
            route,
            status,
            millis,
            gap_millis,
            to_first,
        })
}

#[derive(serde::Deserialize)]
struct Params {
    ms: u64,
    status: u16,
}

/// Sleeps, and records `n` calls (timed custom events) of two names with several durations.
async fn handler(
    Path(n): Path<u64>,
    Query(p): Query<Params>,
    stats: crate::RequestStats,
) -> StatusCode {
    let now = tokio::time::Instant::now();
    for i in 0..n {
        let call = crate::CustomEvent::new(format!("call{}", i % 2))
            .start(now)
            .end(now + Duration::from_micros(p.ms * 100 + i * 37));
        let _ = stats.record_event(call);
    }
    tokio::time::sleep(Duration::from_millis(p.ms)).await;
    StatusCode::from_u16(p.status).unwrap_or(StatusCode::OK)
}

fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/r/{n}", get(handler))
        .layer(stats.layer())
}

fn store(clock: Clock, name: &str) -> Stats {
    let stats = Stats::builder()
        .instance(name)
        .slow_threshold(Duration::from_millis(500))
        .slow_capacity(1000)
        .build_with_clock(clock)
        .expect("valid options");
    let ns = stats.namespace("shop").expect("namespace");
    ns.counter("orders", Combine::Sum).expect("counter");
    ns.counter("largest_basket", Combine::Max).expect("counter");
    ns.counter("smallest_basket", Combine::Min)
        .expect("counter");
    ns.text("region").expect("text");
    stats
}

async fn send(app: &Router, r: &Req) {
    let uri = format!("/r/{}?ms={}&status={}", r.route, r.millis, r.status);
    let request = http::Request::get(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let _ = http_body_util::BodyExt::collect(response.into_body()).await;
}

/// A one-thread runtime on a paused clock.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Runs `reqs` on a paused clock: each goes to one of the first two stores and, at the same
/// instants, to the third.
fn record(reqs: &[Req]) -> (Snapshot, Snapshot, Snapshot) {
    let runtime = paused_runtime();
    runtime.block_on(async {
        let clock = Clock::at(tokio::time::Instant::now(), ORIGIN_NANOS);
        let (a, b, both) = (store(clock, "a"), store(clock, "b"), store(clock, "both"));
        let (app_a, app_b, app_both) = (app(&a), app(&b), app(&both));
        for r in reqs {
            tokio::time::advance(Duration::from_millis(r.gap_millis)).await;
            let one = if r.to_first { &app_a } else { &app_b };
            tokio::join!(send(one, r), send(&app_both, r));
        }
        tokio::time::advance(Duration::from_millis(1_234)).await;
        (a.snapshot(), b.snapshot(), both.snapshot())
    })
}

/// What a request record is, whatever its id.
fn shape(records: &[crate::RequestRecord]) -> Vec<(String, Option<u16>, u64, u64)> {
    records
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.status,
                (r.start_time * 1e3).round() as u64,
                (r.end_time.unwrap_or(0.0) * 1e3).round() as u64,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn merging_two_stores_is_recording_both_into_one(reqs in prop::collection::vec(req(), 1..24)) {
        let (a, b, both) = record(&reqs);
        let merged = Snapshot::merge([&a, &b]);
        let (m, e) = (&merged.http, &both.http);
        prop_assert_eq!(merged.generated_at, both.generated_at);
        prop_assert_eq!(m.requests_total, e.requests_total);
        prop_assert_eq!(m.requests_errored, e.requests_errored);
        prop_assert_eq!(m.requests_aborted, e.requests_aborted);
        prop_assert_eq!(m.bytes_written_total, e.bytes_written_total);
        prop_assert_eq!(
            [m.status_1xx, m.status_2xx, m.status_3xx, m.status_4xx, m.status_5xx],
            [e.status_1xx, e.status_2xx, e.status_3xx, e.status_4xx, e.status_5xx]
        );
        prop_assert_eq!(&m.status_codes, &e.status_codes);
        prop_assert_eq!(m.requests_per_second, e.requests_per_second);
        prop_assert_eq!(m.processing_seconds_total, e.processing_seconds_total);
        prop_assert_eq!(
            [m.p50_seconds, m.p90_seconds, m.p99_seconds, m.p999_seconds],
            [e.p50_seconds, e.p90_seconds, e.p99_seconds, e.p999_seconds]
        );
        prop_assert_eq!(&m.latency, &e.latency);
        prop_assert_eq!(&m.windows, &e.windows);
        prop_assert_eq!(&m.requests_per_minute, &e.requests_per_minute);
        // Every URI set: counts, sums, minimum, maximum, quantiles, windows, status classes
        // and the Prometheus buckets; exemplars in the same buckets (which request of a
        // bucket each one shows may differ, and merged ids are qualified).
        let exemplars = |sets: &std::collections::BTreeMap<String, crate::UriSetSnapshot>| {
            let mut sets = sets.clone();
            let mut buckets = Vec::new();
            for (key, set) in &mut sets {
                for series in &mut set.durations {
                    for e in std::mem::take(&mut series.exemplars) {
                        buckets.push((key.clone(), series.status_code.clone(), e.bucket));
                    }
                }
            }
            (sets, buckets)
        };
        prop_assert_eq!(exemplars(&m.uri_sets), exemplars(&e.uri_sets));
        for set in m.uri_sets.values() {
            for e in set.durations.iter().flat_map(|s| &s.exemplars) {
                prop_assert!(e.request_id.contains('-'), "qualified: {}", e.request_id);
            }
        }
        // Calls by name and by URI set, with their histograms and quantiles.
        prop_assert_eq!(&m.calls, &e.calls);
        let calls: u64 = reqs.iter().map(|r| u64::from(r.route)).sum();
        prop_assert_eq!(m.calls.values().map(|c| c.count).sum::<u64>(), calls);
        prop_assert_eq!(shape(&m.slow_requests), shape(&e.slow_requests));
        prop_assert_eq!(shape(&m.recent_requests), shape(&e.recent_requests));
        let (m_events, e_events) = (merged.events(), both.events());
        prop_assert_eq!(m_events.len(), e_events.len());
        // The same events at the same times; at one instant, two instances' events may be
        // listed in another order than one store's.
        let text = |events: &[crate::StreamEvent]| -> Vec<(u64, String, String)> {
            let mut all: Vec<(u64, String, String)> = events
                .iter()
                .map(|e| ((e.time * 1e3).round() as u64, e.kind.clone(), e.message.clone()))
                .collect();
            all.sort();
            all
        };
        prop_assert_eq!(text(&m_events), text(&e_events));
        // Ids are qualified by instance: no two records share one.
        let mut ids: Vec<&String> = m.recent_requests.iter().map(|r| &r.id).collect();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), m.recent_requests.len());
    }

    #[test]
    fn merge_is_commutative_and_associative(
        reqs in prop::collection::vec(req(), 0..16),
        more in prop::collection::vec(req(), 0..16),
    ) {
        let (a, b, c) = record(&reqs);
        let (d, _, _) = record(&more);
        let ab = Snapshot::merge([&a, &b]);
        prop_assert_eq!(&ab, &Snapshot::merge([&b, &a]));
        let left = Snapshot::merge([&ab, &c, &d]);
        let bc = Snapshot::merge([&b, &c]);
        let right = Snapshot::merge([&a, &Snapshot::merge([&bc, &d])]);
        prop_assert_eq!(&left, &right);
        prop_assert_eq!(&left, &Snapshot::merge([&a, &b, &c, &d]));
        prop_assert_eq!(left.instances.len(), 4);
    }

    #[test]
    fn a_snapshot_survives_a_json_round_trip(reqs in prop::collection::vec(req(), 0..16)) {
        let (a, _, _) = record(&reqs);
        let json = serde_json::to_vec(&a).expect("serializes");
        let back = Snapshot::from_json(&json).expect("reads back");
        prop_assert_eq!(&back, &a);
        let merged = Snapshot::merge([&a, &back]);
        let json = serde_json::to_vec(&merged).expect("serializes");
        prop_assert_eq!(&Snapshot::from_json(&json).expect("reads back"), &merged);
    }
}

#[test]
fn application_values_combine_by_their_rule() {
    let runtime = paused_runtime();
    runtime.block_on(async {
        let clock = Clock::at(tokio::time::Instant::now(), ORIGIN_NANOS);
        let snapshots: Vec<Snapshot> = [(3u64, 7u64, "eu"), (5, 2, "us")]
            .iter()
            .enumerate()
            .map(|(i, (orders, basket, region))| {
                let stats = store(clock, &format!("i{i}"));
                let ns = stats.namespace("shop").expect("namespace");
                ns.counter("orders", Combine::Sum).expect("c").add(*orders);
                ns.counter("largest_basket", Combine::Max)
                    .expect("c")
                    .add(*basket);
                ns.counter("smallest_basket", Combine::Min)
                    .expect("c")
                    .add(*basket);
                ns.text("region").expect("t").set(*region);
                ns.gauge("queue", Combine::Sum).expect("g").set(10.0);
                stats.snapshot()
            })
            .collect();
        let merged = Snapshot::merge_instances([(&snapshots[0], true), (&snapshots[1], false)]);
        let shop = &merged.namespaces["shop"].values;
        assert_eq!(shop["orders"], 8);
        assert_eq!(shop["largest_basket"], 7);
        assert_eq!(shop["smallest_basket"], 2);
        assert_eq!(shop["queue"], 10.0, "a gauge counts live instances only");
        assert!(shop.get("region").is_none(), "texts are per instance");
        let regions: Vec<&serde_json::Value> = merged
            .instances
            .iter()
            .map(|i| &i.values["shop"]["region"])
            .collect();
        assert_eq!(regions, ["eu", "us"]);
        assert_eq!(
            merged.instances.iter().map(|i| i.live).collect::<Vec<_>>(),
            [true, false]
        );
    });
}

#[test]
fn uri_sets_past_the_cap_fold_into_overflow() {
    let runtime = paused_runtime();
    runtime.block_on(async {
        let clock = Clock::at(tokio::time::Instant::now(), ORIGIN_NANOS);
        let make = |route: &'static str, times: usize| async move {
            let stats = Stats::builder()
                .max_uri_sets(2)
                .build_with_clock(clock)
                .expect("options");
            let app = Router::new()
                .route(route, get(|| async { "ok" }))
                .layer(stats.layer());
            for _ in 0..times {
                let request = http::Request::get(route)
                    .body(axum::body::Body::empty())
                    .expect("request");
                let response = app.clone().oneshot(request).await.expect("infallible");
                let _ = http_body_util::BodyExt::collect(response.into_body()).await;
            }
            stats.snapshot()
        };
        let (a, b, c) = (
            make("/a", 3).await,
            make("/b", 2).await,
            make("/c", 1).await,
        );
        let merged = Snapshot::merge([&c, &a, &b]);
        let sets = &merged.http.uri_sets;
        let keys: Vec<&String> = sets.keys().collect();
        assert_eq!(keys, ["<overflow>", "GET /a", "GET /b"]);
        assert_eq!(
            sets["<overflow>"].count, 1,
            "the set with the fewest requests"
        );
        assert_eq!(sets["<overflow>"].status_2xx, 1);
        assert_eq!(merged.http.uri_sets_overflowed, 1);
        assert_eq!((sets["GET /a"].count, sets["GET /b"].count), (3, 2));
        assert_eq!(merged.http.requests_total, 6);
    });
}

#[test]
fn call_names_past_the_cap_fold_into_overflow() {
    let runtime = paused_runtime();
    runtime.block_on(async {
        let clock = Clock::at(tokio::time::Instant::now(), ORIGIN_NANOS);
        let make = |names: &'static [(&'static str, usize)]| async move {
            let stats = Stats::builder()
                .max_call_names(2)
                .build_with_clock(clock)
                .expect("options");
            let app = Router::new()
                .route(
                    "/calls",
                    get(move |stats: crate::RequestStats| async move {
                        for (name, times) in names {
                            for _ in 0..*times {
                                stats.start_event(*name).finish();
                            }
                        }
                    }),
                )
                .layer(stats.layer());
            let request = http::Request::get("/calls")
                .body(axum::body::Body::empty())
                .expect("request");
            let response = app.oneshot(request).await.expect("infallible");
            let _ = http_body_util::BodyExt::collect(response.into_body()).await;
            stats.snapshot()
        };
        let a = make(&[("a", 3), ("c", 1)]).await;
        let b = make(&[("b", 2), ("c", 1)]).await;
        let merged = Snapshot::merge([&b, &a]);
        let calls = &merged.http.calls;
        let names: Vec<&String> = calls.keys().collect();
        // c has 2 calls like b, and b wins the tie by name.
        assert_eq!(names, ["<overflow>", "a", "b"]);
        assert_eq!(calls["<overflow>"].count, 2);
        assert_eq!(calls["<overflow>"].requests, 2);
        assert_eq!(calls["<overflow>"].uri_sets["GET /calls"].count, 2);
        assert_eq!((calls["a"].count, calls["b"].count), (3, 2));
        assert_eq!(calls["a"].per_request, 3.0);
        assert_eq!(merged.http.calls, Snapshot::merge([&a, &b]).http.calls);
        // Read back, the document keeps its cap.
        let json = serde_json::to_vec(&merged).expect("serializes");
        assert_eq!(Snapshot::from_json(&json).expect("reads back"), merged);
    });
}
