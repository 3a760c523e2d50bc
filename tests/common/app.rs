//! The app every performance measurement drives: the same routes, bare or with the layer.
//!
//! A module of `tests/common/` (`tests/alloc.rs`, `tests/memory.rs`), and included with
//! `#[path]` by the benchmark programs, so that every figure is measured on the same app.

use std::borrow::Cow;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use http::{Method, Request, Uri};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_stats::Stats;

#[path = "minimal.rs"]
pub mod minimal;

/// The 1 KiB body of `POST /echo`.
pub static PAYLOAD: [u8; 1024] = [b'x'; 1024];

/// The chunks of `GET /stream`, sent without `Content-Length`.
pub static CHUNKS: [&[u8]; 4] = [b"chunk 0\n", b"chunk 1\n", b"chunk 2\n", b"chunk 3\n"];

/// The routes, without the layer.
pub fn routes() -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/users/{id}", get(user))
        .route("/echo", post(echo))
        .route("/stream", get(stream))
}

/// Turns every handler into a route once, as `axum::serve` does (`Router::with_state(())`);
/// without it, a `Router` called through `oneshot` converts the matched handler, and applies
/// every `Router::layer` to it, again on each request.
pub fn ready(app: Router) -> Router {
    app.with_state(())
}

/// The app without the stats layer.
pub fn bare() -> Router {
    ready(routes())
}

/// The same app with `stats.layer()` over every route (404s included).
pub fn layered(stats: &Stats) -> Router {
    ready(routes().layer(stats.layer()))
}

/// The same app with tower-http's in-flight request counter: the cheapest useful
/// `Router::layer`, the floor of any such layer (it wraps the response body).
pub fn in_flight() -> Router {
    let (layer, _counter) = tower_http::metrics::InFlightRequestsLayer::pair();
    ready(routes().layer(layer))
}

/// The same app with a minimal per-route latency layer (`minimal.rs`): counters, one
/// histogram and two clock reads, the least that any layer timing requests per route does.
pub fn minimal() -> Router {
    ready(routes().layer(minimal::MinimalLayer))
}

/// The same app with tower-http's `TraceLayer` and no `tracing` subscriber.
pub fn trace() -> Router {
    ready(routes().layer(tower_http::trace::TraceLayer::new_for_http()))
}

/// The app of a variant name: `bare`, `in-flight`, `minimal`, `trace` or `layered` (with
/// `stats`).
pub fn variant(name: &str, stats: &Stats) -> Option<Router> {
    match name {
        "bare" => Some(bare()),
        "in-flight" => Some(in_flight()),
        "minimal" => Some(minimal()),
        "trace" => Some(trace()),
        "layered" => Some(layered(stats)),
        #[cfg(feature = "redis")]
        "layered-redis" => Some(layered(stats)),
        _ => None,
    }
}

/// The store a variant records into: with the `redis` feature, `layered-redis` has Redis
/// configured (a port where nothing listens, and an interval longer than any run, so that its
/// publishing thread tries once, at start, in every run alike).
pub fn variant_stats(name: &str) -> Stats {
    #[cfg(feature = "redis")]
    if name == "layered-redis" {
        let unused = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or(1, |a| a.port());
        return Stats::builder()
            .redis(
                tower_stats::RedisOptions::new(format!("redis://127.0.0.1:{unused}/"))
                    .publish_interval(std::time::Duration::from_secs(3600))
                    .retention(std::time::Duration::from_secs(3 * 3600)),
            )
            .build()
            .expect("valid options");
    }
    let _ = name;
    Stats::new()
}

async fn hello() -> &'static str {
    "Hello, world!\n"
}

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}\n")
}

async fn echo(body: Bytes) -> Bytes {
    body
}

async fn stream() -> Body {
    Body::from_stream(futures_util::stream::iter(
        CHUNKS
            .iter()
            .map(|c| Ok::<_, Infallible>(Bytes::from_static(c))),
    ))
}

/// One of the benchmarked requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /hello`.
    Hello,
    /// `GET /users/{id}` (as `/users/42`).
    User,
    /// `POST /echo` with a 1 KiB body.
    Echo,
    /// `GET /stream`, four chunks, no `Content-Length`.
    Stream,
}

impl Route {
    /// Every route, in a fixed order.
    pub const ALL: [Self; 4] = [Self::Hello, Self::User, Self::Echo, Self::Stream];

    /// The mix of the performance budget, cycled: `GET /hello`, `GET /users/{id}`,
    /// 1 KiB `POST /echo`.
    pub const MIX: [Self; 3] = [Self::Hello, Self::User, Self::Echo];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hello => "get_hello",
            Self::User => "get_user",
            Self::Echo => "post_echo_1k",
            Self::Stream => "get_stream",
        }
    }

    /// The bytes the response body must have.
    pub fn expected_len(self) -> usize {
        match self {
            Self::Hello => "Hello, world!\n".len(),
            Self::User => "user 42\n".len(),
            Self::Echo => PAYLOAD.len(),
            Self::Stream => CHUNKS.iter().map(|c| c.len()).sum(),
        }
    }

    /// The request. The URI is static and the body borrowed, so building it allocates as
    /// little as a server's parsed request does.
    pub fn request(self) -> Request<Body> {
        let (method, uri, body) = match self {
            Self::Hello => (Method::GET, "/hello", Body::empty()),
            Self::User => (Method::GET, "/users/42", Body::empty()),
            Self::Echo => (
                Method::POST,
                "/echo",
                Body::from(Bytes::from_static(&PAYLOAD)),
            ),
            Self::Stream => (Method::GET, "/stream", Body::empty()),
        };
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = Uri::from_static(uri);
        request
    }
}

/// Sends `route` through `app` with `oneshot` and reads the whole response body; returns its
/// length.
pub async fn send(app: &Router, route: Route) -> usize {
    let response = app
        .clone()
        .oneshot(route.request())
        .await
        .unwrap_or_else(|e| match e {});
    // Frame by frame rather than `collect`, so the harness itself allocates nothing here.
    let mut body = response.into_body();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("the body is read");
        len += frame.data_ref().map_or(0, Bytes::len);
    }
    len
}

/// Sends `GET path` and reads the whole response body.
pub async fn get_path(app: &Router, path: &str) {
    let request = Request::get(path)
        .body(Body::empty())
        .expect("valid request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    response
        .into_body()
        .collect()
        .await
        .expect("the body is read");
}

/// Sends `n` requests of the mix, starting at position `offset` of the cycle.
pub async fn send_mix(app: &Router, n: u64, offset: u64) {
    for i in offset..offset + n {
        let route = Route::MIX[(i % Route::MIX.len() as u64) as usize];
        std::hint::black_box(send(app, route).await);
    }
}

/// URI sets in the report-size setup: `GET /hang` plus 255 hook labels.
pub const REPORT_URI_SETS: usize = 256;
/// Slow requests in the report-size setup (the default slow list capacity).
pub const REPORT_SLOW: usize = 100;
/// In-flight requests in the report-size setup.
pub const REPORT_IN_FLIGHT: usize = 1_000;

/// A store where every finished request is slow (threshold 1 ns) and a hook labels each
/// `/set/{n}` path as its own URI set.
pub fn report_stats() -> Stats {
    report_stats_with_shards(tower_stats::Stats::builder())
}

/// [`report_stats`] built from `builder` (its number of write shards, say).
pub fn report_stats_with_shards(builder: tower_stats::StatsBuilder) -> Stats {
    builder
        .slow_threshold(Duration::from_nanos(1))
        .uri_set_with(|parts| {
            let path = parts.uri.path();
            // The parked requests share a set with finished ones, so that every key is listed.
            if path == "/hang" {
                return Some(Cow::Borrowed("/set/0"));
            }
            path.starts_with("/set/")
                .then(|| Cow::Owned(path.to_owned()))
        })
        .build()
        .expect("valid options")
}

/// The routes plus `GET /hang` (never answers) and the stats router, with the layer.
pub fn report_app(stats: &Stats) -> Router {
    ready(
        routes()
            .route("/hang", get(std::future::pending::<&'static str>))
            .merge(stats.router())
            .layer(stats.layer()),
    )
}

/// Brings `stats` to the sizes of the render budget: [`REPORT_IN_FLIGHT`] requests in flight
/// (tasks spawned on the current runtime, parked forever in `/hang`), [`REPORT_URI_SETS`]
/// URI sets and [`REPORT_SLOW`] slow requests.
pub async fn fill_report_sizes(stats: &Stats, app: &Router) {
    for _ in 0..REPORT_IN_FLIGHT {
        let app = app.clone();
        tokio::spawn(async move {
            let request = Request::get("/hang")
                .body(Body::empty())
                .expect("valid request");
            let _never = app.oneshot(request).await;
        });
    }
    while (stats.snapshot().http.requests_in_flight as usize) < REPORT_IN_FLIGHT {
        tokio::task::yield_now().await;
    }
    for n in 0..REPORT_URI_SETS {
        get_path(app, &format!("/set/{n}")).await;
    }
    let http = stats.snapshot().http;
    assert_eq!(http.in_flight.len(), REPORT_IN_FLIGHT, "in flight");
    assert_eq!(http.uri_sets.len(), REPORT_URI_SETS, "URI sets");
    assert_eq!(http.slow_requests.len(), REPORT_SLOW, "slow requests");
}

/// Sends `GET /set/{n}` for every report URI set from each of `threads` threads, each with a
/// current-thread runtime of its own: with as many write shards, every set then has a part in
/// every shard, which a snapshot adds up.
pub fn fill_every_shard(app: &Router, threads: usize) {
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let app = app.clone();
            scope.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(async {
                    for n in 0..REPORT_URI_SETS {
                        get_path(&app, &format!("/set/{n}")).await;
                    }
                });
            });
        }
    });
}
