//! The quickstart app served on a real loopback socket and driven by a real HTTP/1.1 client:
//! what `/stats/data` reports must match exactly what the client did and received.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower_stats::Stats;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends one request and reads the whole body.
async fn fetch(client: &HttpClient, method: Method, url: &str, body: Bytes) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body))
        .expect("valid request");
    let response = client.request(request).await.expect("request sent");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body read")
        .to_bytes();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_over_loopback_reports_exactly_what_the_client_did() {
    tokio::time::timeout(Duration::from_secs(30), run())
        .await
        .expect("the loopback test took more than 30 s");
}

async fn run() {
    let stats = Stats::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = quickstart::app(&stats);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{addr}");
    let mut written: u64 = 0;

    for _ in 0..3 {
        let (status, body) =
            fetch(&client, Method::GET, &format!("{base}/hello"), Bytes::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "Hello, world!\n");
        written += body.len() as u64;
    }
    for id in [1, 2] {
        let (status, body) = fetch(
            &client,
            Method::GET,
            &format!("{base}/users/{id}"),
            Bytes::new(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("user {id}\n"));
        written += body.len() as u64;
    }
    let payload = Bytes::from(vec![b'x'; 1000]);
    let (status, body) = fetch(
        &client,
        Method::POST,
        &format!("{base}/echo"),
        payload.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, payload);
    written += body.len() as u64;

    let (status, body) = fetch(
        &client,
        Method::GET,
        &format!("{base}/stream?chunks=4"),
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\n");
    let stream_len = body.len() as u64;
    written += stream_len;

    let (status, body) = fetch(&client, Method::GET, &format!("{base}/nope"), Bytes::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    written += body.len() as u64;

    // The server may finalise a record just after the client has the whole response: poll,
    // bounded, until every earlier request has finished. The data requests themselves are
    // stats routes, which are not recorded by default: looking does not change what is seen.
    let earlier: u64 = 8;
    let mut last = Value::Null;
    let mut settled = false;
    for _ in 0..50 {
        let (status, body) = fetch(
            &client,
            Method::GET,
            &format!("{base}/stats/data"),
            Bytes::new(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        last = serde_json::from_slice(&body).expect("strict JSON");
        let http = &last["namespaces"]["http"];
        if http["requests_in_flight"] == 0
            && http["status_2xx"] == 7
            && http["bytes_written_total"] == written
        {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(settled, "records never settled; last document: {last}");
    // One more look: the data requests made so far left no trace in what it shows.
    let (status, body) = fetch(
        &client,
        Method::GET,
        &format!("{base}/stats/data"),
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let again: Value = serde_json::from_slice(&body).expect("strict JSON");
    for key in ["requests_total", "bytes_read_total", "bytes_written_total"] {
        assert_eq!(
            again["namespaces"]["http"][key], last["namespaces"]["http"][key],
            "{key}"
        );
    }
    let counts = |doc: &Value| -> Vec<(String, Value)> {
        let sets = doc["namespaces"]["http"]["uri_sets"].as_object();
        sets.expect("uri_sets")
            .iter()
            .map(|(key, set)| (key.clone(), set["count"].clone()))
            .collect()
    };
    assert_eq!(counts(&again), counts(&last));

    let http = &last["namespaces"]["http"];
    // Every request of the app is recorded, counted at start; the data requests are not.
    assert_eq!(http["requests_total"], earlier, "{http}");
    assert_eq!(http["requests_in_flight"], 0, "not even the data request");
    assert_eq!(
        http["in_flight"].as_object().expect("in_flight").len(),
        0,
        "{http}"
    );
    assert_eq!(http["requests_aborted"], 0);
    assert_eq!(http["requests_errored"], 0);
    assert_eq!(http["status_2xx"], 7);
    assert_eq!(http["status_4xx"], 1);
    assert_eq!(http["status_5xx"], 0);
    assert_eq!(http["status_codes"]["404"], 1);
    assert_eq!(http["bytes_read_total"], 1000);
    assert_eq!(http["bytes_written_total"], written);
    assert_eq!(http["windows"]["total"]["count"], earlier, "{http}");

    let sets = &http["uri_sets"];
    assert_eq!(sets["GET /hello"]["count"], 3, "{sets}");
    assert_eq!(sets["GET /users/{id}"]["count"], 2, "{sets}");
    assert_eq!(sets["POST /echo"]["count"], 1, "{sets}");
    assert_eq!(sets["POST /echo"]["bytes_read"], 1000, "{sets}");
    assert_eq!(sets["POST /echo"]["bytes_written"], 1000, "{sets}");
    assert_eq!(sets["GET /stream"]["count"], 1, "{sets}");
    assert_eq!(sets["GET /stream"]["bytes_written"], stream_len, "{sets}");
    assert_eq!(sets["GET <unmatched>"]["count"], 1, "{sets}");
    assert_eq!(sets["GET <unmatched>"]["status_4xx"], 1, "{sets}");
    assert_eq!(
        sets.as_object().expect("uri_sets").len(),
        5,
        "no URI set for the stats routes: {sets}"
    );
    let stream_time = sets["GET /stream"]["min_seconds"].as_f64().expect("timed");
    assert!(
        stream_time >= 0.03,
        "4 chunks 10 ms apart took {stream_time} s"
    );

    drop(client);
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(joined) => joined.expect("server task").expect("server"),
        Err(_) => panic!("the server did not shut down"),
    }
}
