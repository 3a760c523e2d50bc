//! Big documents are built off the async workers: a slow scrape never stalls the
//! application's requests on the same worker.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::Request;
use tower::ServiceExt;
use tower_stats::{Combine, Stats};

async fn get_body(app: &Router, uri: &str) -> String {
    let request = Request::get(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// An app whose statistics take half a second to read: a computed value that blocks, as an
/// expensive one (or ten thousand namespaces) would.
fn slow_to_read() -> (Stats, Router) {
    let stats = Stats::new();
    let ns = stats.namespace("slow").expect("namespace");
    ns.computed("expensive", Combine::Instance, |_| {
        std::thread::sleep(Duration::from_millis(500));
        serde_json::Value::from(1)
    })
    .expect("computed value");
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .merge(stats.router())
        .layer(stats.layer());
    (stats, app)
}

// One worker thread: a render on it would hold every other request back.
#[tokio::test(flavor = "current_thread")]
async fn requests_go_on_while_a_document_is_built() {
    for path in ["/stats/metrics", "/stats/data", "/stats", "/stats/events"] {
        let (_stats, app) = slow_to_read();
        let scrape = tokio::spawn({
            let app = app.clone();
            async move { get_body(&app, path).await }
        });
        // Let the scrape start: built on the worker, it would be done by the time this
        // returns.
        tokio::task::yield_now().await;
        assert_eq!(get_body(&app, "/hello").await, "hello");
        assert!(
            !scrape.is_finished(),
            "{path} was built on the worker, before the request could run"
        );
        let body = scrape.await.expect("the scrape finishes");
        assert!(!body.is_empty(), "{path}");
    }
}
