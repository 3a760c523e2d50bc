//! A small axum app with the statistics mounted: the README's demo.
//!
//! ```not_rust
//! cargo run --example quickstart
//! ```
//!
//! Then open <http://127.0.0.1:3000/stats> or `curl -s 127.0.0.1:3000/stats/data`.
//! `PORT` chooses the port (default 3000). It serves HTTP/1.1 and HTTP/2 (h2c with prior
//! knowledge, axum's `http2` feature): `curl --http2-prior-knowledge 127.0.0.1:3000/hello`.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tower_stats::Stats;

/// The demo app: its routes, `/status` and the stats router merged, and the stats layer over
/// everything.
pub fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/users/{id}", get(user))
        .route("/echo", post(echo))
        .route("/slow", get(slow))
        .route("/stream", get(chunked))
        .route("/events", get(events))
        .merge(stats.status_router())
        .merge(stats.router())
        .layer(stats.layer())
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

#[derive(Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

/// Sleeps `ms` milliseconds (at most 10 s), then answers.
async fn slow(Query(params): Query<SlowParams>) -> String {
    let ms = params.ms.unwrap_or(1000).min(10_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms\n")
}

#[derive(Deserialize)]
struct StreamParams {
    chunks: Option<u32>,
}

/// A chunked body without `Content-Length`: `chunks` lines (at most 1000), 10 ms apart.
async fn chunked(Query(params): Query<StreamParams>) -> impl IntoResponse {
    let chunks = params.chunks.unwrap_or(5).min(1000);
    let body = stream::unfold(0, move |n| async move {
        if n >= chunks {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((
            Ok::<_, Infallible>(Bytes::from(format!("chunk {n}\n"))),
            n + 1,
        ))
    });
    Body::from_stream(body)
}

/// A short server-sent event stream: five ticks, 200 ms apart.
async fn events() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(stream::unfold(0, |n| async move {
        if n >= 5 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((
            Ok(Event::default().event("tick").data(n.to_string())),
            n + 1,
        ))
    }))
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let stats = Stats::new();
    stats.set_application(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("tower-stats quickstart listening on http://{addr}");
    println!();
    println!("  try:       curl http://{addr}/hello");
    println!("             curl http://{addr}/users/42");
    println!("             curl -d 'some bytes' http://{addr}/echo");
    println!("             curl 'http://{addr}/slow?ms=1500'");
    println!("             curl 'http://{addr}/stream?chunks=5'");
    println!("             curl http://{addr}/events");
    println!("  dashboard: http://{addr}/stats");
    println!("  JSON:      curl -s http://{addr}/stats/data");
    println!("  HTTP/2:    curl -s --http2-prior-knowledge http://{addr}/stats/data");
    println!("  status:    curl -i http://{addr}/status");
    println!("  control:   curl -X POST 'http://{addr}/stats/pause?namespace=http'");
    println!("             curl -X POST http://{addr}/stats/resume");
    println!("             curl -X POST http://{addr}/stats/reset");
    axum::serve(listener, app(&stats)).await?;
    Ok(())
}
