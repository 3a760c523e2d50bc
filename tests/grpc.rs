//! gRPC over real HTTP/2: the `grpc` example's tonic server (the health service, the stats
//! layer, the stats routes on the same port) on a loopback port, called by a real tonic
//! client. What `/stats/data`, `/stats/metrics` and the dashboard show must match the calls.

mod common;
#[path = "../examples/grpc.rs"]
#[allow(dead_code, unreachable_pub)]
mod example;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use serde_json::Value;
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower_stats::Stats;

/// A server-streaming method that sends one message, then fails in the trailers.
const FAIL_AFTER_ONE: &str = "/test.Stream/FailAfterOne";

struct Server {
    addr: SocketAddr,
    stats: Stats,
    reporter: HealthReporter,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The example's server on a free loopback port, with one more method that fails after its
/// first message (written by hand: one gRPC message, then `grpc-status: 9` in the trailers).
async fn start() -> Server {
    let stats = Stats::new();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let routes = example::routes(&stats, health)
        .into_axum_router()
        .route(FAIL_AFTER_ONE, post(fail_after_one));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let served = stats.clone();
    let task = tokio::spawn(async move {
        example::serve(listener, &served, routes.into())
            .await
            .expect("the server runs");
    });
    Server {
        addr,
        stats,
        reporter,
        task,
    }
}

async fn fail_after_one() -> Response<Body> {
    let message = HealthCheckResponse { status: 1 }.encode_to_vec();
    let mut framed = BytesMut::new();
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "9".parse().expect("a value"));
    trailers.insert("grpc-message", "after%20one".parse().expect("a value"));
    let frames = futures_util::stream::iter([
        Ok::<_, Infallible>(Frame::data(framed.freeze())),
        Ok(Frame::trailers(trailers)),
    ]);
    Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(StreamBody::new(frames)))
        .expect("a response")
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("connected over HTTP/2")
}

/// `GET path` on the server's port over HTTP/1.1: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> (http::StatusCode, Bytes) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .get(format!("http://{addr}{path}").parse().expect("a URI"))
        .await
        .expect("an answer");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, body)
}

async fn data(addr: SocketAddr) -> Value {
    let (status, body) = get(addr, "/stats/data").await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).expect("JSON")
}

/// Waits until `done` holds for the local snapshot's `http` namespace.
async fn wait_for(stats: &Stats, what: &str, done: impl Fn(&tower_stats::HttpSnapshot) -> bool) {
    for _ in 0..500 {
        if done(&stats.snapshot().http) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}: {:#?}", stats.snapshot().http);
}

#[tokio::test]
async fn calls_are_counted_by_method_path_with_their_grpc_status() {
    let server = start().await;
    let channel = channel(server.addr).await;
    let mut health = HealthClient::new(channel.clone());

    // OK: a message, then `grpc-status: 0` in the trailers.
    for _ in 0..2 {
        let answer = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("the server is serving");
        assert_eq!(answer.into_inner().status, ServingStatus::Serving as i32);
    }
    // NOT_FOUND: a trailers-only response, `grpc-status` in its headers.
    let refused = health
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .expect_err("an unknown service");
    assert_eq!(refused.code(), Code::NotFound);
    // FAILED_PRECONDITION in the trailers, after a message.
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let mut stream = grpc
        .server_streaming(
            tonic::Request::new(HealthCheckRequest::default()),
            http::uri::PathAndQuery::from_static(FAIL_AFTER_ONE),
            tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
        )
        .await
        .expect("the call starts")
        .into_inner();
    assert_eq!(
        stream.message().await.expect("a first message"),
        Some(HealthCheckResponse { status: 1 })
    );
    let failed = stream.message().await.expect_err("then a failure");
    assert_eq!(failed.code(), Code::FailedPrecondition);
    drop(stream);

    wait_for(&server.stats, "four finished calls", |http| {
        http.requests_total == 4 && http.requests_in_flight == 0
    })
    .await;

    // The stats routes answer on the same port, over HTTP/1.1.
    let data = data(server.addr).await;
    let http = &data["namespaces"]["http"];
    assert_eq!(http["requests_total"], 4, "{http:#}");
    assert_eq!(
        http["grpc_status_codes"],
        serde_json::json!({"OK": 2, "NOT_FOUND": 1, "FAILED_PRECONDITION": 1})
    );
    // The failed calls are errors, whatever their HTTP status (200).
    assert_eq!(http["requests_errored"], 2);
    assert_eq!(http["status_2xx"], 4);
    let sets = http["uri_sets"].as_object().expect("URI sets");
    let keys: Vec<&str> = sets.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "POST /grpc.health.v1.Health/Check",
            "POST /test.Stream/FailAfterOne"
        ]
    );
    assert_eq!(sets["POST /grpc.health.v1.Health/Check"]["count"], 3);
    assert_eq!(sets["POST /grpc.health.v1.Health/Check"]["errors"], 1);
    assert_eq!(sets["POST /test.Stream/FailAfterOne"]["count"], 1);
    assert_eq!(sets["POST /test.Stream/FailAfterOne"]["errors"], 1);

    let (status, metrics) = get(server.addr, "/stats/metrics").await;
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics.to_vec()).expect("UTF-8");
    for line in [
        "rpc_server_responses_total{rpc_response_status_code=\"OK\"} 2",
        "rpc_server_responses_total{rpc_response_status_code=\"NOT_FOUND\"} 1",
        "rpc_server_responses_total{rpc_response_status_code=\"FAILED_PRECONDITION\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    let (ok, report) = common::promtool::promtool_check(&metrics);
    assert!(ok, "promtool check metrics: {report}\n{metrics}");

    let (status, page) = get(server.addr, "/stats").await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page.to_vec()).expect("UTF-8");
    assert!(page.contains("gRPC calls by status"));
    for name in ["OK", "NOT_FOUND", "FAILED_PRECONDITION"] {
        assert!(
            page.contains(&format!("<th class=\"num code\">{name}</th>")),
            "{name}"
        );
    }
    assert!(page.contains("POST /grpc.health.v1.Health/Check"));
}

/// `Watch` streams the serving status: once it carries a second message it is a stream,
/// listed under the open streams and kept out of the latency figures.
#[tokio::test]
async fn a_server_streaming_call_is_a_stream_kept_out_of_latency() {
    let server = start().await;
    let mut health = HealthClient::new(channel(server.addr).await);
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .expect("the watch starts")
        .into_inner();
    let first = watch.message().await.expect("a message").expect("one");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    // One message so far: not a stream yet, just a call in flight.
    let http = server.stats.snapshot().http;
    assert_eq!((http.requests_in_flight, http.streams_open), (1, 0));

    server
        .reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let second = watch.message().await.expect("a message").expect("two");
    assert_eq!(second.status, ServingStatus::NotServing as i32);
    wait_for(&server.stats, "an open stream", |http| {
        http.streams_open == 1
    })
    .await;
    let data = data(server.addr).await;
    let http = &data["namespaces"]["http"];
    let open = http["open_streams"].as_object().expect("open streams");
    assert_eq!(open.len(), 1);
    let record = open.values().next().expect("the watch");
    assert_eq!(record["uri_set"], "POST /grpc.health.v1.Health/Watch");
    assert_eq!(record["path"], "/grpc.health.v1.Health/Watch");

    // The client hangs up: the stream ends, counted as a stream, not as a timing.
    drop(watch);
    wait_for(&server.stats, "the stream to end", |http| {
        http.streams_open == 0 && http.requests_in_flight == 0
    })
    .await;
    let http = server.stats.snapshot().http;
    assert_eq!(http.streams_total, 1);
    let set = &http.uri_sets["POST /grpc.health.v1.Health/Watch"];
    assert_eq!((set.count, set.streams), (0, 1));
    assert!(http.slow_requests.is_empty());
    assert_eq!(http.status_2xx, 1);
}

/// The layer in its default body mode inside an axum router made of tonic's routes, served by
/// `axum::serve` over HTTP/2: the call is counted under its path, not under the router's
/// template (`/grpc.health.v1.Health/{*rest}`).
#[tokio::test]
async fn inside_an_axum_router_a_call_counts_under_its_path() {
    let stats = Stats::new();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let app = tonic::service::Routes::new(health)
        .into_axum_router()
        .layer(stats.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut health = HealthClient::new(channel(addr).await);
    health
        .check(HealthCheckRequest::default())
        .await
        .expect("serving");
    let refused = health
        .check(HealthCheckRequest {
            service: "unknown".to_owned(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(refused.code(), Code::NotFound);
    wait_for(&stats, "two finished calls", |http| {
        http.requests_total == 2 && http.requests_in_flight == 0
    })
    .await;
    server.abort();

    let http = stats.snapshot().http;
    let keys: Vec<&str> = http.uri_sets.keys().map(String::as_str).collect();
    assert_eq!(keys, ["POST /grpc.health.v1.Health/Check"]);
    assert_eq!(http.uri_sets["POST /grpc.health.v1.Health/Check"].count, 2);
    assert_eq!(http.requests_errored, 1);
    let codes: Vec<(&str, u64)> = http
        .grpc_status_codes
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(codes, [("NOT_FOUND", 1), ("OK", 1)]);
}
