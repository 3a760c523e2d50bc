//! Many threads recording into the same routes at once: every count, sum and histogram a
//! snapshot shows is exact, whichever write shard each request went to, and request ids are
//! unique and increase per thread.
//!
//! Requests go through `oneshot` on an axum app with the stats layer, from OS threads that
//! each run a current-thread runtime (more threads than shards, so that some shards are
//! shared) and from the workers of a multi-thread runtime.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use axum::Router;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_stats::{RequestStats, Snapshot, Stats};

/// Ids seen by the handlers, with the OS thread each handler ran on.
type Seen = Arc<Mutex<Vec<(ThreadId, u64)>>>;

const BODY: &[u8] = b"0123456789abcdef";

fn app(stats: &Stats, seen: &Seen) -> Router {
    // Each handler notes its request's id and the thread it runs on.
    let note = |seen: &Seen| {
        let seen = Arc::clone(seen);
        move |request: RequestStats| {
            if let Some(id) = request.id() {
                seen.lock().unwrap().push((std::thread::current().id(), id));
            }
        }
    };
    let (hello, echo, fail) = (note(seen), note(seen), note(seen));
    Router::new()
        .route(
            "/hello",
            get(move |request: RequestStats| async move {
                hello(request);
                "hello"
            }),
        )
        .route(
            "/echo",
            post(move |request: RequestStats, body: Bytes| async move {
                echo(request);
                body
            }),
        )
        .route(
            "/fail",
            get(move |request: RequestStats| async move {
                fail(request);
                (StatusCode::INTERNAL_SERVER_ERROR, "no")
            }),
        )
        .merge(stats.router())
        .layer(stats.layer())
}

fn stats(shards: usize) -> Stats {
    Stats::builder()
        .shards(shards)
        .recent_capacity(64)
        .request_extension(true)
        .build()
        .expect("valid options")
}

/// The request number `i` of a sender: `/hello`, `/echo` (16 bytes), `/fail` or a missing
/// route (404), in turn.
fn request(i: u64) -> Request<Body> {
    let (method, uri, body) = match i % 4 {
        0 => (Method::GET, "/hello", Body::empty()),
        1 => (Method::POST, "/echo", Body::from(Bytes::from_static(BODY))),
        2 => (Method::GET, "/fail", Body::empty()),
        _ => (Method::GET, "/missing", Body::empty()),
    };
    Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .expect("valid request")
}

/// Sends requests `0..n` one after the other and returns the response bytes.
async fn send(app: &Router, n: u64) -> u64 {
    let mut written = 0u64;
    for i in 0..n {
        let response = app
            .clone()
            .oneshot(request(i))
            .await
            .unwrap_or_else(|e| match e {});
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        written += body.len() as u64;
    }
    written
}

/// What `senders` senders of `n` requests each must have produced.
fn check(snapshot: &Snapshot, senders: u64, n: u64, written: u64) {
    let http = &snapshot.http;
    let per_route = senders * n / 4;
    assert_eq!(http.requests_total, senders * n);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.status_2xx, 2 * per_route);
    assert_eq!(http.status_4xx, per_route);
    assert_eq!(http.status_5xx, per_route);
    assert_eq!(http.status_codes["404"], per_route);
    assert_eq!(http.bytes_read_total, per_route * BODY.len() as u64);
    assert_eq!(http.bytes_written_total, written);
    assert_eq!(http.latency.total.count(), senders * n);

    let mut latency_sum = 0u64;
    for (key, status, read) in [
        ("GET /hello", (1, 0, 0), 0),
        ("POST /echo", (1, 0, 0), per_route * BODY.len() as u64),
        ("GET /fail", (0, 0, 1), 0),
        ("GET <unmatched>", (0, 1, 0), 0),
    ] {
        let set = &http.uri_sets[key];
        assert_eq!(set.count, per_route, "{key}");
        assert_eq!(set.latency.total.count(), per_route, "{key}");
        assert_eq!(set.status_2xx, status.0 * per_route, "{key}");
        assert_eq!(set.status_4xx, status.1 * per_route, "{key}");
        assert_eq!(set.status_5xx, status.2 * per_route, "{key}");
        assert_eq!(set.bytes_read, read, "{key}");
        // The Prometheus buckets, counted apart from the histogram, agree with it exactly.
        let counted: u64 = set
            .durations
            .iter()
            .filter_map(|d| d.cumulative.last())
            .sum();
        assert_eq!(counted, per_route, "{key}");
        let sum: u64 = set.durations.iter().map(|d| d.sum_nanos).sum();
        assert_eq!(sum, set.latency.total.sum_nanos(), "{key}");
        // The windows hold every request of the last minute, the same ones.
        let minute = &set.windows["1m"];
        assert_eq!(minute.count, per_route, "{key}");
        let merged = set
            .latency
            .quarters
            .iter()
            .fold(tower_stats::Histogram::new(), |mut h, p| {
                h.merge(&p.histogram);
                h
            });
        assert_eq!(
            merged, set.latency.total,
            "{key}: the periods add up to the total"
        );
        latency_sum += set.latency.total.sum_nanos();
    }
    assert_eq!(http.latency.total.sum_nanos(), latency_sum);
    assert_eq!(http.windows["1m"].count, senders * n);

    // The recent requests: the newest 64, each once.
    assert_eq!(http.recent_requests.len(), 64);
    let mut ids: Vec<&str> = http.recent_requests.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 64);
    let ends: Vec<f64> = http
        .recent_requests
        .iter()
        .filter_map(|r| r.end_time)
        .collect();
    assert_eq!(ends.len(), 64);
    assert!(ends.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

/// Ids are unique over every request that reached a handler (three in four), and increase
/// along each thread's requests when `increasing`.
fn check_ids(seen: &Seen, total: u64, increasing: bool) {
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len() as u64,
        total / 4 * 3,
        "every handled request had an id"
    );
    let mut ids: Vec<u64> = seen.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), seen.len(), "no id handed out twice");
    if increasing {
        let mut threads: Vec<ThreadId> = seen.iter().map(|(t, _)| *t).collect();
        threads.sort_by_key(|t| format!("{t:?}"));
        threads.dedup();
        for thread in threads {
            let own: Vec<u64> = seen
                .iter()
                .filter(|(t, _)| *t == thread)
                .map(|(_, id)| *id)
                .collect();
            assert!(own.windows(2).all(|w| w[0] < w[1]), "{thread:?}: {own:?}");
        }
    }
}

/// Sends `n` requests from each of `threads` OS threads, each with a current-thread runtime;
/// returns the response bytes.
fn from_threads(app: &Router, threads: usize, n: u64) -> u64 {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..threads)
            .map(|_| {
                let app = app.clone();
                scope.spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("a runtime")
                        .block_on(send(&app, n))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    })
}

#[test]
fn many_threads_on_the_same_routes_lose_and_double_count_nothing() {
    const THREADS: u64 = 8;
    const N: u64 = 2_000;
    let stats = stats(4);
    let seen = Seen::default();
    let app = app(&stats, &seen);
    let written = from_threads(&app, THREADS as usize, N);
    check(&stats.snapshot(), THREADS, N, written);
    check_ids(&seen, THREADS * N, true);

    // A reset zeroes every shard: what comes after is counted from zero, exactly.
    stats.reset(None).expect("http");
    let written = from_threads(&app, THREADS as usize, 400);
    check(&stats.snapshot(), THREADS, 400, written);
}

#[test]
fn the_workers_of_a_runtime_lose_and_double_count_nothing() {
    const TASKS: u64 = 16;
    const N: u64 = 1_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .expect("a runtime");
    let stats = stats(4);
    let seen = Seen::default();
    let app = app(&stats, &seen);
    let written: u64 = rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { send(&app, N).await })
            })
            .collect();
        let mut written = 0;
        for task in tasks {
            written += task.await.expect("the task finishes");
        }
        written
    });
    check(&stats.snapshot(), TASKS, N, written);
    // A task may move between workers, and so between shards: its ids are unique.
    check_ids(&seen, TASKS * N, false);
}

#[test]
fn one_shard_counts_the_same() {
    let stats = stats(1);
    let seen = Seen::default();
    let app = app(&stats, &seen);
    let written = from_threads(&app, 4, 500);
    check(&stats.snapshot(), 4, 500, written);
    check_ids(&seen, 2_000, true);
}
