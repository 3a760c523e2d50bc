//! The protections of the stats routes over real connections on loopback, HTTP/1.1 and
//! HTTP/2 (h2c with prior knowledge, as `axum::serve` speaks it with axum's `http2`
//! feature): the dashboard's own posts, a proxy that rewrites `Host`, and DNS rebinding (a
//! request naming a host the server does not know).
//!
//! Each test serves the quickstart app on its own `127.0.0.1:0` listener and stops it.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::Router;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_stats::Stats;

/// Time limit of one request, and of a server's shutdown.
const STEP: Duration = Duration::from_secs(10);

/// The host a rebinding page names: the attacker's domain, resolved to the loopback address.
const EVIL: &str = "evil.example:3000";

/// An app served by `axum::serve` on a loopback port of its own, until [`stop`](Self::stop).
struct Server {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(app: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = signal.await;
                })
                .await
        });
        Self {
            addr,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        match tokio::time::timeout(STEP, self.task).await {
            Ok(joined) => joined.expect("server task").expect("server"),
            Err(_) => panic!("the server did not shut down"),
        }
    }
}

/// The quickstart app with `stats`, served on a port of its own.
async fn quickstart_server(stats: &Stats) -> Server {
    Server::start(quickstart::app(stats)).await
}

/// One answer: status, headers and the whole body.
struct Answer {
    status: StatusCode,
    version: Version,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `method path` to `addr` over a new connection of `version`, naming `authority` as
/// the request's host: the `Host` header over HTTP/1.1, the `:authority` over HTTP/2 (where
/// no `Host` header is sent, as browsers do).
async fn send(
    addr: SocketAddr,
    version: Version,
    method: Method,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut builder = Request::builder().method(method);
    builder = if version == Version::HTTP_2 {
        builder.uri(format!("http://{authority}{path}"))
    } else {
        builder.uri(path).header(header::HOST, authority)
    };
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Body::empty()).expect("valid request");
    let stream = TcpStream::connect(addr).await.expect("connect");
    let io = TokioIo::new(stream);
    let exchange = async {
        let response = if version == Version::HTTP_2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("HTTP/2 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("HTTP/2 response")
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("HTTP/1.1 handshake");
            tokio::spawn(connection);
            sender
                .send_request(request)
                .await
                .expect("HTTP/1.1 response")
        };
        collect(response).await
    };
    tokio::time::timeout(STEP, exchange)
        .await
        .expect("the server answers in time")
}

async fn collect(response: Response<hyper::body::Incoming>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status,
        version: parts.version,
        body,
    }
}

fn http_enabled(stats: &Stats) -> bool {
    stats.is_enabled("http").expect("the http namespace")
}

/// The headers a browser sends with the dashboard's own form post, served from `origin`.
fn dashboard_post(origin: &str) -> [(&str, &str); 3] {
    [
        ("origin", origin),
        ("sec-fetch-site", "same-origin"),
        ("accept", "application/json"),
    ]
}

#[tokio::test]
async fn the_dashboards_own_posts_work_over_http2_and_http1() {
    let stats = Stats::new();
    let server = quickstart_server(&stats).await;
    let host = server.addr.to_string();
    let origin = format!("http://{host}");

    for version in [Version::HTTP_2, Version::HTTP_11] {
        // The page itself, over the same protocol.
        let page = send(server.addr, version, Method::GET, &host, "/stats", &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{version:?}");
        assert_eq!(page.version, version, "served over {version:?}");

        let pause = send(
            server.addr,
            version,
            Method::POST,
            &host,
            "/stats/pause?namespace=http",
            &dashboard_post(&origin),
        )
        .await;
        assert_eq!(
            pause.status,
            StatusCode::OK,
            "{version:?}: {}",
            String::from_utf8_lossy(&pause.body)
        );
        assert!(!http_enabled(&stats), "{version:?}: not paused");

        // An older browser sends `Origin` without `Sec-Fetch-Site`: it matches the authority.
        let resume = send(
            server.addr,
            version,
            Method::POST,
            &host,
            "/stats/resume",
            &[("origin", &origin)],
        )
        .await;
        assert_eq!(
            resume.status,
            StatusCode::OK,
            "{version:?}: {}",
            String::from_utf8_lossy(&resume.body)
        );
        assert!(http_enabled(&stats), "{version:?}: not resumed");
    }

    // A cross-site post is still refused over HTTP/2, with the JSON error.
    let refused = send(
        server.addr,
        Version::HTTP_2,
        Method::POST,
        &host,
        "/stats/pause",
        &[
            ("origin", "http://127.0.0.1:1"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["status"], 403);
    assert!(refused.json()["error"].is_string());
    assert!(http_enabled(&stats));
    server.stop().await;
}

/// Forwards every request to `backend` with `Host` rewritten to the backend's address, as a
/// reverse proxy configured with the backend's address does.
async fn rewrite_host(
    State(backend): State<SocketAddr>,
    mut request: Request<Body>,
) -> Response<Body> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = format!("http://{backend}{path}").parse().expect("URI");
    let host = HeaderValue::from_str(&backend.to_string()).expect("host");
    request.headers_mut().insert(header::HOST, host);
    let response = client.request(request).await.expect("the backend answers");
    response.map(Body::new)
}

/// A proxy on a port of its own in front of `backend`.
async fn proxy_server(backend: SocketAddr) -> Server {
    Server::start(Router::new().fallback(rewrite_host).with_state(backend)).await
}

#[tokio::test]
async fn posts_through_a_proxy_that_rewrites_host_work() {
    let stats = Stats::new();
    let backend = quickstart_server(&stats).await;
    let proxy = proxy_server(backend.addr).await;
    let public = "https://stats.example.com";

    // A browser with Fetch Metadata: `Sec-Fetch-Site` is enough, whatever `Host` became.
    let pause = send(
        proxy.addr,
        Version::HTTP_11,
        Method::POST,
        "stats.example.com",
        "/stats/pause",
        &dashboard_post(public),
    )
    .await;
    assert_eq!(
        pause.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&pause.body)
    );
    assert!(!http_enabled(&stats));

    // Without it, the `Origin` no longer matches the rewritten `Host`: refused.
    let resume = send(
        proxy.addr,
        Version::HTTP_11,
        Method::POST,
        "stats.example.com",
        "/stats/resume",
        &[("origin", public)],
    )
    .await;
    assert_eq!(resume.status, StatusCode::FORBIDDEN);
    let error = resume.json();
    assert_eq!(error["status"], 403);
    let message = error["error"].as_str().expect("an error message");
    assert!(message.contains("trusted_origin"), "{message}");
    assert!(!http_enabled(&stats));

    proxy.stop().await;
    backend.stop().await;
}

#[tokio::test]
async fn a_trusted_origin_is_accepted_through_a_proxy_that_rewrites_host() {
    let public = "https://stats.example.com";
    let stats = Stats::builder()
        .trusted_origin(public)
        .build()
        .expect("valid options");
    let backend = quickstart_server(&stats).await;
    let proxy = proxy_server(backend.addr).await;

    for (path, enabled) in [("/stats/pause", false), ("/stats/resume", true)] {
        let answer = send(
            proxy.addr,
            Version::HTTP_11,
            Method::POST,
            "stats.example.com",
            path,
            &[("origin", public)],
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(http_enabled(&stats), enabled, "{path}");
    }

    // Only that origin: another one is still refused, even from a page that says so.
    let other = send(
        proxy.addr,
        Version::HTTP_11,
        Method::POST,
        "stats.example.com",
        "/stats/pause",
        &[
            ("origin", "https://other.example.com"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(http_enabled(&stats));

    proxy.stop().await;
    backend.stop().await;
}

#[tokio::test]
async fn dns_rebinding_is_refused_on_every_stats_route() {
    let stats = Stats::new();
    let server = quickstart_server(&stats).await;
    let origin = format!("http://{EVIL}");

    for version in [Version::HTTP_11, Version::HTTP_2] {
        let pause = send(
            server.addr,
            version,
            Method::POST,
            EVIL,
            "/stats/pause",
            &dashboard_post(&origin),
        )
        .await;
        assert_eq!(
            pause.status,
            StatusCode::MISDIRECTED_REQUEST,
            "{version:?} POST /stats/pause: {}",
            String::from_utf8_lossy(&pause.body)
        );
        assert!(
            http_enabled(&stats),
            "{version:?}: paused by a rebinding page"
        );

        for path in [
            "/stats",
            "/stats/data",
            "/stats/metrics",
            "/stats/requests",
            "/stats/events",
            "/stats/style.css",
        ] {
            let read = send(server.addr, version, Method::GET, EVIL, path, &[]).await;
            assert_eq!(
                read.status,
                StatusCode::MISDIRECTED_REQUEST,
                "{version:?} GET {path}: {}",
                String::from_utf8_lossy(&read.body)
            );
            let error = read.json();
            assert_eq!(error["status"], 421, "{version:?} GET {path}");
            let message = error["error"].as_str().expect("an error message");
            assert!(
                message.contains("allowed_host"),
                "{version:?} GET {path}: {message}"
            );
        }

        // The application's own routes are not the stats router's business, and `/status`
        // answers health checkers under any name.
        for path in ["/hello", "/status"] {
            let answer = send(server.addr, version, Method::GET, EVIL, path, &[]).await;
            assert_eq!(answer.status, StatusCode::OK, "{version:?} GET {path}");
        }
    }

    // IP literals and `localhost` name this machine: no rebinding through them.
    let port = server.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        "LocalHost".to_owned(),
        "10.1.2.3".to_owned(),
    ] {
        for version in [Version::HTTP_11, Version::HTTP_2] {
            let data = send(server.addr, version, Method::GET, &host, "/stats/data", &[]).await;
            assert_eq!(data.status, StatusCode::OK, "{version:?} {host}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_allowed_host_is_served() {
    let stats = Stats::builder()
        .allowed_host("stats.internal")
        .build()
        .expect("valid options");
    let server = quickstart_server(&stats).await;
    let port = server.addr.port();

    for version in [Version::HTTP_11, Version::HTTP_2] {
        for host in [
            format!("stats.internal:{port}"),
            "Stats.Internal".to_owned(),
        ] {
            let data = send(server.addr, version, Method::GET, &host, "/stats/data", &[]).await;
            assert_eq!(data.status, StatusCode::OK, "{version:?} {host}");
        }
        let host = format!("stats.internal:{port}");
        let origin = format!("http://{host}");
        for (path, enabled) in [("/stats/pause", false), ("/stats/resume", true)] {
            let answer = send(
                server.addr,
                version,
                Method::POST,
                &host,
                path,
                &dashboard_post(&origin),
            )
            .await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{version:?} {path}: {}",
                String::from_utf8_lossy(&answer.body)
            );
            assert_eq!(http_enabled(&stats), enabled, "{version:?} {path}");
        }

        // Only that name.
        let other = format!("other.internal:{port}");
        let data = send(
            server.addr,
            version,
            Method::GET,
            &other,
            "/stats/data",
            &[],
        )
        .await;
        assert_eq!(data.status, StatusCode::MISDIRECTED_REQUEST, "{version:?}");
    }
    server.stop().await;
}
