//! The `/stats` page through `oneshot`: hostile input in every place a string can reach the
//! page, the security headers, auto-refresh clamping, URI set ordering and latency bars, the
//! windows table and the requests-per-minute sparkline, the controls, and per-key formatting
//! rules. Then the recent requests pages (`/stats/requests`, `/stats/requests/{id}`): HTML
//! for browsers and JSON otherwise, links that resolve wherever the router is nested, the
//! timeline waterfall, the 404 page; and the dashboard's recent requests, latest events and
//! maintenance switch.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::sync::Notify;
use tower::ServiceExt;
use tower_stats::report::html::{Formatting, CONTENT_SECURITY_POLICY};
use tower_stats::{Combine, CustomEvent, RequestStats, Stats, UriSet};

mod common;

use common::http::{request, send as send_request};
use common::url::resolve;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SCRIPT: &str = "<script>alert(1)</script>";
const ATTRIBUTE: &str = "\"onmouseover=alert(1) x=\"";
const BREAKOUT: &str = "</table><img src=x onerror=alert(1)>";
const JS_URL: &str = "javascript:alert(1)";
const CONTROL: &str = "bell\u{7}escape\u{1b}[31mnull\u{0}newline\nend";

/// Every hostile string, for values that can carry any text.
fn hostile() -> Vec<String> {
    vec![
        SCRIPT.to_owned(),
        ATTRIBUTE.to_owned(),
        BREAKOUT.to_owned(),
        JS_URL.to_owned(),
        CONTROL.to_owned(),
        long_unicode(),
    ]
}

/// 10,000 characters of mixed scripts, emoji and markup characters.
fn long_unicode() -> String {
    "漢字🙂é<>\"'&ß".chars().cycle().take(10_000).collect()
}

/// Sends `GET uri` and collects the whole response body.
async fn send(app: &Router, uri: &str) -> Response<Bytes> {
    send_request(app, request(http::Method::GET, uri)).await
}

async fn page(app: &Router, uri: &str) -> String {
    let response = send(app, uri).await;
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    String::from_utf8(response.body().to_vec()).expect("the page is UTF-8")
}

/// Elements the page is made of; anything else in the markup was injected.
const ELEMENTS: &[&str] = &[
    "html", "head", "meta", "title", "link", "body", "header", "main", "footer", "nav", "section",
    "div", "h1", "h2", "h3", "p", "span", "strong", "time", "a", "form", "label", "input",
    "button", "table", "thead", "tbody", "tr", "th", "td", "svg", "rect", "polyline", "polygon",
    "circle", "text",
];
const VOID: &[&str] = &["meta", "link", "input"];
const ATTRIBUTES: &[&str] = &[
    "lang",
    "charset",
    "name",
    "content",
    "http-equiv",
    "rel",
    "href",
    "class",
    "datetime",
    "title",
    "aria-label",
    "aria-current",
    "placeholder",
    "size",
    "method",
    "action",
    "type",
    "value",
    "disabled",
    "width",
    "height",
    "viewbox",
    "preserveaspectratio",
    "role",
    "x",
    "y",
    "points",
    "fill",
    "cx",
    "cy",
    "r",
];

/// Walks every tag of the page: each element and attribute must be one the page uses, no
/// URL attribute may hold a `javascript:` URL, and every element must be closed in order.
/// maud writes every attribute value in double quotes with `<`, `>`, `&` and `"` escaped,
/// so the first `>` after `<` ends a tag; a `<` in text would be a parse error here.
fn check_well_formed(page: &str) {
    let rest = page
        .strip_prefix("<!DOCTYPE html>")
        .expect("the page starts with a doctype");
    let mut stack: Vec<String> = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, (usize, usize)>::new();
    let mut i = 0;
    while let Some(offset) = rest[i..].find('<') {
        let start = i + offset;
        let end = start
            + rest[start..]
                .find('>')
                .unwrap_or_else(|| panic!("unterminated tag at {start}"));
        let tag = &rest[start + 1..end];
        i = end + 1;
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
            counts.entry(name.to_owned()).or_default().1 += 1;
            continue;
        }
        let name_end = tag
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        assert!(
            ELEMENTS.contains(&name),
            "unexpected element <{name}> in {tag:?}"
        );
        check_attributes(name, &tag[name_end..]);
        if !VOID.contains(&name) {
            stack.push(name.to_owned());
            counts.entry(name.to_owned()).or_default().0 += 1;
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    for element in ["table", "tr", "td", "th", "section", "form"] {
        let (open, close) = counts.get(element).copied().unwrap_or_default();
        assert_eq!(
            open, close,
            "<{element}> opened {open} and closed {close} times"
        );
    }
}

fn check_attributes(element: &str, mut attrs: &str) {
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return;
        }
        let name_end = attrs
            .find(|c: char| c == '=' || c.is_ascii_whitespace())
            .unwrap_or(attrs.len());
        let name = attrs[..name_end].to_ascii_lowercase();
        assert!(
            ATTRIBUTES.contains(&name.as_str()),
            "unexpected attribute {name:?} on <{element}>"
        );
        assert!(
            !name.starts_with("on"),
            "event handler {name} on <{element}>"
        );
        attrs = &attrs[name_end..];
        let Some(value_start) = attrs.strip_prefix("=\"") else {
            continue;
        };
        let value_end = value_start
            .find('"')
            .unwrap_or_else(|| panic!("unterminated {name} value on <{element}>"));
        let value = &value_start[..value_end];
        if matches!(name.as_str(), "href" | "action" | "src") {
            let lowered: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect::<String>()
                .to_ascii_lowercase();
            assert!(
                lowered.starts_with("./"),
                "{name}={value:?} on <{element}> is not a relative same-origin URL"
            );
        }
        attrs = &value_start[value_end + 1..];
    }
}

#[test]
fn the_checker_rejects_broken_markup() {
    let bad = [
        "<!DOCTYPE html><table><tr><td>x</table>",
        "<!DOCTYPE html><div><img src=x></div>",
        "<!DOCTYPE html><div onmouseover=\"x\"></div>",
        "<!DOCTYPE html><a href=\"javascript:alert(1)\">x</a>",
        "<!DOCTYPE html><div>",
    ];
    for page in bad {
        let result = std::panic::catch_unwind(|| check_well_formed(page));
        assert!(result.is_err(), "accepted {page}");
    }
    check_well_formed("<!DOCTYPE html><html><body><a href=\"./stats\">x</a></body></html>");
}

/// The raw hostile strings, and the fragments that would make them work, never appear.
fn check_no_injection(page: &str) {
    for raw in [SCRIPT, ATTRIBUTE, BREAKOUT] {
        assert!(!page.contains(raw), "unescaped {raw:?}");
    }
    // Escaped text may read `onerror=`; as attributes, check_well_formed refuses every `on*`.
    let lower = page.to_ascii_lowercase();
    for fragment in ["<script", "<img", "\"javascript:", "unsafe-inline"] {
        assert!(!lower.contains(fragment), "{fragment:?} in the page");
    }
    assert!(
        !page.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the page"
    );
    let long = long_unicode();
    assert!(
        !page.contains(&long[..long.char_indices().nth(600).map_or(long.len(), |(i, _)| i)]),
        "a 10,000-character string was not capped"
    );
    check_well_formed(page);
}

#[derive(Serialize)]
struct Order {
    item: String,
    note: String,
}

/// Adds the `UriSet` label carried by `x-label`, as an outer middleware would.
async fn label_from_header(mut request: Request, next: Next) -> axum::response::Response {
    let label = request
        .headers()
        .get("x-label")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(label) = label {
        request.extensions_mut().insert(UriSet::new(label));
    }
    next.run(request).await
}

#[tokio::test]
async fn hostile_input_is_escaped_everywhere() -> TestResult {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_nanos(1))
        .uri_set_with(|parts| {
            parts
                .uri
                .path()
                .starts_with("/hook")
                .then(|| Cow::Owned(format!("hook {BREAKOUT} {ATTRIBUTE}")))
        })
        .build()?;

    // Application values: texts, keys, collections, and a namespace with a hostile name.
    let shop = stats.namespace("shop")?;
    for (n, value) in hostile().into_iter().enumerate() {
        shop.text(&format!("text_{n}"))?.set(value);
    }
    shop.counter(ATTRIBUTE, Combine::Sum)?.add(3);
    shop.text("homepage")?.set(JS_URL);
    let orders = shop.list("orders", 20)?;
    let by_id = shop.map("by_id", 20)?;
    for value in hostile() {
        orders.push(&Order {
            item: value.clone(),
            note: JS_URL.to_owned(),
        })?;
        by_id.insert(value.clone(), &serde_json::json!({ value.clone(): value }))?;
    }
    let evil = stats.namespace(SCRIPT)?;
    evil.text(BREAKOUT)?.set(ATTRIBUTE);

    // A request held in flight while the page renders, with a hostile path.
    let release = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let app = {
        let (release, entered) = (Arc::clone(&release), Arc::clone(&entered));
        Router::new()
            .route(
                "/hold/{*rest}",
                get(move || async move {
                    entered.notify_one();
                    release.notified().await;
                    "released"
                }),
            )
            .fallback(|| async { (StatusCode::NOT_FOUND, "no") })
            .merge(stats.router())
            .layer(stats.layer())
            .layer(middleware::from_fn(label_from_header))
    };
    let held = {
        let app = app.clone();
        tokio::spawn(async move {
            send(
                &app,
                "/hold/%3Cscript%3Ealert(1)%3C/script%3E%22onmouseover=alert(1)",
            )
            .await
        })
    };
    entered.notified().await;

    // Hostile paths (percent-encoded, as a client must send them) and labels.
    for path in [
        "/%3Cscript%3Ealert(1)%3C/script%3E",
        "/%22onmouseover=alert(1)%20x=%22",
        "/%3C/table%3E%3Cimg%20src=x%20onerror=alert(1)%3E",
        "/javascript:alert(1)",
        "/hook/%3Cscript%3E",
        "/%E6%BC%A2%07%1B",
    ] {
        send(&app, path).await;
    }
    for label in [SCRIPT, ATTRIBUTE, BREAKOUT, JS_URL] {
        let request = http::Request::get("/labelled")
            .header("x-label", label)
            .body(Body::empty())?;
        app.clone().oneshot(request).await?;
    }

    let html = page(&app, "/stats").await;
    release.notify_one();
    held.await?;

    check_no_injection(&html);
    // The values are on the page, escaped.
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&quot;onmouseover=alert(1) x=&quot;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;/table&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(
        html.contains("hook &lt;/table&gt;"),
        "hook label missing: {html}"
    );
    assert!(
        html.contains("GET &lt;script&gt;"),
        "UriSet label missing: {html}"
    );
    assert!(
        html.contains("/hold/%3Cscript%3E"),
        "in-flight path missing: {html}"
    );
    assert!(
        html.contains("/javascript:alert(1)"),
        "slow path missing: {html}"
    );
    assert!(
        html.contains("<h2>&lt;script&gt;alert(1)&lt;/script&gt;</h2>"),
        "{html}"
    );
    assert!(
        html.contains("name=\"namespace\" value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{html}"
    );
    assert!(
        html.contains("漢字🙂é&lt;&gt;&quot;'&amp;ß"),
        "long text missing: {html}"
    );
    Ok(())
}

#[tokio::test]
async fn the_query_string_is_never_reflected() -> TestResult {
    let stats = Stats::new();
    let app: Router = stats.router();
    for query in [
        "?x=%3Cscript%3Ealert(1)%3C/script%3E",
        "?refresh=%3Cscript%3E&sort=%22onmouseover=alert(1)",
        "?sort=max&refresh=5&zzqzz=1",
        "?%%%%",
    ] {
        let html = page(&app, &format!("/stats{query}")).await;
        check_no_injection(&html);
        assert!(
            !html.contains("zzqzz") && !html.contains("%3C"),
            "{query}: {html}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn page_and_stylesheet_headers() -> TestResult {
    let stats = Stats::new();
    let app: Router = stats.router();
    let response = send(&app, "/stats").await;
    let headers = response.headers();
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    );
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    // Not no-referrer: browsers would then send `Origin: null` with the page's form posts.
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    let html = String::from_utf8(response.body().to_vec())?;
    assert!(html.contains(r#"<link rel="stylesheet" href="./stats/style.css">"#));
    assert!(html.contains(r#"<meta charset="utf-8">"#));

    let css = send(&app, "/stats/style.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(
        css.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert_eq!(css.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(std::str::from_utf8(css.body())?.contains("table"));

    // Nested, the links stay relative to the page.
    let nested: Router = Router::new().nest("/admin", stats.router());
    let html = page(&nested, "/admin/stats").await;
    assert!(html.contains(r#"href="./stats/style.css""#));
    assert!(html.contains(r#"action="./stats/pause""#));
    assert_eq!(
        send(&nested, "/admin/stats/style.css").await.status(),
        StatusCode::OK
    );
    Ok(())
}

fn refresh_of(html: &str) -> Option<u32> {
    let start = html.find(r#"<meta http-equiv="refresh" content=""#)?;
    let rest = &html[start + r#"<meta http-equiv="refresh" content=""#.len()..];
    rest[..rest.find('"')?].parse().ok()
}

#[tokio::test]
async fn refresh_is_off_by_default_and_clamped() -> TestResult {
    let stats = Stats::new();
    let app: Router = stats.router();
    let cases = [
        ("/stats", None),
        ("/stats?refresh=abc", None),
        ("/stats?refresh=", None),
        ("/stats?refresh=-5", None),
        ("/stats?refresh=1.5", None),
        ("/stats?refresh=0", Some(2)),
        ("/stats?refresh=1", Some(2)),
        ("/stats?refresh=10", Some(10)),
        ("/stats?refresh=86400", Some(3600)),
        ("/stats?refresh=99999999999999999999999999", Some(3600)),
    ];
    for (uri, expected) in cases {
        let html = page(&app, uri).await;
        assert_eq!(refresh_of(&html), expected, "{uri}");
        if expected.is_none() {
            assert!(!html.contains("http-equiv"), "{uri}");
        }
    }
    // The page links to switching refresh on, and off again.
    assert!(page(&app, "/stats")
        .await
        .contains(r#"href="./stats?refresh=5""#));
    assert!(page(&app, "/stats?refresh=5&sort=max")
        .await
        .contains(r#"href="./stats?sort=max">Stop</a>"#));
    Ok(())
}

/// Positions of the URI set rows `keys` in the URI sets table, in page order.
fn uri_set_order(html: &str, keys: &[&str]) -> Vec<String> {
    let table = &html[html
        .find(r#"class="records uri-sets""#)
        .expect("URI sets table")..];
    let table = &table[..table.find("</table>").expect("end of table")];
    let mut found: Vec<(usize, String)> = keys
        .iter()
        .map(|k| {
            // Each key links to its requests.
            let cell = format!(r#"title="Its recent requests">{k}</a></td>"#);
            (
                table
                    .find(&cell)
                    .unwrap_or_else(|| panic!("{k} row missing")),
                (*k).to_owned(),
            )
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, k)| k).collect()
}

#[tokio::test(start_paused = true)]
async fn uri_sets_sort_by_count_average_and_max() -> TestResult {
    let stats = Stats::new();
    let app: Router = Router::new()
        .route("/a", get(|| async { "a" }))
        .route(
            "/b",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(40)).await;
                "b"
            }),
        )
        .route(
            "/c",
            get(
                |axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    if q.is_some() {
                        tokio::time::sleep(Duration::from_millis(60)).await;
                    }
                    "c"
                },
            ),
        )
        .merge(stats.router())
        .layer(stats.layer());
    for uri in ["/a", "/a", "/a", "/b", "/c", "/c?slow"] {
        send(&app, uri).await;
    }
    let keys = ["GET /a", "GET /b", "GET /c"];
    // count: a 3, c 2, b 1; average: b 40 ms, c 30 ms, a ~0; max: c 60 ms, b 40 ms, a ~0.
    let by_count = vec!["GET /a", "GET /c", "GET /b"];
    assert_eq!(uri_set_order(&page(&app, "/stats").await, &keys), by_count);
    assert_eq!(
        uri_set_order(&page(&app, "/stats?sort=count").await, &keys),
        by_count
    );
    assert_eq!(
        uri_set_order(&page(&app, "/stats?sort=bogus").await, &keys),
        by_count
    );
    assert_eq!(
        uri_set_order(&page(&app, "/stats?sort=avg").await, &keys),
        vec!["GET /b", "GET /c", "GET /a"]
    );
    let html = page(&app, "/stats?sort=max&refresh=30").await;
    assert_eq!(
        uri_set_order(&html, &keys),
        vec!["GET /c", "GET /b", "GET /a"]
    );
    // The sort links keep the refresh interval; the current order is not a link.
    assert!(
        html.contains(r#"href="./stats?sort=avg&amp;refresh=30""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<strong aria-current="true">max</strong>"#),
        "{html}"
    );
    Ok(())
}

/// The text of each cell of `row` (markup between `<tr>` and `</tr>`), tags removed.
fn cells(row: &str) -> Vec<String> {
    row.split("</t")
        .filter_map(|part| {
            let start = part.rfind("<td").or_else(|| part.rfind("<th"))?;
            let mut text = String::new();
            let mut in_tag = false;
            for c in part[start..].chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            Some(text.trim().to_owned())
        })
        .collect()
}

/// `(p50 bar width, p99 bar width)` of the URI set `key`'s latency bar.
fn latency_bar(html: &str, key: &str) -> (f64, f64) {
    let row = body_rows(html, "records uri-sets")
        .into_iter()
        .find(|row| row.contains(&format!(r#"title="Its recent requests">{key}</a></td>"#)))
        .unwrap_or_else(|| panic!("{key} row missing"));
    let width = |class: &str| -> f64 {
        let rect = &row[row
            .find(&format!(r#"<rect class="{class}""#))
            .unwrap_or_else(|| panic!("no {class} bar for {key}"))..];
        let value = &rect[rect.find("width=\"").expect("width") + 7..];
        value[..value.find('"').expect("end of width")]
            .parse()
            .expect("a number")
    };
    (width("p50"), width("p99"))
}

#[tokio::test(start_paused = true)]
async fn uri_sets_sort_by_p99_and_bars_use_the_histogram() -> TestResult {
    let stats = Stats::new();
    // Each route sleeps `?ms=` milliseconds (paused clock: exact durations, no waiting).
    let sleepy = || {
        get(
            |axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                let ms = q
                    .as_deref()
                    .and_then(|q| q.strip_prefix("ms="))
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "done"
            },
        )
    };
    let app: Router = Router::new()
        .route("/x", sleepy())
        .route("/y", sleepy())
        .route("/z", sleepy())
        .merge(stats.router())
        .layer(stats.layer());
    // x: 200 x 10 ms and one 200 ms outlier: many requests, a low p99, the longest max.
    for _ in 0..200 {
        send(&app, "/x?ms=10").await;
    }
    send(&app, "/x?ms=200").await;
    // y: 0 and 60 ms: the highest p99 (nearest rank of two samples), a middling average.
    send(&app, "/y").await;
    send(&app, "/y?ms=60").await;
    // z: 4 x 40 ms: the highest average, the lowest max.
    for _ in 0..4 {
        send(&app, "/z?ms=40").await;
    }
    let keys = ["GET /x", "GET /y", "GET /z"];
    let orders = [
        ("", ["GET /x", "GET /z", "GET /y"]),
        ("?sort=avg", ["GET /z", "GET /y", "GET /x"]),
        ("?sort=p99", ["GET /y", "GET /z", "GET /x"]),
        ("?sort=max", ["GET /x", "GET /y", "GET /z"]),
    ];
    for (query, expected) in orders {
        let html = page(&app, &format!("/stats{query}")).await;
        assert_eq!(uri_set_order(&html, &keys), expected, "{query}");
        check_no_injection(&html);
    }

    let html = page(&app, "/stats?sort=p99&refresh=30").await;
    assert!(
        html.contains(r#"<strong aria-current="true">p99</strong>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="./stats?sort=max&amp;refresh=30""#),
        "{html}"
    );
    // The new columns, without the old min column, and the bars' legend.
    let head = &html[html.find(r#"class="records uri-sets""#).expect("table")..];
    let head = &head[..head.find("</thead>").expect("thead")];
    let columns = cells(head);
    assert_eq!(
        &columns[..8],
        ["URI set", "Count", "Share", "Avg", "p50", "p99", "p99.9", "Max"],
        "{columns:?}"
    );
    assert!(!columns.iter().any(|c| c == "Min"), "{columns:?}");
    assert!(html.contains("to the scale of the largest p99"), "{html}");
    let y = cells(
        body_rows(&html, "records uri-sets")
            .into_iter()
            .find(|row| row.contains("GET /y"))
            .expect("y row"),
    );
    // Count, then avg, p50, p99, p99.9 and max after the share.
    assert_eq!(y[1], "2", "{y:?}");
    let ms = |cell: &str| -> f64 {
        cell.strip_suffix(" ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert_eq!(y[3], "30.0 ms", "{y:?}");
    for p99 in [&y[5], &y[6]] {
        assert!((ms(p99) - 60.0).abs() <= 60.0 / 64.0, "{y:?}");
    }
    assert_eq!(y[7], "60.0 ms", "{y:?}");

    // Bars: p99 against the largest p99 (y's), so y fills the bar and x, whose max is the
    // longest of all, gets about a sixth of it (10 ms of 60 ms, within the histogram's 1/64).
    let (y50, y99) = latency_bar(&html, "GET /y");
    let full = y99;
    assert!(full >= 60.0, "y p99 bar {y99}");
    assert!(y50 <= 1.0, "y p50 bar {y50}");
    let near = |width: f64, ms: f64| (width - full * ms / 60.0).abs() <= full / 64.0;
    let (x50, x99) = latency_bar(&html, "GET /x");
    assert!(
        near(x50, 10.0) && near(x99, 10.0),
        "x {x50} {x99} of {full}"
    );
    let (z50, z99) = latency_bar(&html, "GET /z");
    assert!(
        near(z50, 40.0) && near(z99, 40.0),
        "z {z50} {z99} of {full}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn windows_table_and_requests_per_minute_sparkline() -> TestResult {
    let stats = Stats::new();
    let app: Router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .merge(stats.router())
        .layer(stats.layer());
    for _ in 0..5 {
        send(&app, "/hello").await;
    }
    // Two minutes later the first five have left "1m" but not "15m" or "total".
    tokio::time::advance(Duration::from_secs(120)).await;
    for _ in 0..3 {
        send(&app, "/hello").await;
    }
    let html = page(&app, "/stats").await;
    check_no_injection(&html);

    // The windows table comes first in the http card, before the tiles.
    let windows_at = html.find(r#"<table class="windows">"#).expect("table");
    assert!(windows_at > html.find("<h2>http</h2>").unwrap_or(usize::MAX));
    assert!(windows_at < html.find(r#"<div class="tiles">"#).unwrap_or(0));
    let head = &html[windows_at..];
    let head = cells(&head[..head.find("</thead>").expect("thead")]);
    assert_eq!(
        head,
        ["Window", "Requests", "Req/s", "Errors", "Avg", "p50", "p90", "p99", "p99.9", "Max"]
    );
    let rows: Vec<Vec<String>> = body_rows(&html, "windows").into_iter().map(cells).collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r[0].split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(names, ["1m", "15m", "total"]);
    let counts: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(counts, ["3", "8", "8"], "{rows:?}");
    for row in &rows {
        assert_eq!(row.len(), 10, "{row:?}");
        assert!(row[0].contains("over "), "{row:?}");
        assert!(row[2].ends_with("/s"), "{row:?}");
        assert_eq!(row[3], "0", "{row:?}");
        // Instant handlers under a paused clock: every latency is known and tiny.
        for cell in &row[4..] {
            assert_ne!(cell, "—", "{row:?}");
        }
    }
    // The total covers the whole two minutes.
    assert!(rows[2][0].contains("over 2 min 0 s"), "{rows:?}");

    // The sparkline: 16 minutes, oldest first, five two minutes ago and three now.
    let svg = &html[html.find(r#"<svg class="sparkline""#).expect("sparkline")..];
    let svg = &svg[..svg.find("</svg>").expect("end of svg")];
    assert!(
        svg.contains(r#"aria-label="requests per minute, last 16 minutes""#),
        "{svg}"
    );
    let line = &svg[svg
        .find(r#"<polyline class="line" points=""#)
        .expect("line")
        + 31..];
    let points: Vec<&str> = line[..line.find('"').expect("end")]
        .split_whitespace()
        .collect();
    assert_eq!(points.len(), 16, "{points:?}");
    let values = "0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 3";
    assert!(
        svg.contains(&format!(
            "<title>requests per minute, last 16 minutes, oldest first: {values}</title>"
        )),
        "{svg}"
    );
    // The top of the line is the busiest minute; the dot marks the current one.
    assert!(points[13].ends_with(",1.0"), "{points:?}");
    assert!(svg.contains(r#"<circle class="now" cx="240.0""#), "{svg}");
    assert!(
        html.contains(
            "last 16 minutes · max <strong>5</strong> · this minute <strong>3</strong> so far"
        ),
        "{html}"
    );
    Ok(())
}

#[tokio::test]
async fn read_only_and_token_pages_have_no_forms() -> TestResult {
    let stats = Stats::builder().read_only(true).build()?;
    stats
        .namespace("app")?
        .counter("hits", Combine::Sum)?
        .incr();
    let html = page(&stats.router(), "/stats").await;
    assert!(
        !html.contains("<form") && !html.contains("<button"),
        "{html}"
    );
    assert!(html.contains("<h2>app</h2>"));

    let stats = Stats::builder().bearer_token("s3cret").build()?;
    let html = page(&stats.router(), "/stats").await;
    assert!(!html.contains("<form"), "{html}");
    assert!(html.contains("need a bearer token"), "{html}");
    assert!(!html.contains("s3cret"), "the token leaked: {html}");

    // Pause, resume and reset for http, and maintenance on and off.
    let stats = Stats::new();
    let html = page(&stats.router(), "/stats").await;
    assert_eq!(html.matches("<form").count(), 5, "{html}");
    Ok(())
}

/// The `<form>` posting `action` for `namespace`, up to its end.
fn form<'a>(html: &'a str, action: &str, namespace: &str) -> &'a str {
    let needle = format!(
        r#"<form method="post" action="./stats/{action}"><input type="hidden" name="namespace" value="{namespace}">"#
    );
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no {action} form for {namespace}: {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</form>").expect("end of form")]
}

#[tokio::test]
async fn the_button_that_does_not_apply_is_disabled() -> TestResult {
    let stats = Stats::new();
    stats.namespace("app")?;
    let app: Router = stats.router();

    let html = page(&app, "/stats").await;
    for ns in ["http", "app"] {
        assert!(!form(&html, "pause", ns).contains("disabled"), "{ns}");
        assert!(
            form(&html, "resume", ns).contains(" disabled>Resume"),
            "{ns}"
        );
        assert!(!form(&html, "reset", ns).contains("disabled"), "{ns}");
    }
    assert_eq!(
        html.matches(r#"<span class="state on">recording</span>"#)
            .count(),
        2
    );

    stats.pause(Some("http"))?;
    let html = page(&app, "/stats").await;
    assert!(form(&html, "pause", "http").contains(" disabled>Pause"));
    assert!(!form(&html, "resume", "http").contains("disabled"));
    assert!(!form(&html, "pause", "app").contains("disabled"));
    assert!(html.contains(r#"<span class="state off">paused</span>"#));

    stats.resume(None)?;
    let html = page(&app, "/stats").await;
    assert!(!form(&html, "pause", "http").contains("disabled"));
    Ok(())
}

#[tokio::test]
async fn formatting_rules_hide_and_format_values() -> TestResult {
    let stats = Stats::new();
    let shop = stats.namespace("shop")?;
    shop.text("api_key")?.set("k-123-secret");
    shop.gauge("price", Combine::Instance)?.set(12.5);
    shop.gauge("wait_seconds", Combine::Max)?.set(0.0025);
    shop.counter("bytes_sent", Combine::Sum)?.add(2048);
    let orders = shop.list("orders", 10)?;
    orders.push(&serde_json::json!({"item": "widget", "cost": 3, "internal": "hidden-value"}))?;
    let formatting = Formatting::new()
        .hide("shop", "api_key")
        .hide("shop", "orders.internal")
        .format_with("shop", "price", |v| {
            format!("EUR {:.2}", v.as_f64().unwrap_or(0.0))
        })
        .format_with("shop", "orders.cost", |v| format!("<b>{v} coins</b>"));
    let app: Router = stats.router_with_formatting(formatting);
    let html = page(&app, "/stats").await;
    assert!(
        !html.contains("api_key") && !html.contains("k-123-secret"),
        "{html}"
    );
    assert!(
        !html.contains("internal") && !html.contains("hidden-value"),
        "{html}"
    );
    assert!(html.contains(">EUR 12.50<"), "{html}");
    // A format function's output is text, escaped like any value.
    assert!(html.contains("&lt;b&gt;3 coins&lt;/b&gt;"), "{html}");
    // Keys without a rule are formatted from their names.
    assert!(html.contains(">2.50 ms<"), "{html}");
    assert!(html.contains(">2.00 KiB<"), "{html}");
    assert!(html.contains(">widget<"), "{html}");
    check_no_injection(&html);

    // The plain router shows everything.
    let html = page(&stats.router(), "/stats").await;
    assert!(html.contains("k-123-secret") && html.contains("hidden-value"));
    Ok(())
}

/// The table of `html` that starts with `start`, through its `</table>`.
fn table_at<'a>(html: &'a str, start: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"));
    let to = from + html[from..].find("</table>").expect("closed");
    &html[from..to]
}

#[tokio::test(start_paused = true)]
async fn formatting_rules_apply_to_the_http_namespace() -> TestResult {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_millis(10))
        .build()?;
    let app = |formatting: Formatting| -> Router {
        Router::new()
            .route("/hello", get(|| async { "hello" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    "slow"
                }),
            )
            .merge(stats.router_with_formatting(formatting))
            .layer(stats.layer())
    };
    let plain = app(Formatting::new());
    for uri in ["/hello", "/hello", "/slow", "/missing"] {
        send(&plain, uri).await;
    }
    let windows = r#"<table class="windows">"#;
    let slow = "<h3>Slow requests ";
    let uri_sets = r#"<table class="records uri-sets">"#;

    // Without rules: what the rules below hide or change.
    let html = page(&plain, "/stats").await;
    assert!(html.contains(r#"<div class="label">Requests</div><div class="value">4</div>"#));
    assert!(html.contains(r#"<div class="label">Written</div><div class="value">14 B</div>"#));
    assert!(table_at(&html, windows).contains(r#"<th class="num">p99</th>"#));
    assert!(table_at(&html, windows).contains(r#"<td class="num">4</td>"#));
    let slow_table = table_at(&html, slow);
    assert!(
        slow_table.contains(r#"">/slow</a></td>"#)
            && slow_table.contains(r#"href="./stats/requests/"#),
        "{slow_table}"
    );
    assert!(table_at(&html, slow).contains(r#"<td class="num">20.0 ms</td>"#));
    assert!(
        html.contains(r#"<td class="num code first">1</td>"#),
        "{html}"
    );
    assert!(html.contains("Counting since "));
    assert!(table_at(&html, uri_sets).contains(r#"<th class="num">Max</th>"#));
    assert!(html.contains(r#"<a href="./stats?sort=max">max</a>"#));
    assert!(html.contains(r#">GET /hello</a></td><td class="num">2</td>"#));
    assert!(html.contains("<h2>Recent requests</h2>"));

    // Hidden values leave the page; the values next to them stay.
    let hidden = app(Formatting::new()
        .hide("http", "requests_total")
        .hide("http", "windows.p99_seconds")
        .hide("http", "slow_requests.path")
        .hide("http", "status_codes")
        .hide("http", "reset_time")
        .hide("http", "uri_sets.max_seconds")
        .hide("http", "recent_requests"));
    let html = page(&hidden, "/stats").await;
    check_well_formed(&html);
    assert!(
        html.contains(r#"<div class="label">Requests</div><div class="sub">200/s</div>"#),
        "{html}"
    );
    let table = table_at(&html, windows);
    assert!(
        !table.contains(">p99<") && !table.contains("p99\""),
        "{table}"
    );
    assert!(table.contains(r#"<th class="num">p99.9</th>"#), "{table}");
    let table = table_at(&html, slow);
    assert!(
        !table.contains(">Path<") && !table.contains(r#"class="path""#),
        "{table}"
    );
    assert!(
        table.contains(r#"<td class="key">GET /slow</td>"#),
        "{table}"
    );
    assert!(!html.contains("code first"), "{html}");
    assert!(!html.contains("Counting since"), "{html}");
    assert!(html.contains(r#"<p class="facts">processing time 20.0 ms · "#));
    assert!(!table_at(&html, uri_sets).contains(">Max<"), "{html}");
    assert!(!html.contains("sort=max"), "{html}");
    assert!(!html.contains("Recent requests"), "{html}");

    // Format functions change how the values show, wherever they are.
    let formatted = app(Formatting::new()
        .format_with("http", "requests_total", |v| format!("{v} requests"))
        .format_with("http", "bytes_written_total", |v| format!("{v} bytes"))
        .format_with("http", "windows.count", |v| format!("n={v}"))
        .format_with("http", "status_codes", |v| format!("[{v}]"))
        .format_with("http", "slow_requests.processing_seconds", |v| {
            format!("{:.3} s", v.as_f64().unwrap_or(f64::NAN))
        })
        .format_with("http", "uri_sets.count", |v| format!("#{v}"))
        .format_with("http", "recent_requests.status", |v| format!("<{v}>")));
    let html = page(&formatted, "/stats").await;
    check_well_formed(&html);
    check_no_injection(&html);
    assert!(
        html.contains(r#"<div class="label">Requests</div><div class="value">4 requests</div>"#)
    );
    assert!(html.contains(r#"<div class="label">Written</div><div class="value">14 bytes</div>"#));
    assert_eq!(
        table_at(&html, windows)
            .matches(r#"<td class="num">n=4</td>"#)
            .count(),
        3,
        "one per window"
    );
    assert!(
        html.contains(r#"<td class="num code first">[1]</td>"#),
        "{html}"
    );
    assert!(table_at(&html, slow).contains(r#"<td class="num">0.020 s</td>"#));
    assert!(html.contains(r#">GET /hello</a></td><td class="num">#2</td>"#));
    // Escaped like any value.
    let recent = table_at(&html, r#"<table class="records requests">"#);
    assert!(recent.contains(">&lt;404&gt;</td>"), "{recent}");
    assert_eq!(recent.matches(">&lt;200&gt;</td>").count(), 3, "{recent}");
    Ok(())
}

#[tokio::test]
async fn the_page_shows_requests_and_application_namespaces() -> TestResult {
    let stats = Stats::new();
    let shop = stats.namespace("shop")?;
    shop.counter("orders_total", Combine::Sum)?.add(12_345);
    shop.map("carts", 10)?.insert(
        "c1",
        &serde_json::json!({"items": 2, "updated_at": 1_795_240_800.0}),
    )?;
    let app: Router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .merge(stats.router())
        .layer(stats.layer());
    for _ in 0..3 {
        send(&app, "/hello").await;
    }
    send(&app, "/missing").await;
    let html = page(&app, "/stats").await;
    check_no_injection(&html);
    assert!(
        html.contains(
            r#"<td class="key"><a href="./stats/requests?uri_set=GET+%2Fhello" title="Its recent requests">GET /hello</a></td><td class="num">3</td>"#
        ),
        "{html}"
    );
    assert!(
        html.contains(r#"title="Its recent requests">GET &lt;unmatched&gt;</a></td>"#),
        "{html}"
    );
    assert!(html.contains("<h2>http</h2>") && html.contains("<h2>shop</h2>"));
    assert!(html.contains("12\u{202F}345"), "{html}");
    assert!(html.contains("2026-11-21T06:00:00Z"), "{html}");
    assert!(html.contains(r#"<td class="key">c1</td>"#), "{html}");
    // Application namespaces come after http, in name order.
    let http_at = html.find("<h2>http</h2>").unwrap_or(usize::MAX);
    let shop_at = html.find("<h2>shop</h2>").unwrap_or(0);
    assert!(http_at < shop_at);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Recent requests pages, latest events, maintenance switch
// ---------------------------------------------------------------------------------------------

/// What Chromium sends when it navigates.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// Sends `GET uri` with an optional `Accept` and collects the body.
async fn send_accept(app: &Router, uri: &str, accept: Option<&str>) -> Response<Bytes> {
    let mut request = request(http::Method::GET, uri);
    if let Some(accept) = accept {
        let value = header::HeaderValue::from_str(accept).expect("a valid Accept header");
        request.headers_mut().insert(header::ACCEPT, value);
    }
    send_request(app, request).await
}

/// `GET uri` as a browser asks for it: must be a `200` HTML page with the page headers.
async fn browser_page(app: &Router, uri: &str) -> String {
    let response = send_accept(app, uri, Some(BROWSER_ACCEPT)).await;
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    assert_page_headers(response.headers(), uri);
    String::from_utf8(response.body().to_vec()).expect("the page is UTF-8")
}

/// The headers every page is served with, the same as the dashboard's.
fn assert_page_headers(headers: &HeaderMap, uri: &str) {
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8",
        "{uri}"
    );
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY,
        "{uri}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{uri}");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin", "{uri}");
}

#[test]
fn resolve_matches_browsers() {
    assert_eq!(resolve("/stats", "./stats/requests"), "/stats/requests");
    assert_eq!(
        resolve("/stats/requests", "./requests/7"),
        "/stats/requests/7"
    );
    assert_eq!(resolve("/stats/requests", "./../stats"), "/stats");
    assert_eq!(
        resolve("/stats/requests/7", "./../requests"),
        "/stats/requests"
    );
    assert_eq!(resolve("/stats/requests/7", "./../../stats"), "/stats");
    assert_eq!(
        resolve("/stats/requests/7", "./../style.css"),
        "/stats/style.css"
    );
    assert_eq!(resolve("/a/stats/requests/7", "./../../stats"), "/a/stats");
    // Without the `..`, a link from a detail page would miss: `./` is the directory.
    assert_eq!(resolve("/stats/requests/7", "./"), "/stats/requests/");
}

/// Every `href` and `action` of a page, `&amp;` decoded.
fn links(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attribute in [" href=\"", " action=\""] {
        for part in page.split(attribute).skip(1) {
            let value = &part[..part.find('"').expect("end of the attribute")];
            out.push(value.replace("&amp;", "&"));
        }
    }
    out
}

/// `links` resolved against the page's path.
fn resolved_links(page: &str, page_path: &str) -> Vec<String> {
    links(page)
        .iter()
        .map(|link| resolve(page_path, link))
        .collect()
}

/// The rows of the `<tbody>` of the first table with class `class` (rows may have a class).
fn body_rows<'a>(html: &'a str, class: &str) -> Vec<&'a str> {
    let table = &html[html
        .find(&format!(r#"<table class="{class}""#))
        .unwrap_or_else(|| panic!("no {class} table: {html}"))..];
    let table = &table[..table.find("</table>").expect("end of table")];
    let body = &table[table.find("<tbody>").expect("tbody")..];
    body.split("<tr").skip(1).collect()
}

/// The markup of the `<section>` whose class starts with `class`.
fn section<'a>(html: &'a str, class: &str) -> &'a str {
    let start = html
        .find(&format!(r#"<section class="{class}"#))
        .unwrap_or_else(|| panic!("no {class} section: {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("end of section")]
}

/// The value of attribute `name` in the start tag that begins `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let tag = &tag[..tag.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// `(x, width)` of every `<rect>` of class `class` in `svg`.
fn rects(svg: &str, class: &str) -> Vec<(f64, f64)> {
    svg.split(&format!(r#"<rect class="{class}""#))
        .skip(1)
        .map(|tag| {
            let tag = format!("<rect{tag}");
            let number = |name: &str| -> f64 {
                attribute(&tag, name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {tag}"))
            };
            (number("x"), number("width"))
        })
        .collect()
}

fn json_body(response: &Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(response.body())
        )
    })
}

/// An app with a few routes, the stats router merged and the stats layer over everything.
fn requests_app(stats: &Stats) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/r/{n}",
            get(|axum::extract::Path(n): axum::extract::Path<u32>| async move { n.to_string() }),
        )
        .merge(stats.router())
        .layer(stats.layer())
}

#[tokio::test]
async fn requests_pages_are_html_for_browsers_and_json_otherwise() -> TestResult {
    let stats = Stats::new();
    let app = requests_app(&stats);
    send(&app, "/hello").await;
    send(&app, "/r/1").await;
    let recent = stats.recent_requests();
    assert_eq!(recent.len(), 2);
    let id = recent[0].id.clone();
    // The JSON documents byte for byte as before: the instance and the records, and one
    // record.
    let list_json = serde_json::to_vec(&serde_json::json!({
        "filters": {},
        "instance": stats.snapshot().server.instance,
        "requests": recent,
    }))?;
    let detail_json = serde_json::to_vec(&stats.request(id.parse()?).ok_or("recorded")?)?;

    let list = "/stats/requests".to_owned();
    let detail = format!("/stats/requests/{id}");
    for (path, expected) in [(&list, &list_json), (&detail, &detail_json)] {
        let cases: [(String, Option<&str>, bool); 10] = [
            (path.clone(), None, false),
            (path.clone(), Some("application/json"), false),
            (path.clone(), Some("*/*"), false),
            (path.clone(), Some(BROWSER_ACCEPT), true),
            (path.clone(), Some("text/html"), true),
            (format!("{path}?format=html"), None, true),
            (
                format!("{path}?format=html"),
                Some("application/json"),
                true,
            ),
            (format!("{path}?format=json"), Some(BROWSER_ACCEPT), false),
            (format!("{path}?format=bogus"), Some(BROWSER_ACCEPT), true),
            (format!("{path}?format=bogus"), None, false),
        ];
        for (uri, accept, html) in cases {
            let response = send_accept(&app, &uri, accept).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri} {accept:?}");
            assert_eq!(response.headers()[header::VARY], "accept", "{uri}");
            if html {
                assert_page_headers(response.headers(), &uri);
                let page = String::from_utf8(response.body().to_vec())?;
                check_no_injection(&page);
                assert!(!page.contains("format=bogus"), "{uri}: {page}");
            } else {
                assert_eq!(
                    response.headers()[header::CONTENT_TYPE],
                    "application/json",
                    "{uri} {accept:?}"
                );
                assert_eq!(
                    response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                    "nosniff"
                );
                assert_eq!(
                    response.body(),
                    expected,
                    "{uri} {accept:?}: {}",
                    String::from_utf8_lossy(response.body())
                );
            }
        }
    }

    // The list page: newest first, every column, each path linking to its page.
    let html = browser_page(&app, "/stats/requests").await;
    let head = &html[html
        .find(r#"<table class="records requests""#)
        .expect("table")..];
    let head = cells(&head[..head.find("</thead>").expect("thead")]);
    assert_eq!(
        head,
        [
            "Finished", "Took", "Method", "Path", "URI set", "Status", "Outcome", "Read",
            "Written", "Events"
        ]
    );
    let rows: Vec<Vec<String>> = body_rows(&html, "records requests")
        .into_iter()
        .map(cells)
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "moments ago");
    assert_eq!(rows[0][2..4], ["GET", "/r/1"], "{rows:?}");
    assert_eq!(
        rows[0][4..7],
        ["GET /r/{n}", "200", "completed"],
        "{rows:?}"
    );
    assert_eq!(rows[0][8..10], ["1 B", "0"], "{rows:?}");
    assert_eq!(rows[1][3], "/hello", "{rows:?}");
    assert!(
        html.contains(&format!(
            r#"<a href="./requests/{id}" title="Request {id}">/r/1</a>"#
        )),
        "{html}"
    );

    // The detail page: the record's fields.
    let html = browser_page(&app, &detail).await;
    assert!(html.contains(&format!("<h1>Request {id}</h1>")), "{html}");
    let fields: Vec<Vec<String>> = body_rows(&html, "fields").into_iter().map(cells).collect();
    assert_eq!(fields[0], ["Id", id.as_str(), "Outcome", "completed"]);
    assert_eq!(fields[1], ["Method", "GET", "Status", "200"]);
    assert_eq!(fields[2][..3], ["Path", "/r/1", "Processing time"]);
    assert_eq!(fields[3], ["URI set", "GET /r/{n}", "Read", "0 B"]);
    assert!(fields[4][1].ends_with("(moments ago)"), "{fields:?}");
    assert_eq!(fields[4][2..], ["Written", "1 B"]);
    assert_eq!(fields[5][2..], ["Stream", "no"]);
    assert_eq!(fields[6], ["Client", "—", "Timeline events", "0"]);
    assert!(html.contains("No event on this request"), "{html}");
    Ok(())
}

/// Every link of the page at `path` (served as a browser asks), resolved, answers `200`.
async fn follow_links(app: &Router, path: &str, page: &str) -> Vec<String> {
    let targets = resolved_links(page, path);
    for target in &targets {
        let response = send_accept(app, target, Some(BROWSER_ACCEPT)).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{target}, linked from {path}"
        );
    }
    targets
}

#[tokio::test]
async fn request_links_resolve_wherever_the_router_is_nested() -> TestResult {
    for (nest, prefix) in [
        (None, "/stats"),
        (Some("/admin"), "/stats"),
        (Some("/team/7"), "/ops/metrics-ui"),
    ] {
        let stats = Stats::builder().prefix(prefix).build()?;
        let routes = Router::new().route("/hello", get(|| async { "hello" }));
        let app: Router = match nest {
            None => routes.merge(stats.router()),
            Some(at) => routes.nest(at, stats.router()),
        }
        .layer(stats.layer());
        send(&app, "/hello").await;
        let id = stats.recent_requests()[0].id.clone();
        let root = format!("{}{prefix}", nest.unwrap_or(""));
        let (list, detail) = (format!("{root}/requests"), format!("{root}/requests/{id}"));

        // The dashboard links to the list, the request and the event stream.
        let html = browser_page(&app, &root).await;
        let dashboard_links = resolved_links(&html, &root);
        for target in [&list, &detail, &format!("{root}/events")] {
            assert!(
                dashboard_links.contains(target),
                "{target}: {dashboard_links:?}"
            );
        }
        for target in [&list, &detail] {
            browser_page(&app, target).await;
        }

        // The list links to each request, the dashboard, the event stream and its JSON.
        let html = browser_page(&app, &list).await;
        check_no_injection(&html);
        let targets = follow_links(&app, &list, &html).await;
        for target in [
            format!("{root}/style.css"),
            detail.clone(),
            root.clone(),
            format!("{root}/events"),
            format!("{list}?format=json"),
        ] {
            assert!(targets.contains(&target), "{target}: {targets:?}");
        }

        // The request links back to the list and the dashboard, and to its JSON.
        let html = browser_page(&app, &detail).await;
        check_no_injection(&html);
        let targets = follow_links(&app, &detail, &html).await;
        for target in [
            format!("{root}/style.css"),
            list.clone(),
            root.clone(),
            format!("{detail}?format=json"),
        ] {
            assert!(targets.contains(&target), "{target}: {targets:?}");
        }
        let json = send_accept(&app, &format!("{detail}?format=json"), Some(BROWSER_ACCEPT)).await;
        assert_eq!(json_body(&json)["id"], id.as_str());

        // So does the page of a request that is not there.
        let missing = format!("{root}/requests/999999");
        let response = send_accept(&app, &missing, Some(BROWSER_ACCEPT)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let html = String::from_utf8(response.body().to_vec())?;
        let targets = follow_links(&app, &missing, &html).await;
        assert!(
            targets.contains(&list) && targets.contains(&root),
            "{targets:?}"
        );
    }
    Ok(())
}

/// Records a query, an instant and a render on the request's timeline: 30 ms, then 10 ms
/// later the instant and a 60 ms render, 100 ms in all under the paused clock.
async fn checkout(request: RequestStats) -> &'static str {
    let query = request.start_event("db.query");
    tokio::time::sleep(Duration::from_millis(30)).await;
    query.finish_with(&serde_json::json!({ "rows": 3 }));
    tokio::time::sleep(Duration::from_millis(10)).await;
    request
        .event("cache.miss")
        .expect("an instant is never an end without a start");
    let render = request.start_event("render");
    tokio::time::sleep(Duration::from_millis(60)).await;
    render.finish();
    "done"
}

#[tokio::test(start_paused = true)]
async fn the_detail_page_draws_the_timeline() -> TestResult {
    let stats = Stats::new();
    let app: Router = Router::new()
        .route("/checkout", get(checkout))
        .merge(stats.router())
        .layer(stats.layer());
    send(&app, "/checkout").await;
    let id = stats.recent_requests()[0].id.clone();
    let html = browser_page(&app, &format!("/stats/requests/{id}")).await;
    check_no_injection(&html);
    assert!(html.contains("3 events over 100 ms"), "{html}");
    let fields: Vec<Vec<String>> = body_rows(&html, "fields").into_iter().map(cells).collect();
    assert_eq!(
        fields[2],
        ["Path", "/checkout", "Processing time", "100 ms"]
    );
    assert_eq!(fields[6][2..], ["Timeline events", "3"]);

    // The waterfall: the whole request, then a bar per timed event and a diamond for the
    // instant, at their offsets and to the scale of the request's 100 ms.
    let svg = &html[html.find(r#"<svg class="waterfall""#).expect("waterfall")..];
    let svg = &svg[..svg.find("</svg>").expect("end of svg")];
    assert!(
        svg.contains(r#"aria-label="Timeline: 3 events over 100 ms""#),
        "{svg}"
    );
    let total = rects(svg, "total");
    assert_eq!(total.len(), 1, "{svg}");
    let (left, lane) = total[0];
    assert!(lane > 500.0, "{svg}");
    let bars = rects(svg, "event");
    assert_eq!(bars.len(), 2, "{svg}");
    let near = |got: f64, fraction: f64| (got - fraction * lane).abs() <= 0.2;
    let (db_x, db_w) = bars[0];
    let (render_x, render_w) = bars[1];
    assert!(
        near(db_x - left, 0.0) && near(db_w, 0.3),
        "{bars:?} of {lane}"
    );
    assert!(
        near(render_x - left, 0.4) && near(render_w, 0.6),
        "{bars:?} of {lane}"
    );
    let instant = &svg[svg
        .find(r#"<polygon class="instant" points=""#)
        .expect("instant")..];
    let first_x: f64 = attribute(instant, "points")
        .and_then(|p| p.split(',').next())
        .and_then(|x| x.parse().ok())
        .expect("a point");
    assert!(near(first_x - left, 0.4), "instant at {first_x}");
    for title in [
        "<title>db.query: at +0 s for 30.0 ms</title>",
        "<title>cache.miss: at +40.0 ms for 0 s</title>",
        "<title>render: at +40.0 ms for 60.0 ms</title>",
        "<title>whole request: 100 ms</title>",
    ] {
        assert!(svg.contains(title), "{title}: {svg}");
    }
    // One row per event under the whole request, each named on its left.
    for (row, label) in ["whole request", "db.query", "cache.miss", "render"]
        .iter()
        .enumerate()
    {
        let y = 37 + 22 * row;
        assert!(
            svg.contains(&format!(
                r#"<text class="label" x="220" y="{y}">{label}</text>"#
            )),
            "{label}: {svg}"
        );
    }
    // The axis: 0 to 100 ms in quarters.
    for tick in ["0 s", "25.0 ms", "50.0 ms", "75.0 ms", "100 ms"] {
        assert!(svg.contains(&format!(">{tick}</text>")), "{tick}: {svg}");
    }

    // The table: label, source, offset, duration and data, in order.
    let rows: Vec<Vec<String>> = body_rows(&html, "records timeline")
        .into_iter()
        .map(cells)
        .collect();
    assert_eq!(
        rows,
        [
            [
                "1",
                "db.query",
                "manual",
                "+0 s",
                "30.0 ms",
                "{&quot;rows&quot;:3}"
            ],
            ["2", "cache.miss", "manual", "+40.0 ms", "instant", "—"],
            ["3", "render", "manual", "+40.0 ms", "60.0 ms", "—"],
        ]
    );

    // The list counts the events; a full timeline says how many were dropped.
    let list = browser_page(&app, "/stats/requests").await;
    let row = cells(body_rows(&list, "records requests")[0]);
    assert_eq!(row[9], "3", "{row:?}");

    let stats = Stats::builder().max_events_per_request(1).build()?;
    let app: Router = Router::new()
        .route("/checkout", get(checkout))
        .merge(stats.router())
        .layer(stats.layer());
    send(&app, "/checkout").await;
    let id = stats.recent_requests()[0].id.clone();
    let html = browser_page(&app, &format!("/stats/requests/{id}")).await;
    check_no_injection(&html);
    assert!(
        html.contains("1 event over 100 ms, 2 more dropped (the timeline was full)"),
        "{html}"
    );
    assert_eq!(rects(&html, "event").len(), 1);
    let list = browser_page(&app, "/stats/requests").await;
    assert_eq!(
        cells(body_rows(&list, "records requests")[0])[9],
        "1 (+2 dropped)"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_request_gets_a_404_page() -> TestResult {
    let stats = Stats::builder().recent_capacity(2).build()?;
    let app = requests_app(&stats);
    for n in 0..3 {
        send(&app, &format!("/r/{n}")).await;
    }
    // The first request has been evicted by the third.
    let ids: Vec<String> = stats.recent_requests().into_iter().map(|r| r.id).collect();
    let evicted = ids
        .iter()
        .map(|id| id.parse::<u64>().expect("numeric ids"))
        .min()
        .expect("two ids")
        - 1;
    for uri in [
        format!("/stats/requests/{evicted}"),
        "/stats/requests/999999".to_owned(),
        "/stats/requests/%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_owned(),
        "/stats/requests/-1?format=html".to_owned(),
        "/stats/requests/zzqzz?zzqzz=%3Cscript%3E".to_owned(),
    ] {
        for accept in [Some(BROWSER_ACCEPT), None] {
            let html = accept.is_some() || uri.contains("format=html");
            let response = send_accept(&app, &uri, accept).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
            let body = String::from_utf8(response.body().to_vec())?;
            if html {
                assert_page_headers(response.headers(), &uri);
                check_no_injection(&body);
                assert!(body.contains("<h2>No such request</h2>"), "{body}");
                for echoed in ["zzqzz", "%3C", "script", &format!("Request {evicted}")] {
                    assert!(!body.contains(echoed), "{uri}: {echoed} in {body}");
                }
            } else {
                assert_eq!(
                    response.headers()[header::CONTENT_TYPE],
                    "application/json",
                    "{uri}"
                );
                assert_eq!(json_body(&response)["status"], 404, "{uri}");
            }
        }
    }
    Ok(())
}

/// Puts every hostile string on the request's timeline, as labels and as data, and names its
/// URI set with one.
async fn hostile_timeline(request: RequestStats) -> &'static str {
    request.set_uri_set(format!("set {BREAKOUT} {ATTRIBUTE}"));
    for value in hostile() {
        let _ = request.record_event(CustomEvent::new(value.clone()).data(&value));
        request
            .start_event(value.clone())
            .finish_with(&serde_json::json!({ value.clone(): value }));
    }
    "ok"
}

#[tokio::test]
async fn hostile_timelines_events_and_messages_are_escaped() -> TestResult {
    let stats = Stats::builder()
        .instance(format!("{SCRIPT}{ATTRIBUTE}"))
        .max_events_per_request(64)
        .build()?;
    let app: Router = Router::new()
        .route("/t/{*rest}", get(hostile_timeline))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no") })
        .merge(stats.router())
        .layer(stats.layer());
    for path in [
        "/t/%3Cscript%3Ealert(1)%3C/script%3E",
        "/%22onmouseover=alert(1)%20x=%22",
        "/%3C/table%3E%3Cimg%20src=x%20onerror=alert(1)%3E",
        "/javascript:alert(1)",
        "/t/%E6%BC%A2%07%1B",
    ] {
        send(&app, path).await;
    }
    for message in hostile() {
        stats.log_event(&message);
    }

    let dashboard = page(&app, "/stats").await;
    check_no_injection(&dashboard);
    let events = section(&dashboard, "card events");
    assert!(
        events.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;onmouseover"),
        "{events}"
    );
    assert!(
        events.contains(
            "<td class=\"message\">&lt;/table&gt;&lt;img src=x onerror=alert(1)&gt;</td>"
        ),
        "{events}"
    );
    assert!(events.contains("javascript:alert(1)</td>"), "{events}");
    let recent = section(&dashboard, "card recent");
    assert!(recent.contains("set &lt;/table&gt;&lt;img"), "{recent}");

    let list = browser_page(&app, "/stats/requests").await;
    check_no_injection(&list);
    assert!(
        list.contains(">/t/%3Cscript%3Ealert(1)%3C/script%3E</a>"),
        "{list}"
    );

    let mut timelines = 0;
    for record in stats.recent_requests() {
        let html = browser_page(&app, &format!("/stats/requests/{}", record.id)).await;
        check_no_injection(&html);
        if record.events.is_empty() {
            continue;
        }
        timelines += 1;
        assert_eq!(record.events.len(), 2 * hostile().len());
        // Labels in the waterfall and the table, and data, all escaped.
        assert!(
            html.contains(">&lt;script&gt;alert(1)&lt;/script&gt;</text>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<td class=\"key\">&lt;/table&gt;&lt;img src=x onerror=alert(1)&gt;</td>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<td class=\"data\">&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;</td>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<title>&quot;onmouseover=alert(1) x=&quot;: at +"),
            "{html}"
        );
        assert!(html.contains("set &lt;/table&gt;&lt;img"), "{html}");
    }
    assert_eq!(timelines, 2, "both /t requests have a timeline");
    Ok(())
}

#[tokio::test]
async fn the_dashboard_shows_recent_requests_and_latest_events() -> TestResult {
    // Empty at first.
    let stats = Stats::new();
    stats.namespace("shop")?;
    let app = requests_app(&stats);
    let html = page(&app, "/stats").await;
    assert!(section(&html, "card recent").contains("No request recorded yet."));
    assert!(section(&html, "card events").contains("No event yet."));
    // Between the http namespace and the application namespaces.
    let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("<h2>http</h2>") < at("<h2>Recent requests</h2>"));
    assert!(at("<h2>Recent requests</h2>") < at("<h2>Latest events</h2>"));
    assert!(at("<h2>Latest events</h2>") < at("<h2>shop</h2>"));

    for n in 0..12 {
        send(&app, &format!("/r/{n}")).await;
    }
    stats.log_event("deploy finished");
    let recent = stats.recent_requests();
    let html = page(&app, "/stats").await;
    check_no_injection(&html);

    // The latest ten requests, newest first, each linking to its page, and the list.
    let section_html = section(&html, "card recent");
    assert!(
        section_html.contains(r#"<span class="count">latest 10 of 12, newest first</span>"#),
        "{section_html}"
    );
    assert!(
        section_html.contains(r#"<a class="more" href="./stats/requests">All recent requests</a>"#),
        "{section_html}"
    );
    let rows = body_rows(section_html, "records requests");
    assert_eq!(rows.len(), 10);
    for (row, record) in rows.iter().zip(&recent) {
        assert_eq!(cells(row)[3], record.path);
        assert!(
            row.contains(&format!(r#"href="./stats/requests/{}""#, record.id)),
            "{row}"
        );
    }
    assert_eq!(cells(rows[0])[3], "/r/11");
    assert_eq!(cells(rows[9])[3], "/r/2");

    // The latest twenty events, newest first: relative time, instance, message.
    let section_html = section(&html, "card events");
    assert!(
        section_html.contains(r#"<span class="count">latest 20 of 25, newest first</span>"#),
        "{section_html}"
    );
    assert!(
        section_html.contains(r#"<a class="more" href="./stats/events">Event stream</a>"#),
        "{section_html}"
    );
    let rows = body_rows(section_html, "records event-log");
    assert_eq!(rows.len(), 20);
    let first = cells(rows[0]);
    let instance = stats.snapshot().server.instance;
    assert_eq!(first, ["moments ago", instance.as_str(), "deploy finished"]);
    assert!(rows[0].starts_with(r#" class="app">"#), "{}", rows[0]);
    // A request's events link to its page.
    let second = cells(rows[1]);
    assert!(
        second[2].starts_with("Finished GET /r/11 200 in "),
        "{second:?}"
    );
    assert!(
        rows[1].contains(&format!(r#"<a href="./stats/requests/{}">"#, recent[0].id)),
        "{}",
        rows[1]
    );
    assert!(cells(rows[2])[2].starts_with("Started GET /r/11"));
    // The event stream they link to is the whole of it.
    let events = send(&app, "/stats/events").await;
    assert_eq!(events.status(), StatusCode::OK);
    assert!(std::str::from_utf8(events.body())?.contains("deploy finished"));
    Ok(())
}

/// The `<form>` turning maintenance `on` (`"true"`/`"false"`), up to its end.
fn maintenance_form(html: &str, on: &str) -> String {
    let needle = format!(
        r#"<form method="post" action="./stats/maintenance?on={on}"><input type="hidden" name="on" value="{on}">"#
    );
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no maintenance {on} form: {html}"));
    let rest = &html[start..];
    rest[..rest.find("</form>").expect("end of form")].to_owned()
}

/// The status badge in the header.
fn status_badge(html: &str) -> String {
    let start = html
        .find(r#"<div class="status-box">"#)
        .unwrap_or_else(|| panic!("no status box: {html}"));
    let rest = &html[start..];
    let badge = &rest[rest.find("<span class=\"state").expect("badge")..];
    badge[..badge.find("</span>").expect("end of badge") + 7].to_owned()
}

/// Posts `target` as the page's form does, from a browser.
async fn post_form(app: &Router, target: &str, body: &'static str) -> Response<Bytes> {
    let request = http::Request::post(target)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, BROWSER_ACCEPT)
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body))
        .expect("valid request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Response::from_parts(parts, body)
}

#[tokio::test]
async fn the_maintenance_switch_is_in_the_header_unless_read_only() -> TestResult {
    let stats = Stats::new();
    let app = requests_app(&stats);
    let html = page(&app, "/stats").await;
    check_no_injection(&html);
    assert_eq!(
        status_badge(&html),
        r#"<span class="state on" title="As /status reports it">ok</span>"#
    );
    assert!(!maintenance_form(&html, "true").contains("disabled"));
    assert!(maintenance_form(&html, "false").contains(" disabled "));
    // In the header, before the first namespace.
    assert!(html.find("status-box") < html.find("<main>"));

    // The On button, posted as a browser does, turns maintenance on and comes back.
    let action = attribute(&maintenance_form(&html, "true"), "action")
        .expect("action")
        .to_owned();
    let target = resolve("/stats", &action);
    assert_eq!(target, "/stats/maintenance?on=true");
    let response = post_form(&app, &target, "on=true").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resolve(&target, response.headers()[header::LOCATION].to_str()?),
        "/stats"
    );
    assert!(stats.status().is_maintenance());
    let html = page(&app, "/stats").await;
    assert_eq!(
        status_badge(&html),
        r#"<span class="state off" title="As /status reports it">maintenance</span>"#
    );
    assert!(maintenance_form(&html, "true").contains(" disabled "));
    assert!(!maintenance_form(&html, "false").contains("disabled"));

    // And Off turns it off again.
    let action = attribute(&maintenance_form(&html, "false"), "action")
        .expect("action")
        .to_owned();
    let response = post_form(&app, &resolve("/stats", &action), "on=false").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!stats.status().is_maintenance());

    // Another status is shown as such, escaped.
    stats.status().set(format!("degraded {SCRIPT}"));
    let html = page(&app, "/stats").await;
    check_no_injection(&html);
    assert_eq!(
        status_badge(&html),
        r#"<span class="state bad" title="As /status reports it">degraded &lt;script&gt;alert(1)&lt;/script&gt;</span>"#
    );

    // Nested, the form posts to the nested route.
    let stats = Stats::new();
    let nested: Router = Router::new()
        .nest("/admin", stats.router())
        .layer(stats.layer());
    let html = page(&nested, "/admin/stats").await;
    let action = attribute(&maintenance_form(&html, "true"), "action")
        .expect("action")
        .to_owned();
    let target = resolve("/admin/stats", &action);
    assert_eq!(target, "/admin/stats/maintenance?on=true");
    assert_eq!(
        post_form(&nested, &target, "on=true").await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(stats.status().is_maintenance());

    // Read-only: the status, no switch; with a bearer token, no switch either.
    let stats = Stats::builder().read_only(true).build()?;
    stats.status().set_maintenance(true);
    let html = page(&stats.router(), "/stats").await;
    assert!(
        !html.contains("<form") && !html.contains("/maintenance"),
        "{html}"
    );
    assert!(status_badge(&html).contains(">maintenance<"), "{html}");
    let stats = Stats::builder().bearer_token("s3cret").build()?;
    let html = page(&stats.router(), "/stats").await;
    assert!(
        !html.contains("<form") && !html.contains("/maintenance"),
        "{html}"
    );
    assert!(status_badge(&html).contains(">ok<"), "{html}");
    Ok(())
}
