//! The audit log (feature `tracing`): control actions and refused requests of the stats
//! routes are `tracing` events on target `tower_stats`, with the client address, captured
//! here by a subscriber of the test's own over a real loopback server.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_stats::Stats;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event: target, level and fields (the message under `message`).
#[derive(Debug, Clone)]
struct Captured {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

/// A subscriber that keeps every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    /// The events on target `tower_stats` captured since the last call.
    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .filter(|e| e.target == "tower_stats")
            .collect()
    }
}

/// Serves `app` on a free loopback port, with the client addresses (`ConnectInfo`).
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// Sends one HTTP/1.1 request; returns the status and the client's own address.
async fn send(server: SocketAddr, method: &str, target: &str, headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let client = stream.local_addr().expect("client address").to_string();
    let mut request = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|h| h.starts_with("Host:")) {
        request.push_str(&format!("Host: {server}\r\n"));
    }
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, client)
}

fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .merge(stats.router())
        .layer(stats.layer())
}

#[tokio::test(flavor = "current_thread")]
async fn control_actions_and_refusals_are_logged_with_the_client() {
    let capture = Capture::default();
    // The runtime has one thread: the server's tasks log under this default.
    let _default = tracing::subscriber::set_default(capture.clone());
    let stats = Stats::builder()
        .bearer_token("s3cret")
        .build()
        .expect("valid options");
    let server = serve(app(&stats)).await;
    let token = "Authorization: Bearer s3cret";

    // Actions: one event each, with the action, the namespace and the client.
    for (target, action) in [
        ("/stats/pause?namespace=http", "pause"),
        ("/stats/resume", "resume"),
        ("/stats/reset", "reset"),
    ] {
        let (status, client) = send(server, "POST", target, &[token]).await;
        assert_eq!(status, 200, "{target}");
        let events = capture.take();
        assert_eq!(events.len(), 1, "{target}: {events:?}");
        let event = &events[0];
        assert_eq!(event.level, Level::INFO);
        assert_eq!(event.fields["message"], "stats control action");
        assert_eq!(event.fields["action"], action);
        assert_eq!(event.fields["scope"], "local");
        assert_eq!(event.fields["client"], client);
        assert_eq!(
            event.fields.get("namespace").map(String::as_str),
            (action == "pause").then_some("http")
        );
    }
    let (status, client) = send(server, "POST", "/stats/maintenance?on=true", &[token]).await;
    assert_eq!(status, 200);
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].fields["action"], "maintenance");
    assert_eq!(events[0].fields["on"], "true");
    assert_eq!(events[0].fields["client"], client);

    // Refusals: a missing or wrong token, a cross-site form post, a rebinding host.
    let refusals: [(&str, &[&str], u16, &str); 4] = [
        ("/stats/pause", &[], 401, "bad_token"),
        (
            "/stats/reset",
            &["Authorization: Bearer guess"],
            401,
            "bad_token",
        ),
        (
            "/stats/pause",
            &[
                token,
                "Sec-Fetch-Site: cross-site",
                "Origin: http://evil.example",
            ],
            403,
            "cross_site",
        ),
        (
            "/stats/pause",
            &[
                token,
                "Host: evil.example:3000",
                "Origin: http://evil.example:3000",
            ],
            421,
            "host_not_allowed",
        ),
    ];
    for (target, headers, expected, reason) in refusals {
        let (status, client) = send(server, "POST", target, headers).await;
        assert_eq!(status, expected, "{reason}");
        let events = capture.take();
        assert_eq!(events.len(), 1, "{reason}: {events:?}");
        let event = &events[0];
        assert_eq!(event.level, Level::WARN);
        assert_eq!(event.fields["message"], "stats request refused");
        assert_eq!(event.fields["reason"], reason);
        assert_eq!(event.fields["status"], expected.to_string());
        assert_eq!(event.fields["method"], "POST");
        assert_eq!(event.fields["path"], target);
        assert_eq!(event.fields["client"], client);
        if reason == "host_not_allowed" {
            assert_eq!(event.fields["host"], "evil.example");
        }
    }
    // A rebinding read is refused and logged too; the pages themselves log nothing.
    let (status, _) = send(server, "GET", "/stats/data", &["Host: evil.example"]).await;
    assert_eq!(status, 421);
    assert_eq!(capture.take()[0].fields["reason"], "host_not_allowed");
    let (status, _) = send(server, "GET", "/stats/data", &[]).await;
    assert_eq!(status, 200);
    let (status, _) = send(server, "GET", "/", &[]).await;
    assert_eq!(status, 200);
    assert!(capture.take().is_empty());
    // Nothing was paused by the refused requests: the last action was a resume.
    assert!(stats.is_enabled("http").unwrap());
}

#[tokio::test(flavor = "current_thread")]
async fn an_action_without_a_known_client_is_logged_without_one() {
    use tower::ServiceExt;
    let capture = Capture::default();
    let _default = tracing::subscriber::set_default(capture.clone());
    let stats = Stats::new();
    let request = http::Request::post("/stats/pause")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app(&stats).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].fields["action"], "pause");
    assert!(!events[0].fields.contains_key("client"));
}
