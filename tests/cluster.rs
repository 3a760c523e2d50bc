//! The cluster view against a real `redis-server` (feature `redis`): each test starts its own
//! server on a free loopback port and stops it afterwards.
#![cfg(feature = "redis")]

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use tower_stats::{RedisOptions, Stats};

use common::redis::RedisServer;

/// Publish interval of the test instances: short, on the real clock (Redis I/O does not
/// follow tokio's paused clock).
const INTERVAL: Duration = Duration::from_millis(200);

fn instance(url: &str, name: &str, service: &str) -> Stats {
    Stats::builder()
        .instance(name)
        .redis(
            RedisOptions::new(url)
                .service(service)
                .publish_interval(INTERVAL)
                .retention(Duration::from_secs(5)),
        )
        .build()
        .expect("valid options")
}

fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                "slow"
            }),
        )
        .merge(stats.router())
        .layer(stats.layer())
}

async fn send(app: &Router, method: &str, uri: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn data(app: &Router, query: &str) -> Value {
    let (status, body) = send(app, "GET", &format!("/stats/data{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Polls `check` until it holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn states(doc: &Value) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = doc["cluster"]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| {
            (
                i["instance"].as_str().unwrap_or("").to_owned(),
                i["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

fn total(doc: &Value) -> u64 {
    doc["namespaces"]["http"]["requests_total"]
        .as_u64()
        .expect("requests_total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_show_exact_sums_and_quantiles() {
    let redis = RedisServer::start();
    let (a, b) = (
        instance(&redis.url(), "a", "sums"),
        instance(&redis.url(), "b", "sums"),
    );
    let (app_a, app_b) = (app(&a), app(&b));
    for _ in 0..7 {
        send(&app_a, "GET", "/hello").await;
    }
    for _ in 0..5 {
        send(&app_b, "GET", "/slow").await;
    }
    send(&app_b, "GET", "/missing").await;
    let expected = tower_stats::Snapshot::merge([&a.snapshot(), &b.snapshot()]);
    eventually(
        Duration::from_secs(5),
        "both instances seen with all requests",
        || {
            let app_a = app_a.clone();
            async move { total(&data(&app_a, "").await) == 13 }
        },
    )
    .await;
    let doc = data(&app_a, "?scope=cluster").await;
    assert_eq!(doc["cluster"]["status"], "ok");
    assert_eq!(
        states(&doc),
        [("a".into(), "live".into()), ("b".into(), "live".into())]
    );
    for item in doc["cluster"]["instances"].as_array().expect("instances") {
        for key in [
            "instance",
            "boot_id",
            "state",
            "last_seen",
            "requests_total",
        ] {
            assert!(!item[key].is_null(), "{key} in {item}");
        }
    }
    let http = &doc["namespaces"]["http"];
    assert_eq!(http["status_2xx"], 12);
    assert_eq!(http["status_4xx"], 1);
    let sets = &http["uri_sets"];
    assert_eq!(sets["GET /hello"]["count"], 7);
    assert_eq!(sets["GET /slow"]["count"], 5);
    // Quantiles are computed from the merged histograms: what merging the two snapshots
    // gives, not an average of the instances' quantiles.
    let slow = &expected.http.uri_sets["GET /slow"];
    assert_eq!(sets["GET /slow"]["p99_seconds"].as_f64(), slow.p99_seconds);
    assert_eq!(http["p50_seconds"].as_f64(), expected.http.p50_seconds);

    // The local scope is this instance's own document.
    let local = data(&app_a, "?scope=local").await;
    assert_eq!(total(&local), 7);
    assert_eq!(local["cluster"]["scope"], "local");
    // One other instance, by name.
    let other = data(&app_a, "?instance=b").await;
    assert_eq!(total(&other), 6);
    assert_eq!(other["server"]["instance"], "b");
    let (status, _) = send(&app_a, "GET", "/stats/data?instance=nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The metrics stay per instance.
    let (_, metrics) = send(&app_a, "GET", "/stats/metrics").await;
    assert!(
        metrics.contains("http_server_requests_total 7"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_never_slows_requests_and_shows_down_then_ok() {
    let redis = RedisServer::start();
    let stats = instance(&redis.url(), "a", "stopped");
    let app = app(&stats);
    eventually(Duration::from_secs(5), "published once", || {
        let app = app.clone();
        async move { data(&app, "").await["cluster"]["status"] == "ok" }
    })
    .await;

    redis.pause();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut sent = 0;
    while started.elapsed() < INTERVAL * 8 {
        let t = Instant::now();
        send(&app, "GET", "/hello").await;
        slowest = slowest.max(t.elapsed());
        sent += 1;
    }
    // A request that waited on Redis would take at least a publish deadline (the interval).
    assert!(
        slowest < INTERVAL,
        "a request took {slowest:?} while Redis was stopped"
    );
    let doc = data(&app, "").await;
    assert_eq!(doc["cluster"]["status"], "down", "{}", doc["cluster"]);
    assert!(doc["cluster"]["publish_failures"].as_u64() > Some(0));
    assert!(doc["cluster"]["last_error"].is_string());
    // Local statistics keep working: every request sent while Redis was stopped is counted.
    assert_eq!(total(&data(&app, "?scope=local").await), sent);

    redis.resume();
    eventually(Duration::from_secs(10), "ok again after SIGCONT", || {
        let app = app.clone();
        async move { data(&app, "").await["cluster"]["status"] == "ok" }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_redis_gets_exact_totals_again() {
    let mut redis = RedisServer::start();
    let (a, b) = (
        instance(&redis.url(), "a", "killed"),
        instance(&redis.url(), "b", "killed"),
    );
    let (app_a, app_b) = (app(&a), app(&b));
    for _ in 0..3 {
        send(&app_a, "GET", "/hello").await;
        send(&app_b, "GET", "/hello").await;
    }
    eventually(Duration::from_secs(5), "both seen", || {
        let app_a = app_a.clone();
        async move { total(&data(&app_a, "").await) == 6 }
    })
    .await;
    redis.restart();
    for _ in 0..2 {
        send(&app_b, "GET", "/hello").await;
    }
    eventually(
        Duration::from_secs(10),
        "exact again after the restart",
        || {
            let app_a = app_a.clone();
            async move {
                let doc = data(&app_a, "").await;
                doc["cluster"]["status"] == "ok" && total(&doc) == 8 && states(&doc).len() == 2
            }
        },
    )
    .await;
    // Each request's events once.
    let doc = data(&app_a, "").await;
    let (_, events) = send(&app_a, "GET", "/stats/events?format=json").await;
    let events: Value = serde_json::from_str(&events).expect("JSON");
    let mut finished: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "request_finished")
        .filter_map(|e| e["request_id"].as_str())
        .collect();
    let all = finished.len();
    finished.sort_unstable();
    finished.dedup();
    assert_eq!(finished.len(), all, "no duplicate events");
    assert_eq!(all, 8, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_absent_at_start_the_app_serves_and_joins_later() {
    let (port, url) = RedisServer::unused_url();
    let stats = instance(&url, "a", "absent");
    let app = app(&stats);
    let (status, body) = send(&app, "GET", "/hello").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));
    eventually(Duration::from_secs(5), "down while Redis is absent", || {
        let app = app.clone();
        async move { data(&app, "").await["cluster"]["status"] == "down" }
    })
    .await;
    let _redis = RedisServer::start_on(port);
    eventually(Duration::from_secs(10), "joins once Redis is there", || {
        let app = app.clone();
        async move { data(&app, "").await["cluster"]["status"] == "ok" }
    })
    .await;
    assert_eq!(total(&data(&app, "").await), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_restarted_under_its_name_is_a_new_one() {
    let redis = RedisServer::start();
    let watcher = instance(&redis.url(), "watcher", "restart");
    let watch = app(&watcher);
    let old = instance(&redis.url(), "web", "restart");
    send(&app(&old), "GET", "/hello").await;
    eventually(Duration::from_secs(5), "the first run seen", || {
        let watch = watch.clone();
        async move { total(&data(&watch, "").await) == 1 }
    })
    .await;
    old.leave_cluster().await;
    drop(old);
    let new = instance(&redis.url(), "web", "restart");
    send(&app(&new), "GET", "/hello").await;
    send(&app(&new), "GET", "/hello").await;
    eventually(Duration::from_secs(5), "both runs counted once", || {
        let watch = watch.clone();
        async move {
            let doc = data(&watch, "").await;
            total(&doc) == 3
                && states(&doc)
                    == [
                        ("watcher".into(), "live".into()),
                        ("web".into(), "live".into()),
                        ("web".into(), "stopped".into()),
                    ]
        }
    })
    .await;
    // The stopped run left its "stopped" event.
    let (_, text) = send(&watch, "GET", "/stats/events").await;
    assert!(text.contains("Instance stopped"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_leaves_the_view_after_the_retention() {
    let redis = RedisServer::start();
    let watcher = instance(&redis.url(), "watcher", "retention");
    let watch = app(&watcher);
    let gone = Stats::builder()
        .instance("gone")
        .redis(
            RedisOptions::new(redis.url())
                .service("retention")
                .publish_interval(INTERVAL)
                .retention(Duration::from_secs(1)),
        )
        .build()
        .expect("options");
    send(&app(&gone), "GET", "/hello").await;
    eventually(Duration::from_secs(5), "seen", || {
        let watch = watch.clone();
        async move { states(&data(&watch, "").await).len() == 2 }
    })
    .await;
    drop(gone);
    eventually(Duration::from_secs(5), "stale once it stops publishing", || {
        let watch = watch.clone();
        async move {
            states(&data(&watch, "").await).contains(&("gone".into(), "stale".into()))
        }
    })
    .await;
    eventually(Duration::from_secs(5), "gone after its retention", || {
        let watch = watch.clone();
        async move { states(&data(&watch, "").await) == [("watcher".into(), "live".into())] }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_and_clock_offset_come_from_the_redis_clock() {
    let redis = RedisServer::start();
    let watcher = instance(&redis.url(), "watcher", "skew");
    let watch = app(&watcher);
    // Another instance whose clock is an hour ahead: its snapshot says so, its publish time
    // in the set is the server's.
    let skewed = Stats::builder()
        .instance("skewed")
        .build()
        .expect("options");
    send(&app(&skewed), "GET", "/hello").await;
    let mut snapshot: Value = serde_json::to_value(skewed.snapshot()).expect("JSON");
    let ahead = snapshot["generated_at"].as_f64().expect("time") + 3600.0;
    snapshot["generated_at"] = ahead.into();
    let published = serde_json::json!({
        "state": "live", "clock_offset_seconds": 3600.0, "snapshot": snapshot,
    });
    let boot = skewed.boot_id().to_owned();
    let key = |k: &str| format!("tower-stats:{{skew}}:{k}");
    redis
        .cli(&[
            "SET",
            &key(&format!("snapshot:{boot}")),
            &published.to_string(),
            "EX",
            "60",
        ])
        .expect("SET");
    // It keeps publishing: its last publish time is the server's, whatever its own clock.
    let publishing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publisher = {
        let publishing = std::sync::Arc::clone(&publishing);
        let (redis_url, instances) = (redis.url(), key("instances"));
        std::thread::spawn(move || {
            while publishing.load(std::sync::atomic::Ordering::Relaxed) {
                publish_time(&redis_url, &instances, &boot);
                std::thread::sleep(INTERVAL / 2);
            }
        })
    };
    eventually(Duration::from_secs(5), "the skewed instance is live", || {
        let watch = watch.clone();
        async move {
            states(&data(&watch, "").await).contains(&("skewed".into(), "live".into()))
        }
    })
    .await;
    let doc = data(&watch, "").await;
    let skewed_item = doc["cluster"]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["instance"] == "skewed")
        .expect("listed")
        .clone();
    assert_eq!(skewed_item["clock_offset_seconds"], 3600.0);
    let watcher_item = doc["cluster"]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["instance"] == "watcher")
        .expect("listed")
        .clone();
    let offset = watcher_item["clock_offset_seconds"]
        .as_f64()
        .expect("measured");
    assert!(
        offset.abs() < 1.0,
        "the watcher's clock is the server's: {offset}"
    );
    assert_eq!(total(&doc), 1);
    publishing.store(false, std::sync::atomic::Ordering::Relaxed);
    publisher.join().expect("the publisher thread ends");
}

/// Sets `member`'s score in `instances` to the server's time, as a publish does.
fn publish_time(url: &str, instances: &str, member: &str) {
    let port = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .expect("a port")
        .to_owned();
    let script = "local t = redis.call('TIME') \
        redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])";
    let _ = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "EVAL",
            script,
            "1",
            instances,
            member,
        ])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_one_instance_and_pausing_the_cluster() {
    let redis = RedisServer::start();
    let (a, b) = (
        instance(&redis.url(), "a", "control"),
        instance(&redis.url(), "b", "control"),
    );
    let (app_a, app_b) = (app(&a), app(&b));
    for _ in 0..4 {
        send(&app_a, "GET", "/hello").await;
    }
    send(&app_b, "GET", "/hello").await;
    eventually(Duration::from_secs(5), "both seen", || {
        let app_a = app_a.clone();
        async move { total(&data(&app_a, "").await) == 5 }
    })
    .await;
    // A local reset (the default scope) resets only this instance.
    let (status, body) = send(&app_a, "POST", "/stats/reset").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(Duration::from_secs(5), "a's totals restart", || {
        let app_b = app_b.clone();
        async move { total(&data(&app_b, "").await) == 1 }
    })
    .await;

    // A cluster pause reaches every live instance within a publish interval or two.
    let (status, body) = send(&app_a, "POST", "/stats/pause?scope=cluster").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["scope"], "cluster");
    assert!(!a.is_enabled("http").expect("http"));
    eventually(INTERVAL * 10, "b paused through Redis", || {
        let b = b.clone();
        async move { !b.is_enabled("http").expect("http") }
    })
    .await;
    send(&app_b, "GET", "/hello").await;
    assert_eq!(b.snapshot().http.requests_total, 1, "paused: not recorded");
    let (status, _) = send(&app_a, "POST", "/stats/resume?scope=cluster").await;
    assert_eq!(status, StatusCode::OK);
    eventually(INTERVAL * 10, "b resumed through Redis", || {
        let b = b.clone();
        async move { b.is_enabled("http").expect("http") }
    })
    .await;
    // The page's buttons act on the cluster and say so.
    let (_, page) = send(&app_a, "GET", "/stats").await;
    assert!(
        page.contains(r#"<input type="hidden" name="scope" value="cluster">"#),
        "{page}"
    );
    assert!(page.contains("Pause all"), "{page}");
    let (_, local_page) = send(&app_a, "GET", "/stats?scope=local").await;
    assert!(!local_page.contains(r#"name="scope" value="cluster""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_payloads_are_cleaned_capped_or_left_out() {
    let redis = RedisServer::start();
    let watcher = instance(&redis.url(), "watcher", "hostile");
    let watch = app(&watcher);
    let hostile = instance(&redis.url(), "<script>alert(1)</script>\u{7}", "hostile");
    send(&app(&hostile), "GET", "/hello").await;
    let key = |k: &str| format!("tower-stats:{{hostile}}:{k}");
    let time = redis.cli(&["TIME"]).expect("TIME");
    let now = time.lines().next().expect("seconds").trim().to_owned();
    // Garbage under a boot id, another schema version, a member that is not a boot id.
    for (boot, value) in [
        ("00000000000000aa", "not json at all".to_owned()),
        (
            "00000000000000bb",
            serde_json::json!({"state": "live", "snapshot": {"schema_version": 1}}).to_string(),
        ),
    ] {
        redis
            .cli(&["SET", &key(&format!("snapshot:{boot}")), &value, "EX", "60"])
            .expect("SET");
        redis
            .cli(&["ZADD", &key("instances"), &now, boot])
            .expect("ZADD");
    }
    redis
        .cli(&["ZADD", &key("instances"), &now, "../../etc/passwd"])
        .expect("ZADD");
    eventually(
        Duration::from_secs(5),
        "every instance listed, the request counted",
        || {
            let watch = watch.clone();
            async move {
                let doc = data(&watch, "").await;
                states(&doc).len() == 4 && total(&doc) == 1
            }
        },
    )
    .await;
    let doc = data(&watch, "").await;
    let incompatible: Vec<&Value> = doc["cluster"]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["state"] == "incompatible")
        .collect();
    assert_eq!(incompatible.len(), 2, "{}", doc["cluster"]);
    assert!(incompatible.iter().any(|i| i["error"]
        .as_str()
        .unwrap_or("")
        .contains("schema version 1")));
    assert_eq!(total(&doc), 1, "only the compatible instances are merged");
    let (_, page) = send(&watch, "GET", "/stats").await;
    assert!(!page.contains("<script>alert"), "escaped");
    assert!(!page.contains('\u{7}'), "control characters replaced");
    assert!(!page.contains("etc/passwd"), "not a boot id: ignored");
}
