//! The benchmark app with `tracing` (feature `tracing`): the stats layer under a subscriber,
//! with or without the stats `tracing` layer, and a route whose handler opens spans.
//!
//! Included with `#[path]` by the benchmark programs next to `app.rs`.

use std::hint::black_box;

use axum::routing::get;
use axum::Router;
use tower_stats::Stats;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// Spans the handler of `GET /spans` opens, one after the other.
pub const SPANS_PER_REQUEST: u64 = 8;

/// A `tracing_subscriber` registry; with `stats`, the stats `tracing` layer on it.
pub fn dispatch(stats: Option<&Stats>) -> Dispatch {
    match stats {
        Some(stats) => Dispatch::new(tracing_subscriber::registry().with(stats.tracing_layer())),
        None => Dispatch::new(tracing_subscriber::registry()),
    }
}

/// `GET /spans` with the stats layer: its handler opens [`SPANS_PER_REQUEST`] spans.
pub fn spans_app(stats: &Stats) -> Router {
    Router::new()
        .route("/spans", get(spans))
        .layer(stats.layer())
        .with_state(())
}

async fn spans() -> &'static str {
    for n in 0..SPANS_PER_REQUEST {
        tracing::info_span!("step").in_scope(|| black_box(n));
    }
    "ok"
}

/// Sends `n` requests to `GET /spans`, reading each response body.
pub async fn send_spans(app: &Router, n: u64) {
    for _ in 0..n {
        crate::app::get_path(app, "/spans").await;
    }
}
