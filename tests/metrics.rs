//! `/stats/metrics` validated by Prometheus' own `promtool`, and the latency distributions
//! (quantiles, windows, exact buckets) as a user sees them.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;
use tower_stats::{Combine, Stats, UriSet};

mod common;

use common::promtool::{promtool, promtool_check};

#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

fn app(stats: &Stats) -> Router {
    Router::new()
        .route(
            "/sleep",
            get(|Query(q): Query<Sleep>| async move {
                tokio::time::sleep(Duration::from_millis(q.ms)).await;
                "done"
            }),
        )
        .route("/users/{id}", get(|| async { "user" }))
        .route(
            "/fail",
            get(|| async {
                let frames: [Result<Bytes, std::io::Error>; 2] = [
                    Ok(Bytes::from_static(b"part")),
                    Err(std::io::Error::other("backend lost")),
                ];
                Body::from_stream(futures_util::stream::iter(frames))
            }),
        )
        .route(
            "/panic",
            get(|| async {
                panic!("the handler panicked");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .merge(stats.router())
        .layer(stats.layer())
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, body.to_vec())
}

async fn get_path(app: &Router, path: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

async fn data(app: &Router) -> serde_json::Value {
    let (status, _, body) = get_path(app, "/stats/data").await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).expect("strict JSON")
}

/// Parses `text` with Prometheus' OpenMetrics parser (`promtool tsdb create-blocks-from
/// openmetrics`). Backfilling needs a timestamp on every sample, so one is appended to each
/// sample line; nothing else is changed.
fn promtool_parse_openmetrics(text: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "tower-stats-om-{}-{}",
        std::process::id(),
        text.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("input.om");
    let stamped: String = text
        .lines()
        .map(|line| {
            if line.starts_with('#') {
                format!("{line}\n")
            } else if let Some((sample, exemplar)) = line.split_once(" # ") {
                // The timestamp goes before an exemplar.
                format!("{sample} 1700000000 # {exemplar}\n")
            } else {
                format!("{line} 1700000000\n")
            }
        })
        .collect();
    std::fs::write(&input, stamped).expect("write input");
    let out = promtool()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.join("blocks"))
        .output()
        .expect("run promtool");
    let _ = std::fs::remove_dir_all(&dir);
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}

/// Parses `text` with the Prometheus Python client's OpenMetrics parser
/// (`scripts/parse_openmetrics.py`; PyPI package `prometheus-client`, which `scripts/test`
/// installs), stricter than promtool on exemplars. Returns whether it was accepted, the
/// exemplars it read (one JSON object per sample that has one) and its messages.
fn python_parse_openmetrics(text: &str) -> (bool, Vec<serde_json::Value>, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/parse_openmetrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for this test");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to the parser");
    let out = child.wait_with_output().expect("parser output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the PyPI package prometheus-client is required for this test \
         (python3 -m pip install prometheus-client): {stderr}"
    );
    let exemplars = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (out.status.success(), exemplars, stderr)
}

const HOSTILE: &str = "quote\" backslash\\ newline\n brace} end";

/// An app with traffic on several routes, a hostile URI set label and application values.
async fn busy_app() -> (Stats, Router) {
    let stats = Stats::new();
    let shop = stats.namespace("shop").unwrap();
    shop.counter("orders_total", Combine::Sum).unwrap().add(7);
    shop.counter("visits", Combine::Sum).unwrap().add(3);
    shop.gauge("queue_depth", Combine::Max).unwrap().set(2.5);
    shop.gauge("broken", Combine::Max).unwrap().set(f64::NAN);
    shop.text("currency").unwrap().set("EUR \"€\"\n");
    shop.computed("ratio", Combine::Instance, |_| 0.25.into())
        .unwrap();
    let weird = stats.namespace("we\"ird \\ app").unwrap();
    weird.counter("hits", Combine::Sum).unwrap().incr();

    let app = app(&stats);
    for path in ["/users/1", "/users/2", "/sleep?ms=0", "/nope"] {
        get_path(&app, path).await;
    }
    let mut hostile = Request::get("/anything").body(Body::empty()).unwrap();
    hostile.extensions_mut().insert(UriSet::new(HOSTILE));
    send(&app, hostile).await;
    // One request of each error type: a body that fails, a handler that panics, and a client
    // that leaves before the response.
    let response = app
        .clone()
        .oneshot(Request::get("/fail").body(Body::empty()).unwrap())
        .await
        .expect("infallible");
    assert!(response.into_body().collect().await.is_err());
    let panicking = app.clone();
    let panicked = tokio::spawn(async move { get_path(&panicking, "/panic").await }).await;
    assert!(panicked.expect_err("the handler panics").is_panic());
    let left = tokio::time::timeout(Duration::from_millis(1), get_path(&app, "/sleep?ms=1000"));
    assert!(left.await.is_err(), "the client leaves");
    (stats, app)
}

#[tokio::test]
async fn text_format_passes_promtool_check_metrics() {
    let (_stats, app) = busy_app().await;
    let (status, headers, body) = get_path(&app, "/stats/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[http::header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(body).unwrap();
    let (ok, report) = promtool_check(&text);
    assert!(
        ok,
        "promtool check metrics failed:\n{report}\n--- input ---\n{text}"
    );
    assert!(report.trim().is_empty(), "promtool reported: {report}");

    // The hostile label is escaped (quote and backslash) and its newline never breaks a line.
    assert!(
        text.contains(r#"http_route="quote\" backslash\\ newline� brace} end""#),
        "{text}"
    );
    for line in text.lines() {
        assert!(
            line.starts_with('#') || line.split_whitespace().count() >= 2,
            "broken sample line: {line:?}"
        );
    }
    // Labels are OpenTelemetry's attributes; routes are templates, never raw paths.
    assert!(text.contains(
        "http_server_request_duration_seconds_count\
         {http_request_method=\"GET\",http_route=\"/users/{id}\",http_response_status_code=\"200\"} 2\n"
    ));
    // The duration histogram has the status code and the error type: the failed body after
    // its 200, the panic (no response: no status code) and the client that left (499).
    for series in [
        r#"{http_request_method="GET",http_route="<unmatched>",http_response_status_code="404"} 1"#,
        r#"{http_request_method="GET",http_route="/fail",http_response_status_code="200",error_type="error"} 1"#,
        r#"{http_request_method="GET",http_route="/panic",error_type="panicked"} 1"#,
        r#"{http_request_method="GET",http_route="/sleep",http_response_status_code="499",error_type="aborted"} 1"#,
    ] {
        let line = format!("http_server_request_duration_seconds_count{series}\n");
        assert!(text.contains(&line), "no {line:?} in {text}");
    }
    assert!(!text.contains("status_class=\"2xx\",le="), "the old label");
    assert!(!text.contains(" # {"), "no exemplars in the text format");
    assert!(text.contains(
        "http_server_response_body_bytes_total\
         {http_request_method=\"GET\",http_route=\"/users/{id}\"} 8\n"
    ));
    assert!(!text.contains("/users/1"));
    assert!(text.contains(r#"http_route="<unmatched>""#));
    for old in ["{method=", "{route=", ",route=", "{code=", "_aborted_total"] {
        assert!(!text.contains(old), "{old} in {text}");
    }
    // Each request that ended in an error, by its `error_type`.
    assert!(text.contains("# TYPE http_server_request_errors_total counter\n"));
    for error_type in ["aborted", "error", "panicked"] {
        let line = format!("http_server_request_errors_total{{error_type=\"{error_type}\"}} 1\n");
        assert!(text.contains(&line), "no {line:?} in {text}");
    }
    // Application values: counters end in _total, gauges as they are, text left out.
    assert!(text.contains("# TYPE shop_orders_total counter\nshop_orders_total 7\n"));
    assert!(text.contains("shop_visits_total 3\n"));
    assert!(text.contains("shop_queue_depth 2.5\n"));
    assert!(
        !text.contains("shop_broken"),
        "a NaN gauge is reported as null and left out"
    );
    assert!(text.contains("shop_ratio 0.25\n"));
    assert!(!text.contains("currency"));
    assert!(text.contains("we_ird___app_hits_total 1\n"));
    assert!(text.contains("tower_stats_recording{namespace=\"we\\\"ird \\\\ app\"} 1\n"));
    assert!(
        text.contains("http_server_responses_by_code_total{http_response_status_code=\"404\"} 2\n")
    );
    // The client that left is counted as 499 (class 4xx).
    assert!(
        text.contains("http_server_responses_by_code_total{http_response_status_code=\"499\"} 1\n")
    );
}

#[tokio::test]
async fn openmetrics_passes_the_prometheus_parser() {
    let (_stats, app) = busy_app().await;
    let request = Request::get("/stats/metrics")
        .header(
            http::header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[http::header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    // OpenMetrics names the counter family without `_total`.
    assert!(text.contains("# TYPE http_server_requests counter\nhttp_server_requests_total "));
    let (ok, report) = promtool_parse_openmetrics(&text);
    assert!(
        ok,
        "OpenMetrics parse failed:\n{report}\n--- input ---\n{text}"
    );

    // A broken document is refused by the same check, so the check can fail.
    let broken = text.replace("# EOF\n", "");
    let (ok, _) = promtool_parse_openmetrics(&broken);
    assert!(!ok, "a document without # EOF must be refused");

    // The Python client's parser accepts it too, exemplars included, and reads them.
    let (ok, exemplars, report) = python_parse_openmetrics(&text);
    assert!(ok, "{report}\n--- input ---\n{text}");
    assert!(!exemplars.is_empty(), "no exemplar in\n{text}");
    for e in &exemplars {
        assert_eq!(e["name"], "http_server_request_duration_seconds_bucket");
        let id = e["exemplar"]["labels"]["request_id"].as_str().unwrap();
        assert!(id.bytes().all(|b| b.is_ascii_digit()), "{e}");
        // The value lies in its bucket.
        let value = e["exemplar"]["value"].as_f64().unwrap();
        let le = e["labels"]["le"].as_str().unwrap();
        assert!(le == "+Inf" || value <= le.parse::<f64>().unwrap(), "{e}");
        assert!(e["exemplar"]["timestamp"].as_f64().unwrap() > 1.7e9, "{e}");
    }
    // A malformed exemplar is refused by both parsers; one with more than 128 characters of
    // labels by the Python client's.
    let line = text
        .lines()
        .find(|l| l.contains(" # {request_id="))
        .expect("an exemplar line");
    let (sample, exemplar) = line.split_once(" # ").unwrap();
    let bad = text.replace(
        line,
        &format!("{sample} # {}", exemplar.replace("\"}", "\"")),
    );
    assert!(
        !python_parse_openmetrics(&bad).0,
        "a bad escape must be refused"
    );
    let long = text.replace(
        line,
        &line.replace(
            "{request_id=\"",
            &format!("{{request_id=\"{}", "1".repeat(120)),
        ),
    );
    assert!(
        !python_parse_openmetrics(&long).0,
        "a long exemplar must be refused"
    );
}

/// An app whose requests carry `traceparent` headers, valid or not.
async fn traced(app: &Router, path: &str, traceparent: &str) {
    let request = Request::get(path)
        .header("traceparent", traceparent)
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = send(app, request).await;
    assert!(status.is_success() || status.is_client_error());
}

/// The OpenMetrics exposition of `app`.
async fn openmetrics(app: &Router) -> String {
    let request = Request::get("/stats/metrics")
        .header(http::header::ACCEPT, "application/openmetrics-text")
        .body(Body::empty())
        .unwrap();
    String::from_utf8(send(app, request).await.2).unwrap()
}

#[tokio::test(start_paused = true)]
async fn exemplars_lead_to_the_request_and_its_trace() {
    let stats = Stats::builder()
        .duration_buckets([0.01, 0.1, 1.0])
        .build()
        .unwrap();
    let app = app(&stats);
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    traced(
        &app,
        "/sleep?ms=50",
        &format!("00-{TRACE}-00f067aa0ba902b7-01"),
    )
    .await;
    // Malformed or hostile: uppercase, all zeros, too long for version 00, markup.
    for bad in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        "00-\"}<script>-00f067aa0ba902b7-01",
    ] {
        traced(&app, "/sleep?ms=500", bad).await;
    }
    tokio::time::advance(Duration::from_secs(1)).await;
    let text = openmetrics(&app).await;
    let (ok, exemplars, report) = python_parse_openmetrics(&text);
    assert!(ok, "{report}\n{text}");
    let (ok, report) = promtool_parse_openmetrics(&text);
    assert!(ok, "{report}\n{text}");
    let of = |le: &str| {
        exemplars
            .iter()
            .find(|e| e["labels"]["le"] == le && e["labels"]["http_route"] == "/sleep")
            .unwrap_or_else(|| panic!("no exemplar at le={le} in\n{text}"))
            .clone()
    };
    // The 50 ms request is the exemplar of the 0.1 s bucket, with its trace id.
    let fast = of("0.1");
    assert_eq!(fast["exemplar"]["labels"]["trace_id"], TRACE);
    assert_eq!(fast["exemplar"]["value"], 0.05);
    // A 500 ms request is that of the 1 s bucket; its header was not valid: no trace id.
    let slow = of("1.0");
    assert!(
        slow["exemplar"]["labels"].get("trace_id").is_none(),
        "{slow}"
    );
    assert_eq!(slow["exemplar"]["value"], 0.5);
    assert!(!text.contains("<script>"));
    // No exemplar where no request fell.
    assert!(exemplars
        .iter()
        .all(|e| e["labels"]["le"] != "0.01" && e["labels"]["le"] != "+Inf"));

    // Each id leads to its request, which shows the trace id.
    for (e, trace) in [(&fast, Some(TRACE)), (&slow, None)] {
        let id = e["exemplar"]["labels"]["request_id"].as_str().unwrap();
        let (status, _, body) = get_path(&app, &format!("/stats/requests/{id}?format=json")).await;
        assert_eq!(status, StatusCode::OK);
        let record: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(record["path"], "/sleep");
        assert_eq!(record["trace_id"].as_str(), trace);
        let page = send(
            &app,
            Request::get(format!("/stats/requests/{id}"))
                .header(http::header::ACCEPT, "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let page = String::from_utf8(page.2).unwrap();
        assert_eq!(
            page.contains(&format!(
                r#"<th>Trace id</th><td class="key" colspan="3">{TRACE}</td>"#
            )),
            trace.is_some(),
            "the request page shows the trace id"
        );
        assert_eq!(
            record["processing_seconds"].as_f64(),
            e["exemplar"]["value"].as_f64()
        );
    }
    // A newer request of a bucket replaces its exemplar once 16 requests have started since.
    let first = fast["exemplar"]["labels"]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..16 {
        get_path(&app, "/sleep?ms=50").await;
    }
    let text = openmetrics(&app).await;
    let newer = python_parse_openmetrics(&text)
        .1
        .into_iter()
        .find(|e| e["labels"]["le"] == "0.1" && e["labels"]["http_route"] == "/sleep")
        .expect("an exemplar");
    let newer = newer["exemplar"]["labels"]["request_id"].as_str().unwrap();
    assert_ne!(newer, first);
    assert!(newer.parse::<u64>().unwrap() >= first.parse::<u64>().unwrap() + 16);

    // The JSON carries them too, and a reset clears them.
    let data = data(&app).await;
    let series = &data["namespaces"]["http"]["uri_sets"]["GET /sleep"]["durations"][0];
    assert_eq!(series["status_code"], "200");
    assert_eq!(series["exemplars"][0]["request_id"], newer);
    assert_eq!(series["exemplars"][1]["trace_id"], serde_json::Value::Null);
    stats.reset(None).unwrap();
    assert!(!openmetrics(&app).await.contains(" # {"));

    // The text format is unchanged: no exemplar.
    traced(
        &app,
        "/sleep?ms=50",
        &format!("00-{TRACE}-00f067aa0ba902b7-01"),
    )
    .await;
    let (_, _, body) = get_path(&app, "/stats/metrics").await;
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains(" # {") && !text.contains(TRACE));
    assert!(openmetrics(&app).await.contains(TRACE));
}

#[tokio::test(start_paused = true)]
async fn requests_without_a_detailed_record_are_no_exemplars() {
    let stats = Stats::builder().record_fraction(0.0).build().unwrap();
    let app = app(&stats);
    get_path(&app, "/users/1").await;
    let text = openmetrics(&app).await;
    assert!(text.contains("http_route=\"/users/{id}\""));
    assert!(!text.contains(" # {"), "{text}");
}

#[tokio::test]
async fn promtool_refuses_a_counter_without_total() {
    // The check the text test relies on does reject bad exposition.
    let (ok, report) =
        promtool_check("# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n");
    assert!(!ok, "{report}");
}

#[tokio::test(start_paused = true)]
async fn duration_buckets_are_exact_per_status_code() {
    let stats = Stats::builder()
        .duration_buckets([0.01, 0.1, 1.0])
        .build()
        .unwrap();
    let app = app(&stats);
    for ms in [5, 10, 50, 100, 500, 2000] {
        get_path(&app, &format!("/sleep?ms={ms}")).await;
    }
    get_path(&app, "/sleep?ms=oops").await;
    let (_, _, body) = get_path(&app, "/stats/metrics").await;
    let text = String::from_utf8(body).unwrap();
    let series =
        r#"{http_request_method="GET",http_route="/sleep",http_response_status_code="200""#;
    for (le, n) in [("0.01", 2), ("0.1", 4), ("1.0", 5), ("+Inf", 6)] {
        let line =
            format!("http_server_request_duration_seconds_bucket{series},le=\"{le}\"}} {n}\n");
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains(&format!(
        "http_server_request_duration_seconds_count{series}}} 6\n"
    )));
    assert!(text.contains(&format!(
        "http_server_request_duration_seconds_sum{series}}} 2.665\n"
    )));
    // The rejected query string is a 400 of its own series.
    assert!(text.contains(
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/sleep\",http_response_status_code=\"400\"} 1\n"
    ));
    let (ok, report) = promtool_check(&text);
    assert!(ok, "{report}");
}

#[tokio::test(start_paused = true)]
async fn past_eight_status_codes_a_route_counts_the_rest_as_other() {
    let stats = Stats::new();
    let app = Router::new()
        .route(
            "/code/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u16>| async move {
                    StatusCode::from_u16(n).unwrap()
                },
            ),
        )
        .merge(stats.router())
        .layer(stats.layer());
    let codes = [200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 500];
    for code in codes {
        get_path(&app, &format!("/code/{code}")).await;
    }
    get_path(&app, "/code/500").await;
    let (_, _, body) = get_path(&app, "/stats/metrics").await;
    let text = String::from_utf8(body).unwrap();
    let count = |code: &str| {
        let prefix = format!(
            "http_server_request_duration_seconds_count{{http_request_method=\"GET\",http_route=\"/code/{{n}}\",http_response_status_code=\"{code}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|n| n.parse::<u64>().unwrap())
    };
    // The first eight codes have their series; the other five requests are `_OTHER`.
    for code in &codes[..8] {
        assert_eq!(count(&code.to_string()), Some(1), "{code}");
    }
    for code in &codes[8..] {
        assert_eq!(count(&code.to_string()), None, "{code}");
    }
    assert_eq!(count("_OTHER"), Some(5));
    let series = text
        .lines()
        .filter(|l| {
            l.starts_with("http_server_request_duration_seconds_count{") && l.contains("/code/")
        })
        .count();
    assert_eq!(series, 9);
    let (ok, report) = promtool_check(&text);
    assert!(ok, "{report}");
}

#[test]
fn invalid_duration_buckets_are_refused() {
    for bad in [
        vec![],
        vec![0.0],
        vec![-1.0],
        vec![f64::NAN],
        vec![f64::INFINITY],
        vec![1.0; 65],
    ] {
        let err = Stats::builder()
            .duration_buckets(bad.clone())
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            tower_stats::ConfigError::InvalidDurationBuckets,
            "{bad:?}"
        );
    }
    // Unsorted and repeated bounds are accepted, sorted and deduplicated.
    assert!(Stats::builder()
        .duration_buckets([1.0, 0.5, 1.0])
        .build()
        .is_ok());
}

fn assert_close(actual: &serde_json::Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {actual}"));
    let error = (actual - expected).abs() / expected;
    assert!(
        error <= 1.0 / 64.0,
        "{what}: {actual} vs exact {expected} (relative error {error:.4})"
    );
}

#[tokio::test(start_paused = true)]
async fn json_quantiles_match_known_durations() {
    let stats = Stats::new();
    let app = app(&stats);
    // 100 requests taking 1, 2, …, 100 ms: the nearest-rank quantiles are exact values.
    for ms in 1..=100 {
        get_path(&app, &format!("/sleep?ms={ms}")).await;
    }
    let doc = data(&app).await;
    let set = &doc["namespaces"]["http"]["uri_sets"]["GET /sleep"];
    assert_eq!(set["count"], 100);
    assert_close(&set["p50_seconds"], 0.050, "p50");
    assert_close(&set["p90_seconds"], 0.090, "p90");
    assert_close(&set["p99_seconds"], 0.099, "p99");
    assert_close(&set["p999_seconds"], 0.100, "p99.9");
    assert_close(&set["min_seconds"], 0.001, "min");
    assert_close(&set["max_seconds"], 0.100, "max");
    for window in ["1m", "15m", "total"] {
        let w = &set["windows"][window];
        assert_eq!(w["count"], 100, "{window}");
        assert_eq!(w["errors"], 0, "{window}");
        assert_close(&w["p99_seconds"], 0.099, window);
        // 100 requests in the 5.05 s they took, all inside each window.
        assert_close(&w["requests_per_second"], 100.0 / 5.05, window);
    }
    let http = &doc["namespaces"]["http"];
    assert_close(&http["p50_seconds"], 0.050, "http p50");
    assert_eq!(http["windows"]["total"]["count"], 100);
    let per_minute = http["requests_per_minute"].as_array().unwrap();
    assert_eq!(per_minute.len(), 16);
    assert_eq!(
        per_minute.iter().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        100
    );
}

#[tokio::test(start_paused = true)]
async fn windows_age_out_and_total_stays() {
    let stats = Stats::new();
    let app = app(&stats);
    for _ in 0..10 {
        get_path(&app, "/users/1").await;
    }
    let count = |doc: &serde_json::Value, window: &str| {
        doc["namespaces"]["http"]["uri_sets"]["GET /users/{id}"]["windows"][window]["count"]
            .as_u64()
            .unwrap()
    };
    let doc = data(&app).await;
    assert_eq!(
        (count(&doc, "1m"), count(&doc, "15m"), count(&doc, "total")),
        (10, 10, 10)
    );

    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        count(&data(&app).await, "1m"),
        10,
        "still inside the minute"
    );

    // "1m" covers 60 to 75 seconds: the burst is gone 75 s after it.
    tokio::time::advance(Duration::from_secs(46)).await;
    let doc = data(&app).await;
    assert_eq!(
        (count(&doc, "1m"), count(&doc, "15m"), count(&doc, "total")),
        (0, 10, 10)
    );

    // "15m" covers 15 to 16 minutes (of wall-clock minutes): the burst is there until
    // 15 minutes after it, and gone 16 minutes after it.
    tokio::time::advance(Duration::from_secs(15 * 60 - 76)).await;
    assert_eq!(
        count(&data(&app).await, "15m"),
        10,
        "still inside 15 minutes"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    let doc = data(&app).await;
    assert_eq!(
        (count(&doc, "1m"), count(&doc, "15m"), count(&doc, "total")),
        (0, 0, 10)
    );
    let http = &doc["namespaces"]["http"]["windows"];
    assert_eq!(
        http["total"]["count"], 10,
        "requests to the stats routes are not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recording_loses_no_count() {
    let stats = Stats::new();
    let app = app(&stats);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..2_000 {
                    get_path(&app, "/users/7").await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let snapshot = stats.snapshot();
    let set = &snapshot.http.uri_sets["GET /users/{id}"];
    assert_eq!(set.count, 16_000);
    assert_eq!(set.windows["1m"].count, 16_000);
    assert_eq!(set.windows["total"].count, 16_000);
    assert_eq!(set.durations[0].cumulative.last().copied(), Some(16_000));
    assert_eq!(snapshot.http.windows["total"].count, 16_000);
}

/// Calls: timed timeline entries (here custom events), by name, with their durations and the
/// URI sets that make them, in both formats, checked by promtool.
#[tokio::test(start_paused = true)]
async fn call_statistics_pass_promtool_in_both_formats() {
    let stats = Stats::new();
    let app = Router::new()
        .route(
            "/report",
            get(|stats: tower_stats::RequestStats| async move {
                for _ in 0..3 {
                    let query = stats.start_event("db \"query\"");
                    tokio::time::sleep(Duration::from_millis(4)).await;
                    query.finish();
                }
                stats.event("an instant is no call").ok();
                "done"
            }),
        )
        .merge(stats.router())
        .layer(stats.layer());
    get_path(&app, "/report").await;
    get_path(&app, "/report").await;

    let (_, _, body) = get_path(&app, "/stats/metrics").await;
    let text = String::from_utf8(body).unwrap();
    let (ok, report) = promtool_check(&text);
    assert!(ok && report.trim().is_empty(), "{report}\n{text}");
    for line in [
        "# TYPE tower_stats_http_calls_total counter\n",
        "tower_stats_http_calls_total{call=\"db \\\"query\\\"\"} 6\n",
        "tower_stats_http_call_requests_total{call=\"db \\\"query\\\"\"} 2\n",
        "# TYPE tower_stats_http_call_duration_seconds summary\n",
        "tower_stats_http_call_duration_seconds_count{call=\"db \\\"query\\\"\"} 6\n",
        "tower_stats_http_call_duration_seconds_sum{call=\"db \\\"query\\\"\"} 0.024\n",
        "tower_stats_http_uri_set_calls_total{uri_set=\"GET /report\",call=\"db \\\"query\\\"\"} 6\n",
    ] {
        assert!(text.contains(line), "no {line:?} in {text}");
    }
    assert!(!text.contains("an instant"), "{text}");

    let response = app
        .clone()
        .oneshot(
            Request::get("/stats/metrics")
                .header(http::header::ACCEPT, "application/openmetrics-text")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect("infallible");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let open = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        open.contains("# TYPE tower_stats_http_calls counter\n"),
        "{open}"
    );
    let (ok, report) = promtool_parse_openmetrics(&open);
    assert!(ok, "{report}\n{open}");
}
