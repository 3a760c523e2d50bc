//! What the stats layer costs, with criterion.
//!
//! ```not_rust
//! cargo bench --bench layer                 # everything (about 3 minutes)
//! cargo bench --bench layer -- request/     # one group: request, concurrent, histogram, report, merge
//! ```
//!
//! - `request/<route>/{bare,layered}`: one request through `oneshot` on a current-thread
//!   runtime, response body read to the end; the same app with and without `stats.layer()`.
//!   `mix` cycles `GET /hello`, `GET /users/{id}` and a 1 KiB `POST /echo`; on the mix, also
//!   tower-http's in-flight counter, a minimal per-route latency layer
//!   (`tests/common/minimal.rs`) and `TraceLayer` (no subscriber) for comparison.
//! - `concurrent/{bare,trace,layered}/<tasks>`: 1, 2 and 8 tasks sending the mix on a
//!   multi-thread runtime with 2 workers; the time shown is per request (wall time /
//!   requests). `trace` is tower-http's `TraceLayer` without a subscriber, for comparison.
//! - `histogram/record`: one `AtomicHistogram::record`.
//! - `report/*`: `stats.snapshot()`, the JSON, HTML and Prometheus renderers, and
//!   `GET /stats/data` and `GET /stats` end to end, with 256 URI sets, 100 slow requests and
//!   1,000 requests in flight; `report/snapshot_16_shards`: the snapshot with 16 write shards,
//!   every URI set written from 16 threads.
//! - `merge/*`: `Snapshot::merge` of 16 such instance snapshots (256 URI sets each), and the
//!   JSON encode (`serde_json::to_vec`) and checked decode (`Snapshot::from_json`) of one.
//! - `tracing/*` (with `--features tracing`): the layered app under a `tracing_subscriber`
//!   registry without (`registry`) and with (`traced`) the stats `tracing` layer: `mix`, no
//!   span in the handlers (time per request); `spans`, `GET /spans` whose handler opens 8
//!   spans (time per span: the request's time / 8; the layer's cost per span is the
//!   difference of the two).

// `criterion_group!` defines a public function without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;
use tower_stats::histogram::AtomicHistogram;
use tower_stats::report::html::{DashboardOptions, Formatting};
use tower_stats::report::{json, prometheus};
use tower_stats::{Snapshot, Stats};

#[path = "../tests/common/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

#[cfg(feature = "tracing")]
#[path = "../tests/common/traced.rs"]
#[allow(dead_code, unreachable_pub)]
mod traced;

use app::Route;

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Times `iters` requests of `route` (or of the mix) in one `block_on`.
fn run(rt: &Runtime, app: &Router, route: Option<Route>, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        match route {
            Some(route) => {
                for _ in 0..iters {
                    black_box(app::send(app, route).await);
                }
            }
            None => app::send_mix(app, iters, 0).await,
        }
        start.elapsed()
    })
}

fn request(c: &mut Criterion) {
    let rt = current_thread();
    let stats = Stats::new();
    let bare = app::bare();
    let layered = app::layered(&stats);
    for route in Route::ALL {
        for app in [&bare, &layered] {
            assert_eq!(rt.block_on(app::send(app, route)), route.expected_len());
        }
    }

    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    let routes = Route::ALL.into_iter().map(|r| (r.name(), Some(r)));
    for (name, route) in routes.chain([("mix", None)]) {
        for (variant, app) in [("bare", &bare), ("layered", &layered)] {
            group.bench_function(BenchmarkId::new(name, variant), |b| {
                b.iter_custom(|iters| run(&rt, app, route, iters));
            });
        }
    }
    // For comparison, on the mix: tower-http's in-flight counter, a minimal per-route latency
    // layer and `TraceLayer` without a subscriber.
    let peers = [
        ("in-flight", app::in_flight()),
        ("minimal", app::minimal()),
        ("trace", app::trace()),
    ];
    for (variant, app) in peers {
        group.bench_function(BenchmarkId::new("mix", variant), |b| {
            b.iter_custom(|iters| run(&rt, &app, None, iters));
        });
    }
    group.finish();
    assert!(stats.snapshot().http.requests_total > 0);
}

fn concurrent(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let stats = Stats::new();
    let bare = app::bare();
    let trace = app::trace();
    let layered = app::layered(&stats);

    let mut group = c.benchmark_group("concurrent");
    group.throughput(Throughput::Elements(1));
    for tasks in [1u32, 2, 8] {
        for (variant, app) in [("bare", &bare), ("trace", &trace), ("layered", &layered)] {
            group.bench_with_input(BenchmarkId::new(variant, tasks), &tasks, |b, &tasks| {
                // One iteration is one request per task, so the time shown is per request.
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        let handles: Vec<_> = (0..tasks)
                            .map(|t| {
                                let app = app.clone();
                                tokio::spawn(async move {
                                    app::send_mix(&app, iters, u64::from(t)).await;
                                })
                            })
                            .collect();
                        for handle in handles {
                            handle.await.expect("the task finishes");
                        }
                        start.elapsed() / tasks
                    })
                });
            });
        }
    }
    group.finish();
}

fn histogram(c: &mut Criterion) {
    let histogram = AtomicHistogram::new();
    let mut group = c.benchmark_group("histogram");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record", |b| {
        // Latencies spread from 1 µs to about 17 ms by a cheap LCG, so every bucket path runs.
        let mut x = 1u64;
        b.iter(|| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            histogram.record(black_box(1_000 + (x >> 50)));
        });
    });
    group.finish();
    black_box(histogram.count());
}

fn report(c: &mut Criterion) {
    let rt = current_thread();
    let stats = app::report_stats();
    let app = app::report_app(&stats);
    rt.block_on(app::fill_report_sizes(&stats, &app));
    let snapshot = stats.snapshot();
    let options = DashboardOptions::new("stats");
    let formatting = Formatting::new();

    let mut group = c.benchmark_group("report");
    group.bench_function("snapshot", |b| b.iter(|| stats.snapshot()));
    {
        // The same sizes with 16 write shards, every URI set written from 16 threads: a
        // snapshot adds up 16 parts of each set.
        let sharded = app::report_stats_with_shards(Stats::builder().shards(16));
        let sharded_app = app::report_app(&sharded);
        rt.block_on(app::fill_report_sizes(&sharded, &sharded_app));
        app::fill_every_shard(&sharded_app, 16);
        group.bench_function("snapshot_16_shards", |b| b.iter(|| sharded.snapshot()));
    }
    group.bench_function("json", |b| b.iter(|| json::render(black_box(&snapshot))));
    group.bench_function("html", |b| {
        b.iter(|| tower_stats::report::html::render(black_box(&snapshot), &options, &formatting));
    });
    group.bench_function("prometheus", |b| {
        b.iter(|| prometheus::render(black_box(&snapshot), prometheus::Format::Text));
    });
    for path in ["/stats/data", "/stats"] {
        group.bench_function(BenchmarkId::new("get", path), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let request = http::Request::get(path)
                            .body(axum::body::Body::empty())
                            .expect("valid request");
                        let response = tower::ServiceExt::oneshot(app.clone(), request)
                            .await
                            .unwrap_or_else(|e| match e {});
                        assert!(response.status().is_success());
                        let body = http_body_util::BodyExt::collect(response.into_body())
                            .await
                            .expect("the body is read");
                        black_box(body.to_bytes());
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

fn merge(c: &mut Criterion) {
    let rt = current_thread();
    let stats = app::report_stats();
    let app = app::report_app(&stats);
    rt.block_on(app::fill_report_sizes(&stats, &app));
    let snapshot = stats.snapshot();
    // Sixteen instances: the same figures under sixteen identities.
    let instances: Vec<Snapshot> = (0..16)
        .map(|i| {
            let mut s = snapshot.clone();
            s.server.instance = format!("instance-{i}");
            s.server.boot_id = format!("{i:016x}");
            s
        })
        .collect();
    let json = serde_json::to_vec(&snapshot).expect("serializes");
    eprintln!(
        "merge: one snapshot is {} bytes of JSON ({} URI sets)",
        json.len(),
        snapshot.http.uri_sets.len()
    );

    let mut group = c.benchmark_group("merge");
    group.bench_function("16x256", |b| {
        b.iter(|| Snapshot::merge(black_box(&instances)))
    });
    group.bench_function("encode", |b| {
        b.iter(|| serde_json::to_vec(black_box(&snapshot)).expect("serializes"));
    });
    group.bench_function("decode", |b| {
        b.iter(|| Snapshot::from_json(black_box(&json)).expect("reads back"));
    });
    group.finish();
}

/// With the `tracing` feature: the stats `tracing` layer against a subscriber without it.
#[cfg(feature = "tracing")]
fn tracing(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("tracing");
    // The mix with no span in the handlers: the layer installed costs nothing per request.
    group.throughput(Throughput::Elements(1));
    for (variant, with_layer) in [("registry", false), ("traced", true)] {
        let stats = Stats::new();
        let dispatch = traced::dispatch(with_layer.then_some(&stats));
        let app = app::layered(&stats);
        group.bench_function(BenchmarkId::new("mix", variant), |b| {
            b.iter_custom(|iters| {
                tracing::dispatcher::with_default(&dispatch, || run(&rt, &app, None, iters))
            });
        });
    }
    // GET /spans, 8 spans per request: the time per span is the difference / 8.
    group.throughput(Throughput::Elements(traced::SPANS_PER_REQUEST));
    for (variant, with_layer) in [("registry", false), ("traced", true)] {
        let stats = Stats::new();
        let dispatch = traced::dispatch(with_layer.then_some(&stats));
        let app = traced::spans_app(&stats);
        group.bench_function(BenchmarkId::new("spans", variant), |b| {
            b.iter_custom(|iters| {
                tracing::dispatcher::with_default(&dispatch, || {
                    rt.block_on(async {
                        let start = Instant::now();
                        traced::send_spans(&app, iters).await;
                        start.elapsed()
                    })
                })
            });
        });
    }
    group.finish();
}

#[cfg(not(feature = "tracing"))]
fn tracing(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = request, concurrent, histogram, report, merge, tracing
}
criterion_main!(benches);
