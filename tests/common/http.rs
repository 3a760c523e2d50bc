//! Request helpers shared by the integration tests (`mod common;`, then `common::http`).

use axum::body::{Body, Bytes};
use axum::Router;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A request with an empty body.
pub(crate) fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("valid request")
}

/// Sends one request and collects the whole response body (which finalizes the record).
pub(crate) async fn send(app: &Router, request: Request<Body>) -> Response<Bytes> {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("axum routers are infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Response::from_parts(parts, body)
}
