//! Heap allocations per request, counted on the test's own thread.
//!
//! Once a route is known, the layered app allocates the bare app's allocations, plus axum's
//! own cost of a `Router::layer`, measured here as tower-http's in-flight request counter (the
//! cheapest useful layer: +3 with axum 0.8, the clone of the boxed route service, its boxed
//! future and the response body re-boxed as `axum::body::Body`). The layer's own recording
//! (in-flight table, URI sets, histograms, windows, rings) allocates nothing, and its response
//! body takes the place of axum's re-boxing. A request without a body (`GET`) therefore costs
//! exactly the in-flight counter's +3; a request with a body costs one more, the box of the
//! wrapper that counts the bytes the handler reads.
//!
//! Counting uses `allocation-counter`, whose global allocator counts per thread: the other
//! tests of this binary, running on other threads, do not disturb the counts, and the requests
//! run on a current-thread runtime, on this thread. The first test sends them through
//! `oneshot`; the second through a real server, `axum::serve` on a loopback port, with a client
//! on the same thread that writes raw HTTP/1.1 and allocates nothing.

use axum::Router;
use tokio::runtime::Runtime;
use tower_stats::Stats;

mod common;

use common::app::{self, Route};

const WARM_UP: u64 = 200;
const MEASURED: u64 = 200;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Allocations per request of `route` through `app`, after a warm-up on the same route.
fn per_request(rt: &Runtime, app: &Router, route: Route) -> f64 {
    rt.block_on(async {
        for _ in 0..WARM_UP {
            app::send(app, route).await;
        }
    });
    let info = allocation_counter::measure(|| {
        rt.block_on(async {
            for _ in 0..MEASURED {
                app::send(app, route).await;
            }
        });
    });
    info.count_total as f64 / MEASURED as f64
}

#[test]
fn layered_allocates_only_axums_per_layer_cost_and_the_counted_request_body() {
    let rt = runtime();
    let stats = Stats::new();
    let (bare, floor, layered) = (app::bare(), app::in_flight(), app::layered(&stats));
    let mut failures = Vec::new();
    for route in [Route::Hello, Route::User, Route::Echo] {
        let b = per_request(&rt, &bare, route);
        let f = per_request(&rt, &floor, route);
        let l = per_request(&rt, &layered, route);
        println!(
            "{:<13} allocations/request: bare {b:.2}, in-flight counter {f:.2} (+{:.2}), \
             layered {l:.2} (+{:.2}; tower-stats itself {:+.2})",
            route.name(),
            f - b,
            l - b,
            l - f
        );
        // A few hundredths on top are window slots allocating the counters of a latency
        // octave the first time it is used (once per slot and octave, then reused).
        let counted_body = usize::from(route == Route::Echo);
        if l > f + counted_body as f64 + 0.1 {
            failures.push(format!(
                "{}: layered {l:.2} > in-flight counter {f:.2} + {counted_body} (request body box)",
                route.name()
            ));
        }
    }
    assert_eq!(
        stats.snapshot().http.requests_total,
        3 * (WARM_UP + MEASURED),
        "the layered app recorded every request"
    );
    assert!(failures.is_empty(), "over budget: {failures:?}");
}

/// Filters are matched on every request (a known route included): with include and exclude
/// rules on method, path and route configured, a request still allocates nothing of the
/// layer's own.
#[test]
fn a_configured_filter_allocates_nothing_per_request() {
    use tower_stats::Filter;

    let rt = runtime();
    let stats = Stats::builder()
        .exclude(Filter::new().path("/healthz"))
        .exclude(Filter::new().method("OPTIONS").route("/users/*"))
        .include(Filter::new().path("/*").method("!HEAD"))
        .include(Filter::new().route("<unmatched>"))
        .build()
        .expect("valid options");
    let (floor, filtered) = (app::in_flight(), app::layered(&stats));
    let mut failures = Vec::new();
    for route in [Route::Hello, Route::User, Route::Echo] {
        let f = per_request(&rt, &floor, route);
        let l = per_request(&rt, &filtered, route);
        println!(
            "{:<13} allocations/request: in-flight counter {f:.2}, layered with filters {l:.2} \
             (tower-stats itself {:+.2})",
            route.name(),
            l - f
        );
        let counted_body = usize::from(route == Route::Echo);
        if l > f + counted_body as f64 + 0.1 {
            failures.push(format!(
                "{}: layered with filters {l:.2} > in-flight counter {f:.2} + {counted_body}",
                route.name()
            ));
        }
    }
    assert_eq!(
        stats.snapshot().http.requests_total,
        3 * (WARM_UP + MEASURED),
        "the filters let every request through"
    );
    assert!(failures.is_empty(), "over budget: {failures:?}");
}

/// Reads one HTTP/1.1 response (head and `Content-Length` body) from `stream` into `buf`,
/// allocating nothing.
async fn read_response(stream: &mut tokio::net::TcpStream, buf: &mut [u8]) {
    use tokio::io::AsyncReadExt;
    let mut have = 0;
    loop {
        let n = stream
            .read(&mut buf[have..])
            .await
            .expect("read a response");
        assert!(n > 0, "the server closed the connection");
        have += n;
        let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let len = buf[..end]
            .split(|&b| b == b'\n')
            .find_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
                name.eq_ignore_ascii_case(b"content-length")
                    .then(|| std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok())
                    .flatten()
            })
            .unwrap_or(0usize);
        if have >= end + 4 + len {
            assert!(buf.starts_with(b"HTTP/1.1 200"), "a 200 response");
            return;
        }
    }
}

/// Allocations per request of `request` (raw HTTP/1.1 bytes) sent over one keep-alive
/// connection to `app` served by `axum::serve` on a loopback port, everything on this thread.
fn per_request_over_loopback(rt: &Runtime, app: Router, request: &[u8]) -> f64 {
    use tokio::io::AsyncWriteExt;
    let (mut stream, mut buf) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        (stream, vec![0u8; 64 * 1024])
    });
    let mut send = |n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                stream.write_all(request).await.expect("send a request");
                read_response(&mut stream, &mut buf).await;
            }
        });
    };
    send(WARM_UP);
    let info = allocation_counter::measure(|| send(MEASURED));
    info.count_total as f64 / MEASURED as f64
}

/// The same budget through a real server: hyper parses the request from its read buffer, so a
/// layer that kept a reference into that buffer (the request's path) past the request, or
/// allocated in the server's path, would show here and not in `oneshot`.
#[test]
fn over_loopback_the_layer_allocates_only_axums_per_layer_cost_and_the_counted_request_body() {
    let mut echo = b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 1024\r\n\r\n".to_vec();
    echo.extend_from_slice(&[b'x'; 1024]);
    let requests: [(&str, &[u8]); 3] = [
        ("GET /hello", b"GET /hello HTTP/1.1\r\nhost: test\r\n\r\n"),
        (
            "GET /users/{id}",
            b"GET /users/42 HTTP/1.1\r\nhost: test\r\n\r\n",
        ),
        ("POST /echo 1 KiB", &echo),
    ];
    let stats = Stats::new();
    let mut failures = Vec::new();
    for (name, request) in requests {
        // A fresh runtime per app: its server task ends with it.
        let b = per_request_over_loopback(&runtime(), app::bare(), request);
        let f = per_request_over_loopback(&runtime(), app::in_flight(), request);
        let l = per_request_over_loopback(&runtime(), app::layered(&stats), request);
        println!(
            "{name:<16} allocations/request over loopback: bare {b:.2}, in-flight counter {f:.2} \
             (+{:.2}), layered {l:.2} (+{:.2}; tower-stats itself {:+.2})",
            f - b,
            l - b,
            l - f
        );
        let counted_body = usize::from(name.starts_with("POST"));
        if l > f + counted_body as f64 + 0.1 {
            failures.push(format!(
                "{name}: layered {l:.2} > in-flight counter {f:.2} + {counted_body} (request body box)"
            ));
        }
    }
    assert_eq!(
        stats.snapshot().http.requests_total,
        3 * (WARM_UP + MEASURED),
        "the layered app recorded every request"
    );
    assert!(failures.is_empty(), "over budget: {failures:?}");
}
