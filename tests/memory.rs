//! Memory stays bounded: the URI set table when every request asks for a new key, the
//! records when paths are long, and a request in flight costs under 1 KiB beyond what the
//! app itself holds for it, keeping no reference into the request's buffers.
//!
//! `benches/memory_growth.rs` measures the resident memory under one million requests to
//! distinct paths. The byte counts here come from `allocation-counter`, whose global
//! allocator counts per thread: each test runs its requests on its own thread, and what is
//! still allocated when a measured closure returns (`bytes_current`, negative when it freed
//! more than it allocated) is what the requests left held.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use http::{Request, Uri};
use tower::ServiceExt;
use tower_stats::{Stats, OVERFLOW};

mod common;

use common::app;

const CAP: usize = 256;
const REQUESTS: u64 = 50_000;

#[tokio::test(flavor = "current_thread")]
async fn distinct_paths_through_a_raw_path_hook_stay_within_the_key_cap() {
    let stats = Stats::builder()
        .max_uri_sets(CAP)
        .uri_set_with(|parts| Some(Cow::Owned(parts.uri.path().to_owned())))
        .build()
        .expect("valid options");
    let app = app::layered(&stats);
    for i in 0..REQUESTS {
        app::get_path(&app, &format!("/r/{i:x}")).await;
    }
    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, REQUESTS);
    assert!(
        http.uri_sets.len() <= CAP + 2,
        "{} URI set keys for a cap of {CAP}",
        http.uri_sets.len()
    );
    assert_eq!(http.uri_sets_overflowed, REQUESTS - CAP as u64);
    assert_eq!(http.uri_sets[OVERFLOW].count, REQUESTS - CAP as u64);
}

#[tokio::test(flavor = "current_thread")]
async fn distinct_unmatched_paths_share_one_key() {
    let stats = Stats::new();
    let app = app::layered(&stats);
    for i in 0..5_000u64 {
        app::get_path(&app, &format!("/r/{i:x}")).await;
    }
    let http = stats.snapshot().http;
    assert_eq!(http.uri_sets.len(), 1, "{:?}", http.uri_sets.keys());
    assert_eq!(http.uri_sets["GET <unmatched>"].count, 5_000);
}

/// The maximum length of a stored string, in characters (the default).
const MAX_STRING_LEN: usize = 256;

/// What a path longer than [`MAX_STRING_LEN`] characters is stored as: its first
/// [`MAX_STRING_LEN`] characters and an ellipsis.
fn capped(path: &str) -> String {
    let mut capped: String = path.chars().take(MAX_STRING_LEN).collect();
    capped.push('…');
    capped
}

/// A path of exactly `len` bytes: `/{prefix}/` then `x`s.
fn long_path(prefix: &str, len: usize) -> String {
    let mut path = format!("/{prefix}/");
    path.extend(std::iter::repeat_n('x', len - path.len()));
    path
}

/// `GET /held/{*rest}` never answers (and keeps nothing of its request); any other path is
/// a 404. With the stats layer over both when `stats` is given.
fn held_app(stats: Option<&Stats>) -> Router {
    let routes = Router::new().route("/held/{*rest}", get(std::future::pending::<&str>));
    let routes = match stats {
        Some(stats) => routes.layer(stats.layer()),
        None => routes,
    };
    routes.with_state(())
}

type Held = Pin<Box<dyn Future<Output = Result<http::Response<Body>, std::convert::Infallible>>>>;

/// Starts `request` through `app` and polls it once (routing, the layer's `call`, and the
/// handler, which never answers): the request is then in flight, held by the returned future.
fn start(app: &Router, request: Request<Body>) -> Held {
    let mut future: Held = Box::pin(app.clone().oneshot(request));
    let poll = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    assert!(matches!(poll, Poll::Pending), "the request is held open");
    future
}

/// A request whose URI is a slice of a read buffer of `buffer_len` bytes, as hyper hands
/// one over: the request line is parsed in the connection's buffer, and the path keeps a
/// reference to it. The buffer is only freed when nothing refers to it any more.
fn request_in_buffer(path: &str, buffer_len: usize) -> (Request<Body>, Bytes) {
    let mut buffer = vec![b' '; buffer_len.max(path.len())];
    buffer[..path.len()].copy_from_slice(path.as_bytes());
    let buffer = Bytes::from(buffer);
    let uri = Uri::from_maybe_shared(buffer.slice(..path.len())).expect("a valid path");
    let request = Request::get(uri).body(Body::empty()).expect("a request");
    (request, buffer)
}

/// 1,000 requests (404s) with 60,000-byte paths: the recent requests keep each path capped,
/// so what the store holds afterwards does not grow with the paths' length.
#[tokio::test(flavor = "current_thread")]
async fn long_paths_are_capped_when_stored() {
    const REQUESTS: usize = 1_000;
    const PATH_LEN: usize = 60_000;
    let stats = Stats::new();
    let app = app::layered(&stats);
    let paths: Vec<String> = (0..REQUESTS)
        .map(|i| long_path(&format!("{i:04}"), PATH_LEN))
        .collect();
    // A first request creates the URI set and the table's slot: not per request.
    app::get_path(&app, "/warm-up").await;
    let info = allocation_counter::measure(|| {
        futures_util::FutureExt::now_or_never(async {
            for path in &paths {
                app::get_path(&app, path).await;
            }
        })
        .expect("404s answer at once");
    });
    let held = info.bytes_current as f64 / REQUESTS as f64;
    println!("held by the store after a request with a {PATH_LEN}-byte path: {held:.0} bytes");
    assert!(
        held < 2_048.0,
        "{held:.0} bytes held per request: the path is kept whole"
    );

    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, REQUESTS as u64 + 1);
    let recent = stats.recent_requests();
    assert_eq!(recent.len(), REQUESTS, "the ring keeps the last 1,000");
    for (record, path) in recent.iter().zip(paths.iter().rev()) {
        assert_eq!(record.status, Some(404));
        assert_eq!(record.path, capped(path));
    }
}

/// Requests held open with 60,000-byte paths: the in-flight records keep each path capped.
#[tokio::test(flavor = "current_thread")]
async fn long_paths_in_flight_are_capped_when_stored() {
    const REQUESTS: usize = 200;
    const PATH_LEN: usize = 60_000;
    let stats = Stats::new();
    let app = held_app(Some(&stats));
    let paths: Vec<String> = (0..REQUESTS)
        .map(|i| long_path(&format!("held/{i:04}"), PATH_LEN))
        .collect();
    drop(start(&app, app_request("/held/warm-up")));
    let mut held = Vec::with_capacity(REQUESTS);
    let info = allocation_counter::measure(|| {
        for path in &paths {
            held.push(start(&app, app_request(path)));
        }
    });
    let per_request = info.bytes_current as f64 / REQUESTS as f64;
    println!("held per request in flight with a {PATH_LEN}-byte path: {per_request:.0} bytes");
    assert!(
        per_request < 2_048.0,
        "{per_request:.0} bytes held per request in flight: the path is kept whole"
    );

    let mut in_flight = stats.snapshot().http.in_flight;
    assert_eq!(in_flight.len(), REQUESTS);
    in_flight.sort_by(|a, b| a.path.cmp(&b.path));
    for (record, path) in in_flight.iter().zip(&paths) {
        assert_eq!(record.path, capped(path));
    }
    drop(held);
    assert!(stats.snapshot().http.in_flight.is_empty());
}

fn app_request(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("a request")
}

/// A request in flight keeps no reference into the request's buffers: once the handler
/// has let go of its request, the read buffer its path was parsed from is free, with the
/// query recorded or not.
#[tokio::test(flavor = "current_thread")]
async fn a_request_in_flight_keeps_no_reference_to_its_read_buffer() {
    for record_query in [false, true] {
        let stats = Stats::builder()
            .record_query(record_query)
            .build()
            .expect("valid options");
        let app = held_app(Some(&stats));
        let (request, buffer) = request_in_buffer("/held/1?q=2", 16 * 1024);
        assert!(
            !buffer.is_unique(),
            "the request's path refers to the buffer"
        );
        let held = start(&app, request);
        let in_flight = stats.snapshot().http.in_flight;
        assert_eq!(in_flight.len(), 1);
        let expected = if record_query {
            "/held/1?q=2"
        } else {
            "/held/1"
        };
        assert_eq!(in_flight[0].path, expected);
        assert!(
            buffer.is_unique(),
            "the in-flight record keeps the request's read buffer alive (record_query {record_query})"
        );
        drop(held);
    }
}

/// The heap held per request in flight, with the layer and without: 5,000 requests held
/// open, each parsed from a read buffer of its own as a server does. With the layer, a
/// request costs under 1 KiB more than without it (the in-flight record, its share of the
/// table, the layer's part of the request's future), and no read buffer stays alive.
#[test]
fn a_request_in_flight_costs_under_1_kib_over_bare() {
    const REQUESTS: usize = 5_000;
    const BUFFER: usize = 16 * 1024;
    let held_per_request = |app: &Router| {
        let requests: Vec<Request<Body>> = (0..REQUESTS)
            .map(|i| request_in_buffer(&format!("/held/{i}"), BUFFER).0)
            .collect();
        // The first request creates the route's URI set.
        drop(start(app, request_in_buffer("/held/warm-up", BUFFER).0));
        let mut held = Vec::new();
        let info = allocation_counter::measure(|| {
            held.reserve_exact(REQUESTS);
            for request in requests {
                held.push(start(app, request));
            }
        });
        drop(held);
        // The read buffers let go of count as freed (negative), with the layer or without.
        info.bytes_current as f64 / REQUESTS as f64
    };
    let bare = held_per_request(&held_app(None));
    let stats = Stats::new();
    let layered = held_per_request(&held_app(Some(&stats)));
    println!(
        "heap held per request in flight: bare {bare:.0} bytes, layered {layered:.0} bytes \
         ({:+.0} bytes)",
        layered - bare
    );
    assert_eq!(stats.snapshot().http.requests_total, REQUESTS as u64 + 1);
    assert!(
        layered - bare < 1_024.0,
        "a request in flight costs {:.0} bytes more with the layer",
        layered - bare
    );
}
