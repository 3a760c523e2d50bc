//! Behaviour of the recording layer (SPEC §2), observed through `Stats::snapshot()`.
//!
//! Every request goes through `tower::ServiceExt::oneshot` or `ready().call()`; time comes from
//! tokio's paused clock, so every duration below is exact.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::{any, get};
use axum::Router;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::{header, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_stats::{HttpSnapshot, Outcome, Stats, UriSet, OVERFLOW};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Error = Box<dyn std::error::Error + Send + Sync>;

fn get_req(uri: &str) -> Request<Body> {
    request(Method::GET, uri)
}

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("valid request")
}

fn http(stats: &Stats) -> HttpSnapshot {
    stats.snapshot().http
}

/// Sends `req` through `app` and drains the response body; returns the status.
async fn fetch(app: &Router, req: Request<Body>) -> StatusCode {
    let response = app.clone().oneshot(req).await.expect("infallible router");
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .expect("body drains without error");
    status
}

type Frames = Vec<Result<Frame<Bytes>, Infallible>>;

/// Data frames of these sizes.
fn frames(sizes: &[usize]) -> Frames {
    sizes
        .iter()
        .map(|&n| Ok(Frame::data(Bytes::from(vec![b'x'; n]))))
        .collect()
}

/// A streamed body (no exact size, so no Content-Length) made of data frames of these sizes.
fn chunks(
    sizes: &[usize],
) -> StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>> {
    StreamBody::new(stream::iter(frames(sizes)))
}

/// A streamed body that yields frames of these sizes, then never ends.
fn chunks_then_pending(sizes: &[usize]) -> Body {
    Body::new(StreamBody::new(
        stream::iter(frames(sizes)).chain(stream::pending()),
    ))
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a value");
    assert!(
        (actual - expected).abs() < 1e-3,
        "expected {expected}, got {actual}"
    );
}

fn ok_text(text: &'static str) -> Response<Body> {
    Response::new(Body::from(text))
}

/// A response body whose first poll panics.
struct PanickingBody;

impl http_body::Body for PanickingBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        panic!("the response body panicked");
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

// ---------------------------------------------------------------------------------------------
// Counts, URI sets and timings
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn router_mix_counts_uri_sets_and_timings() {
    let stats = Stats::new();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move {
                sleep_ms(if id == 1 { 100 } else { 300 }).await;
                "a user"
            }),
        )
        .route("/cache", any(|| async { "purged" }))
        .layer(stats.layer());

    assert_eq!(fetch(&app, get_req("/users/1")).await, StatusCode::OK);
    assert_eq!(fetch(&app, get_req("/users/2")).await, StatusCode::OK);
    assert_eq!(
        fetch(&app, get_req("/no/such/page")).await,
        StatusCode::NOT_FOUND
    );
    let purge = Method::from_bytes(b"PURGE").expect("valid method");
    assert_eq!(fetch(&app, request(purge, "/cache")).await, StatusCode::OK);

    let http = http(&stats);
    assert_eq!(http.requests_total, 4);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.requests_aborted, 0);
    assert_eq!(http.requests_errored, 0);
    assert_eq!(http.status_2xx, 3);
    assert_eq!(http.status_4xx, 1);
    assert_eq!(http.status_codes["404"], 1);
    assert_eq!(http.status_codes["499"], 0);
    let tracked: Vec<&str> = http.status_codes.keys().map(String::as_str).collect();
    assert_eq!(tracked, ["404", "408", "499", "501"], "zeros included");
    assert_close(Some(http.processing_seconds_total), 0.4);

    let keys: Vec<&str> = http.uri_sets.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["GET /users/{id}", "GET <unmatched>", "_OTHER /cache"]
    );

    let users = &http.uri_sets["GET /users/{id}"];
    assert_eq!(users.count, 2);
    assert_eq!(users.status_2xx, 2);
    assert_close(users.min_seconds, 0.1);
    assert_close(users.max_seconds, 0.3);
    assert_close(Some(users.sum_seconds), 0.4);
    assert_close(Some(users.avg_seconds), 0.2);

    let unmatched = &http.uri_sets["GET <unmatched>"];
    assert_eq!(unmatched.count, 1);
    assert_eq!(unmatched.status_4xx, 1);
    assert_eq!(http.uri_sets["_OTHER /cache"].count, 1);

    // The same numbers in the JSON document.
    let json = serde_json::to_value(stats.snapshot()).expect("snapshot serializes");
    let ns = &json["namespaces"]["http"];
    assert_eq!(ns["requests_total"], 4);
    assert_eq!(ns["status_codes"]["404"], 1);
    assert_eq!(ns["uri_sets"]["GET /users/{id}"]["count"], 2);
    let avg = ns["uri_sets"]["GET /users/{id}"]["avg_seconds"]
        .as_f64()
        .expect("a number");
    assert_close(Some(avg), 0.2);
}

#[tokio::test]
async fn plain_service_fn_is_recorded_as_unmatched() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    }));

    let response = svc.oneshot(get_req("/anything/42")).await.expect("ok");
    response.into_body().collect().await.expect("drains");

    let http = http(&stats);
    assert_eq!(http.requests_total, 1);
    let keys: Vec<&str> = http.uri_sets.keys().map(String::as_str).collect();
    assert_eq!(keys, ["GET <unmatched>"]);
    assert_eq!(http.uri_sets["GET <unmatched>"].count, 1);
    assert_eq!(http.uri_sets["GET <unmatched>"].status_2xx, 1);
    assert_eq!(http.bytes_written_total, 5);
}

// ---------------------------------------------------------------------------------------------
// Application labels
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn uri_set_extension_and_hook_choose_the_set() {
    let stats = Stats::builder()
        .uri_set_with(|parts| match parts.uri.path() {
            "/api/a" | "/api/b" => Some("api".into()),
            "/evil" => Some("bad\nlabel\u{1b}[0m".into()),
            _ => None,
        })
        .build()
        .expect("valid options");
    let app = Router::new()
        .route("/users/{id}", get(|| async { "a user" }))
        .route("/api/a", get(|| async { "a" }))
        .route("/api/b", get(|| async { "b" }))
        .layer(stats.layer());

    // A `UriSet` extension wins over the matched route...
    let mut req = get_req("/users/1");
    req.extensions_mut().insert(UriSet::new("static files"));
    fetch(&app, req).await;
    // ...and over the hook.
    let mut req = get_req("/api/a");
    req.extensions_mut().insert(UriSet::new("from extension"));
    fetch(&app, req).await;
    // The hook wins over the matched route, and groups two routes in one set.
    fetch(&app, get_req("/api/a")).await;
    fetch(&app, get_req("/api/b")).await;
    // The hook returning `None` falls back to the matched route.
    fetch(&app, get_req("/users/2")).await;
    // A hook label with control characters is cleaned (even for an unmatched path).
    assert_eq!(fetch(&app, get_req("/evil")).await, StatusCode::NOT_FOUND);

    let http = http(&stats);
    let keys: Vec<&str> = http.uri_sets.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "GET /users/{id}",
            "GET api",
            "GET bad\u{FFFD}label\u{FFFD}[0m",
            "GET from extension",
            "GET static files",
        ]
    );
    assert_eq!(http.uri_sets["GET api"].count, 2);
    assert_eq!(http.uri_sets["GET /users/{id}"].count, 1);
    assert_eq!(http.uri_sets["GET static files"].count, 1);
    assert_eq!(http.uri_sets["GET from extension"].count, 1);
    assert!(http
        .uri_sets
        .keys()
        .all(|k| !k.chars().any(char::is_control)));
}

// ---------------------------------------------------------------------------------------------
// Bytes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bytes_read_counts_only_what_the_handler_read() {
    let stats = Stats::new();
    let svc = stats
        .layer()
        .layer(service_fn(|req: Request<Body>| async move {
            let mut body = req.into_body();
            let frame = body
                .frame()
                .await
                .expect("a first frame")
                .expect("no error");
            assert_eq!(frame.into_data().map(|d| d.len()).ok(), Some(512));
            drop(body); // the second frame is never read
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }));

    let req = Request::post("/upload")
        .body(Body::new(chunks(&[512, 512])))
        .expect("valid request");
    let response = svc.oneshot(req).await.expect("ok");
    response.into_body().collect().await.expect("drains");

    let http = http(&stats);
    assert_eq!(http.bytes_read_total, 512);
    assert_eq!(http.bytes_written_total, 2);
    let set = &http.uri_sets["POST <unmatched>"];
    assert_eq!(set.bytes_read, 512);
    assert_eq!(set.bytes_written, 2);
}

#[tokio::test]
async fn streamed_response_counts_real_bytes_written() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(chunks(&[100, 200, 300])))
    }));

    let response = svc.oneshot(get_req("/download")).await.expect("ok");
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
    assert_eq!(http(&stats).bytes_written_total, 0, "nothing polled yet");
    let body = response.into_body().collect().await.expect("drains");
    assert_eq!(body.to_bytes().len(), 600);

    let http = http(&stats);
    assert_eq!(http.bytes_written_total, 600);
    assert_eq!(http.bytes_read_total, 0);
    assert_eq!(http.uri_sets["GET <unmatched>"].bytes_written, 600);
    assert_eq!(http.uri_sets["GET <unmatched>"].count, 1);
}

#[tokio::test]
async fn exact_length_body_ends_at_is_end_stream_once() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    }));

    let response = svc.oneshot(get_req("/full")).await.expect("ok");
    let mut body = response.into_body();
    assert_eq!(http(&stats).requests_in_flight, 1);

    // Poll only the data frame: `Full` reports its end through `is_end_stream()`.
    let frame = body.frame().await.expect("a frame").expect("no error");
    assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"hello")));

    let snap = http(&stats);
    assert_eq!(snap.requests_in_flight, 0);
    assert_eq!(snap.uri_sets["GET <unmatched>"].count, 1);
    assert_eq!(snap.bytes_written_total, 5);
    assert_eq!(snap.requests_aborted, 0);

    // Polling on to the end, then dropping, counts nothing twice.
    assert!(body.frame().await.is_none());
    drop(body);
    let snap = http(&stats);
    assert_eq!(snap.requests_total, 1);
    assert_eq!(snap.requests_in_flight, 0);
    assert_eq!(snap.uri_sets["GET <unmatched>"].count, 1);
    assert_eq!(snap.status_2xx, 1);
    assert_eq!(snap.bytes_written_total, 5);
    assert_eq!(snap.requests_aborted, 0);
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn in_flight_until_the_body_is_drained() {
    let stats = Stats::new();
    let mut svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    }));
    assert_eq!(http(&stats).requests_in_flight, 0);

    let future = ServiceExt::<Request<Body>>::ready(&mut svc)
        .await
        .expect("ready")
        .call(get_req("/phase"));
    let snap = http(&stats);
    assert_eq!(snap.requests_total, 1);
    assert_eq!(snap.requests_in_flight, 1);
    assert_eq!(snap.in_flight[0].status, None);
    assert_eq!(snap.in_flight[0].outcome, Outcome::InFlight);
    assert_eq!(snap.in_flight[0].end_time, None);

    // A live record's processing time is the time elapsed at report time.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_close(Some(http(&stats).in_flight[0].processing_seconds), 2.0);

    let response = future.await.expect("ok");
    let snap = http(&stats);
    assert_eq!(snap.requests_in_flight, 1);
    assert_eq!(snap.in_flight[0].status, Some(200));
    // Its status is counted, and its set listed, when it ends.
    assert_eq!(snap.status_2xx, 0);
    assert!(!snap.uri_sets.contains_key("GET <unmatched>"));

    tokio::time::advance(Duration::from_secs(1)).await;
    response.into_body().collect().await.expect("drains");
    let snap = http(&stats);
    assert_eq!(snap.requests_in_flight, 0);
    assert!(snap.in_flight.is_empty());
    assert_eq!(snap.uri_sets["GET <unmatched>"].count, 1);
    // End is the end of the body, not the headers.
    assert_close(snap.uri_sets["GET <unmatched>"].max_seconds, 3.0);
}

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn future_dropped_before_headers_is_aborted_with_499() {
    let stats = Stats::new();
    let app = Router::new()
        .route("/hang", get(std::future::pending::<&'static str>))
        .layer(stats.layer());

    let result = tokio::time::timeout(Duration::from_secs(5), app.oneshot(get_req("/hang"))).await;
    assert!(result.is_err(), "the handler never answers");

    let http = http(&stats);
    assert_eq!(http.requests_total, 1);
    assert_eq!(http.requests_aborted, 1);
    assert_eq!(http.requests_errored, 0);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.status_codes["499"], 1);
    assert_eq!(http.status_4xx, 1);
    assert_eq!(http.uri_sets["GET /hang"].status_4xx, 1);
    // It took 5 s (over the default 1 s threshold), so its record is kept.
    assert_eq!(http.slow_requests.len(), 1);
    assert_eq!(http.slow_requests[0].outcome, Outcome::Aborted);
    assert_eq!(http.slow_requests[0].status, Some(499));
}

#[tokio::test(start_paused = true)]
async fn body_dropped_mid_stream_is_aborted_with_partial_bytes() {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_millis(10))
        .build()
        .expect("valid options");
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(chunks_then_pending(&[100])))
    }));

    let response = svc.oneshot(get_req("/feed")).await.expect("ok");
    let mut body = response.into_body();
    let frame = body.frame().await.expect("a frame").expect("no error");
    assert_eq!(frame.into_data().map(|d| d.len()).ok(), Some(100));
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(body);

    let http = http(&stats);
    assert_eq!(http.requests_aborted, 1);
    assert_eq!(http.requests_errored, 0);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.status_2xx, 1);
    assert_eq!(http.status_codes["499"], 0, "a status existed already");
    assert_eq!(http.bytes_written_total, 100);
    assert_eq!(http.slow_requests.len(), 1);
    let record = &http.slow_requests[0];
    assert_eq!(record.outcome, Outcome::Aborted);
    assert_eq!(record.bytes_written, 100);
    assert_eq!(record.status, Some(200));
    assert!(record.end_time.is_some());
    assert_close(Some(record.processing_seconds), 1.0);
}

#[tokio::test]
async fn inner_error_is_recorded_as_errored() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Err::<Response<Body>, Error>("backend unavailable".into())
    }));

    let result = svc.oneshot(get_req("/broken")).await;
    assert_eq!(
        result.err().map(|e| e.to_string()).as_deref(),
        Some("backend unavailable"),
        "the error is passed through unchanged"
    );

    let http = http(&stats);
    assert_eq!(http.requests_total, 1);
    assert_eq!(http.requests_errored, 1);
    assert_eq!(http.requests_aborted, 0);
    assert_eq!(http.requests_panicked, 0);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.uri_sets["GET <unmatched>"].errors, 1);
}

#[tokio::test]
async fn body_error_is_recorded_as_errored_with_partial_bytes() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        let frames: Vec<Result<Frame<Bytes>, Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"0123456789"))),
            Err("connection to backend lost".into()),
        ];
        Ok::<_, Infallible>(Response::new(StreamBody::new(stream::iter(frames))))
    }));

    let response = svc.oneshot(get_req("/proxy")).await.expect("ok");
    let result = response.into_body().collect().await;
    assert!(result.is_err());

    let http = http(&stats);
    assert_eq!(http.requests_errored, 1);
    assert_eq!(http.requests_aborted, 0);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.bytes_written_total, 10);
    assert_eq!(http.uri_sets["GET <unmatched>"].errors, 1);
    assert_eq!(http.uri_sets["GET <unmatched>"].bytes_written, 10);
}

#[tokio::test]
async fn trailers_frame_ends_the_request() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames: Frames = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::trailers(trailers)),
        ];
        // The stream never reports its end after the trailers: the trailers frame is it.
        let body = StreamBody::new(stream::iter(frames).chain(stream::pending()));
        Ok::<_, Infallible>(Response::new(body))
    }));

    let response = svc.oneshot(get_req("/grpc")).await.expect("ok");
    let mut body = response.into_body();
    assert!(body.frame().await.expect("data").expect("ok").is_data());
    assert_eq!(http(&stats).requests_in_flight, 1);
    assert!(body
        .frame()
        .await
        .expect("trailers")
        .expect("ok")
        .is_trailers());

    let snap = http(&stats);
    assert_eq!(snap.requests_in_flight, 0);
    assert_eq!(snap.uri_sets["GET <unmatched>"].count, 1);
    drop(body);
    let snap = http(&stats);
    assert_eq!(snap.requests_aborted, 0, "already ended at the trailers");
    assert_eq!(snap.bytes_written_total, 3);
}

/// Sends `/panic` (the service panics) on a spawned task, then `/ok`: the panic is recorded
/// as panicked and errored, nothing stays in flight, and the next request is recorded.
async fn panic_then_ok<S>(stats: &Stats, svc: S)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let join = tokio::spawn(svc.clone().oneshot(get_req("/panic"))).await;
    assert!(join.expect_err("the task panicked").is_panic());
    let snap = http(stats);
    assert_eq!(snap.requests_total, 1);
    assert_eq!(snap.requests_panicked, 1);
    assert_eq!(snap.requests_errored, 1);
    assert_eq!(snap.requests_aborted, 0);
    assert_eq!(snap.requests_in_flight, 0);

    let response = svc.oneshot(get_req("/ok")).await.expect("ok");
    response.into_body().collect().await.expect("drains");
    let snap = http(stats);
    assert_eq!(snap.requests_total, 2);
    assert_eq!(snap.requests_panicked, 1);
    assert_eq!(snap.requests_in_flight, 0);
    assert_eq!(snap.status_2xx, 1);
    assert_eq!(snap.bytes_written_total, 4);
}

#[tokio::test]
async fn panicking_handler_is_recorded_and_service_keeps_working() {
    let stats = Stats::new();
    let svc = stats
        .layer()
        .layer(service_fn(|req: Request<Body>| async move {
            if req.uri().path() == "/panic" {
                panic!("the handler panicked");
            }
            Ok::<_, Infallible>(ok_text("fine"))
        }));

    panic_then_ok(&stats, svc).await;
}

#[tokio::test]
async fn panic_in_inner_call_is_recorded_as_panicked() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|req: Request<Body>| {
        assert!(req.uri().path() != "/panic", "the inner call panicked");
        std::future::ready(Ok::<_, Infallible>(ok_text("fine")))
    }));

    panic_then_ok(&stats, svc).await;
}

#[tokio::test]
async fn panic_in_response_body_is_recorded_as_panicked() {
    let stats = Stats::new();
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(PanickingBody))
    }));

    let join = tokio::spawn(async move {
        let response = svc.oneshot(get_req("/body-panic")).await.expect("ok");
        let _ = response.into_body().collect().await;
    })
    .await;
    assert!(join.expect_err("the task panicked").is_panic());

    let http = http(&stats);
    assert_eq!(http.requests_total, 1);
    assert_eq!(http.requests_panicked, 1);
    assert_eq!(http.requests_errored, 1);
    assert_eq!(http.requests_aborted, 0);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.status_2xx, 1);
}

#[tokio::test]
async fn head_and_204_complete_without_polling_the_body() {
    let stats = Stats::new();
    let svc = stats
        .layer()
        .layer(service_fn(|req: Request<Body>| async move {
            // A body that does not know it is empty: only the method or status says so.
            let mut response = Response::new(chunks(&[]));
            if req.uri().path() == "/no-content" {
                *response.status_mut() = StatusCode::NO_CONTENT;
            }
            Ok::<_, Infallible>(response)
        }));

    let head = svc
        .clone()
        .oneshot(request(Method::HEAD, "/resource"))
        .await
        .expect("ok");
    let snap = http(&stats);
    assert_eq!(
        snap.requests_in_flight, 0,
        "a HEAD response ends at its headers"
    );
    drop(head);

    let no_content = svc.oneshot(get_req("/no-content")).await.expect("ok");
    assert_eq!(no_content.status(), StatusCode::NO_CONTENT);
    let snap = http(&stats);
    assert_eq!(
        snap.requests_in_flight, 0,
        "a 204 response ends at its headers"
    );
    drop(no_content);

    let snap = http(&stats);
    assert_eq!(snap.requests_total, 2);
    assert_eq!(snap.requests_aborted, 0);
    assert_eq!(snap.requests_errored, 0);
    assert_eq!(snap.requests_in_flight, 0);
    assert_eq!(snap.status_2xx, 2);
    assert_eq!(snap.uri_sets["HEAD <unmatched>"].count, 1);
    assert_eq!(snap.uri_sets["GET <unmatched>"].count, 1);
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn event_stream_is_counted_apart_from_latency() {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_millis(10))
        .build()
        .expect("valid options");
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
            .body(chunks(&[10, 20]))
            .expect("valid response");
        Ok::<_, Infallible>(response)
    }));

    let response = svc.oneshot(get_req("/events")).await.expect("ok");
    let snap = http(&stats);
    assert_eq!(snap.streams_total, 1);
    assert_eq!(snap.streams_open, 1);
    assert_eq!(snap.open_streams.len(), 1);
    assert!(snap.open_streams[0].stream);
    assert_eq!(snap.open_streams[0].path, "/events");
    assert_eq!(snap.requests_in_flight, 0);
    assert!(snap.in_flight.is_empty());

    tokio::time::advance(Duration::from_secs(60)).await;
    response.into_body().collect().await.expect("drains");

    let snap = http(&stats);
    assert_eq!(snap.requests_total, 1);
    assert_eq!(snap.streams_total, 1);
    assert_eq!(snap.streams_open, 0);
    assert!(snap.open_streams.is_empty());
    assert_eq!(snap.requests_in_flight, 0);
    assert_eq!(snap.status_2xx, 1);
    assert_eq!(snap.bytes_written_total, 30);
    assert!(
        snap.slow_requests.is_empty(),
        "streams stay out of the slow list"
    );
    assert_eq!(snap.processing_seconds_total, 0.0);
    let set = &snap.uri_sets["GET <unmatched>"];
    assert_eq!(set.count, 0, "streams stay out of the timings");
    assert_eq!(set.streams, 1);
    assert_eq!(set.min_seconds, None);
    assert_eq!(set.sum_seconds, 0.0);
    assert_eq!(set.status_2xx, 1);
}

// ---------------------------------------------------------------------------------------------
// Pause, resume, reset
// ---------------------------------------------------------------------------------------------

/// Sends `req` through `app` on its own task and drains the body; returns the status.
fn spawn_fetch(app: &Router, req: Request<Body>) -> tokio::task::JoinHandle<StatusCode> {
    let app = app.clone();
    tokio::spawn(async move { fetch(&app, req).await })
}

#[tokio::test(start_paused = true)]
async fn pause_and_resume_follow_cpstats() {
    let stats = Stats::new();
    let entered = Arc::new(AtomicUsize::new(0));
    let handler = {
        let entered = Arc::clone(&entered);
        move || {
            let entered = Arc::clone(&entered);
            async move {
                entered.fetch_add(1, Ordering::SeqCst);
                sleep_ms(100).await;
                "answer"
            }
        }
    };
    let app = Router::new()
        .route("/before", get(handler.clone()))
        .route("/during", get(handler.clone()))
        .route("/after", get(handler))
        .layer(stats.layer());

    // Started before the pause, finished after it: recorded.
    let before = spawn_fetch(&app, get_req("/before"));
    tokio::task::yield_now().await;
    assert_eq!(entered.load(Ordering::SeqCst), 1, "the request has started");
    assert_eq!(http(&stats).requests_in_flight, 1);
    stats.pause(Some("http")).expect("http exists");
    assert_eq!(stats.is_enabled("http"), Ok(false));

    // Reports keep working while paused.
    let snap = http(&stats);
    assert!(!snap.enabled);
    assert_eq!(snap.requests_total, 1);
    assert_eq!(snap.requests_in_flight, 1);
    let json = serde_json::to_value(stats.snapshot()).expect("serializes");
    assert_eq!(json["namespaces"]["http"]["enabled"], false);

    assert_eq!(before.await.expect("no panic"), StatusCode::OK);
    let snap = http(&stats);
    assert_eq!(snap.uri_sets["GET /before"].count, 1);
    assert_eq!(snap.requests_in_flight, 0);
    assert!(!snap.enabled);

    // Started while paused, finished after resuming: never recorded.
    let during = spawn_fetch(&app, get_req("/during"));
    tokio::task::yield_now().await;
    assert_eq!(entered.load(Ordering::SeqCst), 2, "the request has started");
    stats.resume(None).expect("all namespaces");
    assert_eq!(stats.is_enabled("http"), Ok(true));
    assert_eq!(during.await.expect("no panic"), StatusCode::OK);
    let snap = http(&stats);
    assert!(snap.enabled);
    assert_eq!(snap.requests_total, 1);
    assert_eq!(snap.requests_in_flight, 0);
    assert!(!snap.uri_sets.contains_key("GET /during"));
    assert_eq!(snap.status_2xx, 1);
    assert_eq!(snap.bytes_written_total, "answer".len() as u64);

    // Started after resuming: recorded.
    assert_eq!(fetch(&app, get_req("/after")).await, StatusCode::OK);
    let snap = http(&stats);
    assert_eq!(snap.requests_total, 2);
    assert_eq!(snap.uri_sets["GET /after"].count, 1);
    assert_close(snap.uri_sets["GET /after"].max_seconds, 0.1);
    assert_eq!(snap.uri_sets["GET /before"].count, 1, "nothing was reset");
    assert_eq!(snap.status_2xx, 2);
}

#[tokio::test(start_paused = true)]
async fn reset_zeroes_and_keeps_in_flight_requests() {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_millis(10))
        .build()
        .expect("valid options");
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                sleep_ms(50).await;
                "slow"
            }),
        )
        .route("/live", get(|| async { "live" }))
        .route("/hang", get(std::future::pending::<&'static str>))
        .layer(stats.layer());

    fetch(&app, get_req("/slow")).await;
    fetch(&app, get_req("/no-such-page")).await;
    let hang = tokio::time::timeout(
        Duration::from_secs(1),
        app.clone().oneshot(get_req("/hang")),
    );
    assert!(hang.await.is_err());
    let live = app.clone().oneshot(get_req("/live")).await.expect("ok");

    let before = http(&stats);
    assert_eq!(before.requests_total, 4);
    assert_eq!(before.requests_aborted, 1);
    // `/slow` (50 ms) and the aborted `/hang` (1 s) are both over the 10 ms threshold.
    assert_eq!(before.slow_requests.len(), 2);
    assert_eq!(before.requests_in_flight, 1);
    // `/slow` wrote its body; the 404 and the aborted `/hang` wrote nothing.
    assert_eq!(before.bytes_written_total, "slow".len() as u64);

    tokio::time::advance(Duration::from_secs(10)).await;
    stats.reset(None).expect("all namespaces");

    let after = http(&stats);
    assert_eq!(after.requests_total, 0);
    assert_eq!(after.requests_aborted, 0);
    assert_eq!(after.requests_errored, 0);
    assert_eq!(after.bytes_written_total, 0);
    assert_eq!(after.processing_seconds_total, 0.0);
    assert_eq!(after.status_2xx + after.status_4xx, 0);
    assert!(after.status_codes.values().all(|&n| n == 0));
    assert!(after.slow_requests.is_empty());
    assert!(after.uri_sets.is_empty());
    assert!(after.enabled);
    assert_eq!(after.requests_in_flight, 1, "live requests survive a reset");
    assert_eq!(after.in_flight[0].path, "/live");
    assert!(
        after.reset_time >= before.reset_time + 9.9,
        "reset_time moved from {} to {}",
        before.reset_time,
        after.reset_time
    );

    live.into_body().collect().await.expect("drains");
    let end = http(&stats);
    assert_eq!(end.requests_in_flight, 0);
    assert_eq!(
        end.uri_sets["GET /live"].count, 1,
        "recorded in the new period"
    );
    assert_eq!(end.uri_sets.len(), 1);
    assert_eq!(end.bytes_written_total, 4);
}

// ---------------------------------------------------------------------------------------------
// Slow list
// ---------------------------------------------------------------------------------------------

fn sleepy_app(stats: &Stats) -> Router {
    Router::new()
        .route(
            "/sleep/{ms}",
            get(|Path(ms): Path<u64>| async move {
                sleep_ms(ms).await;
                "done"
            }),
        )
        .layer(stats.layer())
}

#[tokio::test(start_paused = true)]
async fn slow_list_is_strict_bounded_and_oldest_first() {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_millis(100))
        .slow_capacity(3)
        .build()
        .expect("valid options");
    let app = sleepy_app(&stats);

    fetch(&app, get_req("/sleep/100")).await; // exactly at the threshold: not slow
    fetch(&app, get_req("/sleep/50")).await;
    assert!(http(&stats).slow_requests.is_empty());

    for ms in 101..=105 {
        fetch(&app, get_req(&format!("/sleep/{ms}"))).await;
    }

    let http = http(&stats);
    let paths: Vec<&str> = http.slow_requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/sleep/103", "/sleep/104", "/sleep/105"]);
    for (record, ms) in http.slow_requests.iter().zip([103.0, 104.0, 105.0]) {
        assert_close(Some(record.processing_seconds), ms / 1000.0);
        assert_eq!(record.outcome, Outcome::Completed);
        assert_eq!(record.status, Some(200));
        assert_eq!(record.uri_set, "GET /sleep/{ms}");
        assert_eq!(record.method, "GET");
        assert!(record.end_time.is_some());
    }
    assert_eq!(http.uri_sets["GET /sleep/{ms}"].count, 7);
}

#[tokio::test(start_paused = true)]
async fn zero_slow_threshold_disables_the_slow_list() {
    let stats = Stats::builder()
        .slow_threshold(Duration::ZERO)
        .build()
        .expect("valid options");
    let app = sleepy_app(&stats);

    fetch(&app, get_req("/sleep/5000")).await;

    let http = http(&stats);
    assert!(http.slow_requests.is_empty());
    assert_eq!(http.uri_sets["GET /sleep/{ms}"].count, 1);
    assert_close(http.uri_sets["GET /sleep/{ms}"].max_seconds, 5.0);
}

#[tokio::test(start_paused = true)]
async fn default_slow_threshold_is_one_second() {
    let stats = Stats::new();
    let app = sleepy_app(&stats);

    fetch(&app, get_req("/sleep/1000")).await;
    fetch(&app, get_req("/sleep/1001")).await;

    let http = http(&stats);
    let paths: Vec<&str> = http.slow_requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/sleep/1001"]);
}

// ---------------------------------------------------------------------------------------------
// Bounded URI sets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn raw_path_labels_are_capped_by_max_uri_sets() {
    const CAP: usize = 100;
    const REQUESTS: u64 = 10_000;
    let stats = Stats::builder()
        .uri_set_with(|parts| Some(parts.uri.path().to_owned().into()))
        .max_uri_sets(CAP)
        .build()
        .expect("valid options");
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(ok_text("x"))
    }));

    for i in 0..REQUESTS {
        let response = svc
            .clone()
            .oneshot(get_req(&format!("/item/{i}")))
            .await
            .expect("ok");
        response.into_body().collect().await.expect("drains");
    }

    let http = http(&stats);
    assert_eq!(http.requests_total, REQUESTS);
    assert!(
        http.uri_sets.len() <= CAP + 2,
        "{} keys for a cap of {CAP}",
        http.uri_sets.len()
    );
    assert!(http.uri_sets.contains_key(OVERFLOW));
    assert_eq!(http.uri_sets_overflowed, REQUESTS - CAP as u64);
    assert_eq!(http.uri_sets[OVERFLOW].count, REQUESTS - CAP as u64);
    let counted: u64 = http.uri_sets.values().map(|s| s.count).sum();
    assert_eq!(counted, REQUESTS);
}

#[tokio::test]
async fn unmatched_paths_share_one_uri_set() {
    let stats = Stats::new();
    let app = Router::new()
        .route("/known", get(|| async { "known" }))
        .layer(stats.layer());

    for i in 0..10_000 {
        fetch(&app, get_req(&format!("/random/{i}"))).await;
    }

    let http = http(&stats);
    let keys: Vec<&str> = http.uri_sets.keys().map(String::as_str).collect();
    assert_eq!(keys, ["GET <unmatched>"]);
    assert_eq!(http.uri_sets["GET <unmatched>"].count, 10_000);
    assert_eq!(http.status_codes["404"], 10_000);
    assert_eq!(http.uri_sets_overflowed, 0);
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_counted_exactly() {
    const TASKS: u64 = 8;
    const PER_TASK: u64 = 10_000;
    let stats = Stats::new();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "a user" }))
        .layer(stats.layer());

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    let uri = format!("/users/{}", t * PER_TASK + i);
                    let status = fetch(&app, get_req(&uri)).await;
                    assert_eq!(status, StatusCode::OK);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task finished");
    }

    let http = http(&stats);
    assert_eq!(http.requests_total, TASKS * PER_TASK);
    assert_eq!(http.requests_in_flight, 0);
    assert!(http.in_flight.is_empty());
    assert_eq!(http.status_2xx, TASKS * PER_TASK);
    assert_eq!(http.bytes_written_total, TASKS * PER_TASK * 6);
    assert_eq!(http.uri_sets.len(), 1);
    assert_eq!(http.uri_sets["GET /users/{id}"].count, TASKS * PER_TASK);
}

// ---------------------------------------------------------------------------------------------
// Attribution through nesting: every request is counted in its own route's URI set
// ---------------------------------------------------------------------------------------------

/// Routes of equal length, in pairs: a nested router gives each of its requests a matched
/// path of its own, allocated for that request, so two of them may come at the same address.
const PAIRED: [&str; 4] = ["/aa", "/bb", "/users/{id}", "/items/{id}"];

/// The path a request to `route` is sent to.
fn path_of(route: &str, i: usize) -> String {
    route.replace("{id}", &i.to_string())
}

/// The counts of the `GET` URI sets, by route.
fn counts(stats: &Stats) -> std::collections::BTreeMap<String, u64> {
    http(stats)
        .uri_sets
        .into_iter()
        .map(|(key, set)| (key, set.count))
        .collect()
}

/// The expected counts: `per_route` requests to each of `routes` under `prefix`.
fn expected(
    prefix: &str,
    routes: &[&str],
    per_route: u64,
) -> std::collections::BTreeMap<String, u64> {
    routes
        .iter()
        .map(|route| (format!("GET {prefix}{route}"), per_route))
        .collect()
}

/// Sends `rounds` requests to each of `routes` under `prefix`, alternating, and checks that
/// each was answered by its own route (the handler answers with its matched path).
async fn alternate(app: &Router, prefix: &str, routes: &[&str], rounds: usize) {
    for i in 0..rounds {
        for route in routes {
            let uri = format!("{prefix}{}", path_of(route, i));
            let response = app
                .clone()
                .oneshot(get_req(&uri))
                .await
                .expect("infallible");
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            assert_eq!(body, format!("{prefix}{route}"), "{uri}");
        }
    }
}

/// A handler answering with the request's matched path.
async fn matched(path: axum::extract::MatchedPath) -> String {
    path.as_str().to_owned()
}

/// One layered service shared by several routes (a `MethodRouter` with the layer, or a
/// layered service, registered at each route) in a router nested with `nest_service`: the
/// service sees a different matched path per route, each a string allocated for its request.
/// Requests alternate between routes of equal length, one at a time, so that each matched
/// path may well take the address the previous one had.
#[tokio::test]
async fn a_layered_service_shared_by_nested_routes_counts_each_in_its_own_route() {
    // A `MethodRouter` with the layer, cloned into every route.
    let stats = Stats::new();
    let shared = get(matched).layer(stats.layer());
    let inner = PAIRED.iter().fold(Router::new(), |router, route| {
        router.route(route, shared.clone())
    });
    let app = Router::new().nest_service("/api", inner);
    alternate(&app, "/api", &PAIRED, 100).await;
    assert_eq!(counts(&stats), expected("/api", &PAIRED, 100));

    // One layered service, cloned into every route.
    let stats = Stats::new();
    let service = stats.layer().layer(axum::routing::get_service(
        axum::handler::HandlerWithoutStateExt::into_service(matched),
    ));
    let inner = PAIRED.iter().fold(Router::new(), |router, route| {
        router.route_service(route, service.clone())
    });
    let app = Router::new().nest_service("/api", inner);
    alternate(&app, "/api", &PAIRED, 100).await;
    assert_eq!(counts(&stats), expected("/api", &PAIRED, 100));
}

/// The same under load: many requests at once on several threads, alternating between nested
/// routes of equal length served by one shared layered service.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nested_routes_of_equal_length_are_counted_apart_under_load() {
    const TASKS: usize = 16;
    const ROUNDS: usize = 250;
    let stats = Stats::new();
    let shared = get(matched).layer(stats.layer());
    let inner = PAIRED.iter().fold(Router::new(), |router, route| {
        router.route(route, shared.clone())
    });
    let app = Router::new().nest_service("/v1", Router::new().nest_service("/api", inner));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let app = app.clone();
            // Each task starts on another route, so that all are in flight at once.
            let mut routes = PAIRED.to_vec();
            routes.rotate_left(t % PAIRED.len());
            tokio::spawn(async move { alternate(&app, "/v1/api", &routes, ROUNDS).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task finished");
    }
    assert_eq!(
        counts(&stats),
        expected("/v1/api", &PAIRED, (TASKS * ROUNDS) as u64)
    );
}

/// The layer at each level of nesting (`nest`, `nest_service`, over the outer router, the
/// inner one or each route), and two stores at two levels at once: each request is counted
/// in its route, as the layer sees it where it is applied.
#[tokio::test]
async fn attribution_is_right_with_the_layer_at_any_level_of_nesting() {
    fn inner() -> Router {
        PAIRED.iter().fold(Router::new(), |router, route| {
            router.route(route, get(matched))
        })
    }
    type Setup = fn(&Stats) -> Router;
    let setups: [(&str, Setup, &str); 7] = [
        (
            "nest, layer outside",
            |s| Router::new().nest("/api", inner()).layer(s.layer()),
            "/api",
        ),
        (
            "nest, layer inside",
            |s| Router::new().nest("/api", inner().layer(s.layer())),
            "/api",
        ),
        (
            "nest, route layer inside",
            |s| Router::new().nest("/api", inner().route_layer(s.layer())),
            "/api",
        ),
        (
            "nest_service, layer inside",
            |s| Router::new().nest_service("/api", inner().layer(s.layer())),
            "/api",
        ),
        (
            "nest_service twice, layer innermost",
            |s| {
                Router::new().nest_service(
                    "/v1",
                    Router::new().nest_service("/api", inner().layer(s.layer())),
                )
            },
            "/v1/api",
        ),
        (
            "nest_service in nest, layer in the middle",
            |s| {
                Router::new().nest(
                    "/v1",
                    Router::new().nest_service("/api", inner()).layer(s.layer()),
                )
            },
            "/v1/api",
        ),
        (
            "nest in nest_service, layer outermost of the nested",
            |s| {
                Router::new()
                    .nest_service("/v1", Router::new().nest("/api", inner()).layer(s.layer()))
            },
            "/v1/api",
        ),
    ];
    for (name, setup, prefix) in setups {
        let stats = Stats::new();
        let app = setup(&stats);
        alternate(&app, prefix, &PAIRED, 20).await;
        let counts = counts(&stats);
        // A layer outside a `nest_service` runs before the nested router has matched a
        // route: it sees the prefix's wildcard, or nothing.
        let total: u64 = counts.values().sum();
        assert_eq!(total, 20 * PAIRED.len() as u64, "{name}: {counts:?}");
        if !name.contains("in the middle") {
            assert_eq!(counts, expected(prefix, &PAIRED, 20), "{name}");
        }
    }

    // Two stores, one over the outer router and one inside the nested router.
    let (outer, inner_stats) = (Stats::new(), Stats::new());
    let app = Router::new()
        .nest_service("/api", inner().layer(inner_stats.layer()))
        .route("/ab", get(matched))
        .route("/cd", get(matched))
        .layer(outer.layer());
    alternate(&app, "/api", &PAIRED, 20).await;
    alternate(&app, "", &["/ab", "/cd"], 20).await;
    assert_eq!(counts(&inner_stats), expected("/api", &PAIRED, 20));
    let outer_counts = counts(&outer);
    assert_eq!(outer_counts.get("GET /ab"), Some(&20), "{outer_counts:?}");
    assert_eq!(outer_counts.get("GET /cd"), Some(&20), "{outer_counts:?}");
    assert_eq!(
        outer_counts.values().sum::<u64>(),
        20 * (PAIRED.len() as u64 + 2)
    );
}

// ---------------------------------------------------------------------------------------------
// Options: query strings and client addresses
// ---------------------------------------------------------------------------------------------

/// Sends a request with a query and a `SocketAddr` extension, and returns the live record's
/// `(path, client)` plus the JSON document, while the response body is still open.
async fn live_record(stats: &Stats) -> (String, Option<String>, String) {
    let svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(ok_text("x"))
    }));
    let mut req = get_req("/search?token=s3cret&q=1");
    let addr: SocketAddr = "192.0.2.7:4711".parse().expect("valid address");
    req.extensions_mut().insert(addr);
    let response = svc.oneshot(req).await.expect("ok");

    let snapshot = stats.snapshot();
    let json = serde_json::to_string(&snapshot).expect("serializes");
    let record = snapshot
        .http
        .in_flight
        .first()
        .expect("one live request")
        .clone();
    response.into_body().collect().await.expect("drains");
    (record.path, record.client, json)
}

#[tokio::test]
async fn query_and_client_are_left_out_by_default() {
    let stats = Stats::new();
    let (path, client, json) = live_record(&stats).await;
    assert_eq!(path, "/search");
    assert_eq!(client, None);
    assert!(!json.contains("s3cret"));
    assert!(!json.contains("192.0.2.7"));
}

#[tokio::test]
async fn query_and_client_are_recorded_when_enabled() {
    let stats = Stats::builder()
        .record_query(true)
        .record_client(true)
        .build()
        .expect("valid options");
    let (path, client, json) = live_record(&stats).await;
    assert_eq!(path, "/search?token=s3cret&q=1");
    assert_eq!(client.as_deref(), Some("192.0.2.7:4711"));
    assert!(json.contains("192.0.2.7:4711"));
}

// ---------------------------------------------------------------------------------------------
// Compile-time guarantees
// ---------------------------------------------------------------------------------------------

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test]
async fn layered_future_and_body_are_send() {
    let stats = Stats::new();
    let app = Router::new()
        .route("/", get(|| async { "root" }))
        .layer(stats.layer());
    let mut svc = stats.layer().layer(service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"x"))))
    }));

    let future = assert_send(
        ServiceExt::<Request<Body>>::ready(&mut svc)
            .await
            .expect("ready")
            .call(get_req("/")),
    );
    let response = future.await.expect("ok");
    let body = assert_send(response.into_body());
    body.collect().await.expect("drains");

    let future = assert_send(app.oneshot(get_req("/")));
    let response = future.await.expect("infallible");
    assert_send(response.into_body())
        .collect()
        .await
        .expect("drains");

    assert_eq!(http(&stats).requests_total, 2);
}
