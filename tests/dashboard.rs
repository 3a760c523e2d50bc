//! The `/stats` page through `oneshot`: hostile input in every place a string can reach the
//! page, the security headers, auto-refresh clamping, URI set ordering and latency bars, the
//! windows table and the requests-per-minute sparkline, the controls, and per-key formatting
//! rules.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::get;
use axum::Router;
use http::{header, Response, StatusCode};
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::sync::Notify;
use tower::ServiceExt;
use tower_stats::report::html::{Formatting, CONTENT_SECURITY_POLICY};
use tower_stats::{Combine, Stats, UriSet};

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

/// Sends one request and collects the whole response body.
async fn send(app: &Router, uri: &str) -> Response<Bytes> {
    let request = http::Request::get(uri)
        .body(Body::empty())
        .expect("valid request");
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("axum routers are infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Response::from_parts(parts, body)
}

async fn page(app: &Router, uri: &str) -> String {
    let response = send(app, uri).await;
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    String::from_utf8(response.body().to_vec()).expect("the page is UTF-8")
}

/// Elements the page is made of; anything else in the markup was injected.
const ELEMENTS: &[&str] = &[
    "html", "head", "meta", "title", "link", "body", "header", "main", "footer", "nav", "section",
    "div", "h1", "h2", "h3", "p", "span", "strong", "time", "a", "form", "input", "button",
    "table", "thead", "tbody", "tr", "th", "td", "svg", "rect", "polyline", "polygon", "circle",
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
            let cell = format!(r#"<td class="key">{k}</td>"#);
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

/// The `<tbody>` rows of the first table with class `class`.
fn table_rows<'a>(html: &'a str, class: &str) -> Vec<&'a str> {
    let table = &html[html
        .find(&format!(r#"<table class="{class}""#))
        .unwrap_or_else(|| panic!("no {class} table"))..];
    let table = &table[..table.find("</table>").expect("end of table")];
    let body = &table[table.find("<tbody>").expect("tbody")..];
    body.split("<tr>").skip(1).collect()
}

/// `(p50 bar width, p99 bar width)` of the URI set `key`'s latency bar.
fn latency_bar(html: &str, key: &str) -> (f64, f64) {
    let row = table_rows(html, "records uri-sets")
        .into_iter()
        .find(|row| row.contains(&format!(r#"<td class="key">{key}</td>"#)))
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
        table_rows(&html, "records uri-sets")
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
    let rows: Vec<Vec<String>> = table_rows(&html, "windows")
        .into_iter()
        .map(cells)
        .collect();
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

    let stats = Stats::new();
    let html = page(&stats.router(), "/stats").await;
    assert_eq!(html.matches("<form").count(), 3, "{html}");
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
        html.contains(r#"<td class="key">GET /hello</td><td class="num">3</td>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="key">GET &lt;unmatched&gt;</td>"#),
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
