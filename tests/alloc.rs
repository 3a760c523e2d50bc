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
//! run on a current-thread runtime, on this thread.

use axum::Router;
use tokio::runtime::Runtime;
use tower_stats::Stats;

#[path = "../benches/support/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use app::Route;

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
