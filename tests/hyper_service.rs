//! A plain hyper server over HTTP/2 whose service has a response body type of its own,
//! wrapped by the layer in the generic body mode: nothing is converted to axum's body, and
//! everything is recorded.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tower::{service_fn, ServiceBuilder};
use tower_stats::record::{RequestBody, ResponseBody};
use tower_stats::Stats;

/// A body of its own: counts down from `n`, one frame per number ("3\n", "2\n", "1\n").
#[derive(Debug)]
struct Countdown {
    n: u8,
}

impl Body for Countdown {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.n == 0 {
            return Poll::Ready(None);
        }
        let frame = Bytes::from(format!("{}\n", self.n));
        self.n -= 1;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.n == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(u64::from(self.n) * 2)
    }
}

/// Reads the whole request body, then counts down from its length in bytes (at most 9).
async fn handle<B>(request: Request<B>) -> Result<Response<Countdown>, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let body = request
        .into_body()
        .collect()
        .await
        .expect("the request body")
        .to_bytes();
    Ok(Response::new(Countdown {
        n: body.len().min(9) as u8,
    }))
}

#[tokio::test]
async fn a_hyper_service_with_its_own_body_types_is_recorded_over_http2() {
    let stats = Stats::new();
    let service = ServiceBuilder::new()
        .layer(stats.layer().generic_bodies())
        .service(service_fn(
            |request: Request<RequestBody<hyper::body::Incoming>>| handle(request),
        ));
    // The server hands the layer hyper's own request body, and the response keeps the
    // service's own body type, wrapped, never boxed.
    fn responds_with_countdown<S>(_: &S)
    where
        S: tower::Service<
            Request<hyper::body::Incoming>,
            Response = Response<ResponseBody<Countdown>>,
        >,
    {
    }
    responds_with_countdown(&service);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("a connection");
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    for (upload, expected) in [("abc", "3\n2\n1\n"), ("hello", "5\n4\n3\n2\n1\n"), ("", "")] {
        let request = Request::post(format!("http://{addr}/count"))
            .body(Full::new(Bytes::from(upload)))
            .expect("a request");
        let response = client.request(request).await.expect("an answer");
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        assert_eq!(body, expected);
    }
    server.abort();

    let http = stats.snapshot().http;
    assert_eq!(http.requests_total, 3);
    assert_eq!(http.requests_in_flight, 0);
    assert_eq!(http.status_2xx, 3);
    assert_eq!(http.bytes_read_total, 8, "the bytes the service read");
    assert_eq!(http.bytes_written_total, 16, "the bytes hyper polled");
    assert_eq!(http.uri_sets["POST <unmatched>"].count, 3);
    assert!(http.grpc_status_codes.is_empty());
}
