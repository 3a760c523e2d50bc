//! From the dashboard to the requests behind a number: the filters of `/stats/requests`
//! (`uri_set`, `status`, `min_seconds`, `call`) in JSON and HTML, their errors, and the
//! dashboard's links to them, followed as a browser resolves them. Durations come from
//! tokio's paused clock, so they are exact.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http::{header, Method, Request, Response, StatusCode};
use serde_json::Value;
use tower_stats::{RequestStats, Stats};

mod common;

use common::http::{request, send};
use common::url::resolve;

async fn user(Path(id): Path<String>, stats: RequestStats) -> (StatusCode, &'static str) {
    match id.as_str() {
        "missing" => (StatusCode::NOT_FOUND, "no such user"),
        "broken" => (StatusCode::INTERNAL_SERVER_ERROR, "database down"),
        "teapot" => (StatusCode::IM_A_TEAPOT, "short and stout"),
        _ => {
            let lookup = stats.start_event("db.query");
            tokio::time::sleep(Duration::from_millis(20)).await;
            lookup.finish();
            (StatusCode::OK, "a user")
        }
    }
}

async fn report(Path(ms): Path<u64>, stats: RequestStats) -> &'static str {
    let render = stats.start_event("render");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    render.finish();
    "report"
}

fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/reports/{ms}", get(report))
        .merge(stats.router())
        .layer(stats.layer())
}

fn stats() -> Stats {
    Stats::builder()
        .slow_threshold(Duration::from_millis(500))
        .build()
        .expect("valid options")
}

async fn get_req(app: &Router, uri: &str) -> Response<Bytes> {
    send(app, request(Method::GET, uri)).await
}

async fn get_html(app: &Router, uri: &str) -> Response<Bytes> {
    let request = Request::get(uri)
        .header(header::ACCEPT, "text/html")
        .body(axum::body::Body::empty())
        .unwrap();
    send(app, request).await
}

fn text(response: &Response<Bytes>) -> String {
    String::from_utf8(response.body().to_vec()).expect("UTF-8")
}

/// The paths of the requests `/stats/requests?{query}` lists, newest first.
async fn listed(app: &Router, query: &str) -> Vec<String> {
    let response = get_req(app, &format!("/stats/requests?{query}&format=json")).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{query}: {}",
        text(&response)
    );
    let body: Value = serde_json::from_slice(response.body()).expect("JSON");
    body["requests"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["path"].as_str().expect("a path").to_owned())
        .collect()
}

/// Requests made one after another, 1 ms apart, so that their order is their end times'.
async fn traffic(app: &Router) {
    for path in [
        "/users/1",
        "/users/missing",
        "/users/broken",
        "/reports/600",
        "/users/2",
        "/users/teapot",
        "/reports/100",
    ] {
        get_req(app, path).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn each_filter_and_their_combination() {
    let stats = stats();
    let app = app(&stats);
    traffic(&app).await;

    assert_eq!(
        listed(&app, "").await.len(),
        7,
        "no filter: every recent request"
    );
    assert_eq!(
        listed(&app, "uri_set=GET+%2Fusers%2F%7Bid%7D").await,
        [
            "/users/teapot",
            "/users/2",
            "/users/broken",
            "/users/missing",
            "/users/1"
        ]
    );
    assert_eq!(
        listed(&app, "uri_set=GET+%2Fnowhere").await,
        Vec::<String>::new()
    );
    assert_eq!(listed(&app, "status=404").await, ["/users/missing"]);
    assert_eq!(
        listed(&app, "status=4xx").await,
        ["/users/teapot", "/users/missing"]
    );
    assert_eq!(listed(&app, "status=5XX").await, ["/users/broken"]);
    assert_eq!(
        listed(&app, "status=2xx&uri_set=GET+%2Freports%2F%7Bms%7D").await,
        ["/reports/100", "/reports/600"]
    );
    assert_eq!(
        listed(&app, "min_seconds=0.1").await,
        ["/reports/100", "/reports/600"]
    );
    assert_eq!(listed(&app, "min_seconds=0.5").await, ["/reports/600"]);
    assert_eq!(
        listed(&app, "min_seconds=0.6").await,
        ["/reports/600"],
        "at least, not more than"
    );
    assert_eq!(
        listed(&app, "call=db.query").await,
        ["/users/2", "/users/1"]
    );
    assert_eq!(
        listed(&app, "call=render&min_seconds=0.2").await,
        ["/reports/600"]
    );
    assert_eq!(
        listed(&app, "call=db").await,
        Vec::<String>::new(),
        "whole names only"
    );
    // Empty values, as an empty form field sends them, are no filter.
    assert_eq!(
        listed(&app, "uri_set=&status=&min_seconds=&call=")
            .await
            .len(),
        7
    );

    // The document says which filters it applied.
    let body: Value = serde_json::from_slice(
        get_req(
            &app,
            "/stats/requests?status=5xx&min_seconds=0.5&format=json",
        )
        .await
        .body(),
    )
    .unwrap();
    assert_eq!(
        body["filters"],
        serde_json::json!({"status": "5xx", "min_seconds": 0.5})
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_request_no_longer_among_the_recent_ones_is_still_found() {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_millis(500))
        .recent_capacity(2)
        .build()
        .unwrap();
    let app = app(&stats);
    traffic(&app).await;
    assert_eq!(
        listed(&app, "").await,
        ["/reports/100", "/users/teapot", "/reports/600"]
    );
    assert_eq!(listed(&app, "min_seconds=0.5").await, ["/reports/600"]);
}

#[tokio::test(start_paused = true)]
async fn invalid_filters_get_a_clear_400() {
    let stats = stats();
    let app = app(&stats);
    traffic(&app).await;
    for (query, names) in [
        ("status=600", "`status`"),
        ("status=5x", "`status`"),
        ("status=ok", "`status`"),
        ("min_seconds=-1", "`min_seconds`"),
        ("min_seconds=soon", "`min_seconds`"),
        ("min_seconds=NaN", "`min_seconds`"),
        ("uri_set=a&uri_set=b", "malformed query string"),
    ] {
        let response = get_req(&app, &format!("/stats/requests?{query}&format=json")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["status"], 400);
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(names), "{query}: {message}");

        let page = get_html(&app, &format!("/stats/requests?{query}")).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{query}");
        let html = text(&page);
        assert!(
            html.contains(&maud::html! { (message) }.into_string()),
            "the page says why: {message}"
        );
        assert!(!html.contains("/users/1<"), "nothing is listed on an error");
    }
    let long = format!("/stats/requests?call={}&format=json", "x".repeat(2000));
    assert_eq!(get_req(&app, &long).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(start_paused = true)]
async fn the_page_lists_the_matches_under_a_form_holding_the_filters() {
    let stats = stats();
    let app = app(&stats);
    traffic(&app).await;
    let page = get_html(
        &app,
        "/stats/requests?uri_set=GET+%2Fusers%2F%7Bid%7D&status=4xx",
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = text(&page);
    assert!(html.contains(">/users/missing</a>"), "{html}");
    assert!(html.contains(">/users/teapot</a>"));
    assert!(!html.contains(">/users/1</a>"));
    assert!(!html.contains(">/reports/100</a>"));
    assert!(html.contains("2 matching, newest first"));
    assert!(html.contains(r#"name="uri_set" value="GET /users/{id}""#));
    assert!(html.contains(r#"name="status" value="4xx""#));
    // The JSON link keeps the filters.
    assert!(html.contains(
        r#"href="./requests?uri_set=GET+%2Fusers%2F%7Bid%7D&amp;status=4xx&amp;format=json""#
    ));
    // A request-derived value in the form is escaped.
    let page = get_html(&app, "/stats/requests?call=%22%3E%3Cscript%3E").await;
    let html = text(&page);
    assert!(!html.contains("<script>"));
    assert!(html.contains(r#"value="&quot;&gt;&lt;script&gt;""#));
    assert!(html.contains("No recent request matches."));
}

#[tokio::test(start_paused = true)]
async fn the_dashboard_links_each_uri_set_and_slow_request_to_its_requests() {
    let stats = stats();
    let app = app(&stats);
    traffic(&app).await;
    let html = text(&get_html(&app, "/stats").await);
    let page = "/stats";

    // Each URI set's key links to its requests; its 4xx and 5xx counts to those.
    for (key, href, expected) in [
        (
            "GET /users/{id}",
            "./stats/requests?uri_set=GET+%2Fusers%2F%7Bid%7D",
            5,
        ),
        (
            "GET /reports/{ms}",
            "./stats/requests?uri_set=GET+%2Freports%2F%7Bms%7D",
            2,
        ),
    ] {
        let anchor = format!(r#"<a href="{href}" title="Its recent requests">{key}</a>"#);
        assert!(html.contains(&anchor), "no {anchor} in the page");
        let target = resolve(page, &href.replace("&amp;", "&"));
        let body: Value =
            serde_json::from_slice(get_req(&app, &format!("{target}&format=json")).await.body())
                .unwrap();
        let records = body["requests"].as_array().unwrap();
        assert_eq!(records.len(), expected, "{key}");
        assert!(records.iter().all(|r| r["uri_set"] == key));
    }
    let five = r#"href="./stats/requests?uri_set=GET+%2Fusers%2F%7Bid%7D&amp;status=5xx""#;
    assert!(html.contains(five), "the 5xx count links to those requests");
    let four = r#"href="./stats/requests?uri_set=GET+%2Fusers%2F%7Bid%7D&amp;status=4xx""#;
    assert!(html.contains(four));
    let target = resolve(
        page,
        "./stats/requests?uri_set=GET+%2Fusers%2F%7Bid%7D&status=5xx",
    );
    assert_eq!(
        listed(&app, target.split_once('?').unwrap().1).await,
        ["/users/broken"]
    );
    // No link on a zero count.
    assert!(!html.contains("uri_set=GET+%2Freports%2F%7Bms%7D&amp;status="));

    // The slow request links to its page.
    let slow = stats.snapshot().http.slow_requests;
    assert_eq!(slow.len(), 1);
    let href = format!("./stats/requests/{}", slow[0].id);
    assert!(
        html.contains(&format!(r#"href="{href}""#)),
        "no link to the slow request"
    );
    let detail = get_req(&app, &format!("{}?format=json", resolve(page, &href))).await;
    assert_eq!(detail.status(), StatusCode::OK);
    let record: Value = serde_json::from_slice(detail.body()).unwrap();
    assert_eq!(record["path"], "/reports/600");
}
