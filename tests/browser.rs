//! The dashboard in a real browser: headless Chromium driven through chromedriver (WebDriver)
//! against the quickstart app on a loopback port.
//!
//! It checks that the tables show the requests just made, that Pause and Resume work as
//! plain form posts (requests made while paused are not counted), that the maintenance switch
//! works the same way, that a cross-site form on another loopback origin cannot pause
//! recording, and it saves a screenshot of the page to `target/dashboard.png`. Then it opens
//! the recent requests page, clicks through to a request with a timeline, checks its
//! waterfall and table, and saves a screenshot of that page to `target/request-detail.png`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`; without them the test fails
//! and says so. Every step has a time limit, and the whole test one of 60 seconds.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code, unreachable_pub)]
mod quickstart;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_stats::{Combine, RequestStats, Stats};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Time limit of the whole test.
const WHOLE_TEST: Duration = Duration::from_secs(60);
/// Time limit of one browser or network step.
const STEP: Duration = Duration::from_secs(10);

const PACKAGES: &str = "the browser test needs Chromium and chromedriver: install the Debian \
     packages `chromium` and `chromium-driver` (apt-get install chromium chromium-driver)";

/// The first of `names` found on `PATH`.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// chromedriver and the browser profile, both removed on drop whatever happens.
struct Driver {
    child: Child,
    profile: PathBuf,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A free loopback port: bound, then released for chromedriver to take.
fn free_port() -> TestResult<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn start_chromedriver(chromedriver: &Path) -> TestResult<Driver> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let profile = std::env::temp_dir().join(format!(
        "tower-stats-chromium-{}-{stamp}",
        std::process::id()
    ));
    std::fs::create_dir_all(&profile)?;
    let port = free_port()?;
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}; {PACKAGES}", chromedriver.display()))?;
    let driver = Driver {
        child,
        profile,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + STEP;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            return Err(
                format!("chromedriver did not listen on port {port} within {STEP:?}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(driver)
}

async fn connect_browser(driver: &Driver, chromium: &Path) -> TestResult<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1280,2100",
                format!("--user-data-dir={}", driver.profile.display()),
            ],
        }),
    );
    let client = step(
        "start a Chromium session",
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url),
    )
    .await?;
    Ok(client)
}

/// Runs `fut` with the per-step time limit, naming the step in errors.
async fn step<T, E>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> TestResult<T>
where
    E: std::fmt::Display,
{
    match tokio::time::timeout(STEP, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}").into()),
        Err(_) => Err(format!("{what}: no answer within {STEP:?}").into()),
    }
}

/// Serves `app` on a fresh loopback port.
async fn serve(app: Router) -> TestResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// One HTTP/1.1 request over a fresh connection; returns the status code and the body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> TestResult<(u16, String)> {
    step(&format!("{method} {path}"), async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_owned());
        Ok::<_, std::io::Error>((status, body))
    })
    .await
}

async fn find(client: &Client, xpath: &str) -> TestResult<Element> {
    step(
        &format!("find {xpath}"),
        client
            .wait()
            .at_most(STEP)
            .for_element(Locator::XPath(xpath)),
    )
    .await
}

/// Like [`find`], by CSS selector (XPath does not see SVG elements by their plain names).
/// Types `name` into the request list's call filter (clearing what it held) and submits the
/// filters.
async fn filter_by_call(client: &Client, name: &str) -> TestResult<()> {
    let call = find(
        client,
        "//form[contains(@class,'filters')]//input[@name='call']",
    )
    .await?;
    step("clear the call name", call.clear()).await?;
    step("type a call name", call.send_keys(name)).await?;
    step(
        "submit the filters",
        find(
            client,
            "//form[contains(@class,'filters')]//button[@type='submit']",
        )
        .await?
        .click(),
    )
    .await?;
    Ok(())
}

async fn find_css(client: &Client, css: &str) -> TestResult<Element> {
    step(
        &format!("find {css}"),
        client.wait().at_most(STEP).for_element(Locator::Css(css)),
    )
    .await
}

async fn text(client: &Client, xpath: &str) -> TestResult<String> {
    let element = find(client, xpath).await?;
    step(&format!("text of {xpath}"), element.text()).await
}

/// The cell of `column` (1-based) in the URI sets row of `key`.
fn uri_set_cell(key: &str, column: usize) -> String {
    format!(
        "//table[contains(@class,'uri-sets')]//tr[td[1][normalize-space()='{key}']]/td[{column}]"
    )
}

/// A namespace control button.
fn button(action: &str, namespace: &str) -> String {
    format!(
        "//form[@action='./stats/{action}'][input[@name='namespace' and @value='{namespace}']]/button"
    )
}

/// The recording state badge of the http namespace, once it reads `state`.
fn http_state(state: &str) -> String {
    format!(
        "//section[contains(@class,'http')]//span[contains(@class,'state') and normalize-space()='{state}']"
    )
}

fn hello_count(stats: &Stats) -> u64 {
    stats
        .snapshot()
        .http
        .uri_sets
        .get("GET /hello")
        .map_or(0, |s| s.count)
}

#[derive(Serialize)]
struct Order {
    item: &'static str,
    quantity: u32,
}

/// An application namespace, so the page shows generic rendering too.
fn register_shop(stats: &Stats) -> TestResult {
    let shop = stats.namespace("shop")?;
    shop.counter("orders_total", Combine::Sum)?.add(42);
    shop.gauge("basket_size", Combine::Max)?.set(3.0);
    shop.text("currency")?.set("EUR");
    let recent = shop.list("recent_orders", 10)?;
    recent.push(&Order {
        item: "widget",
        quantity: 2,
    })?;
    recent.push(&Order {
        item: "gadget",
        quantity: 1,
    })?;
    Ok(())
}

/// Places an order in three steps on the request's timeline, as `examples/app_stats.rs` does.
async fn order(request: RequestStats, item: String) -> &'static str {
    let reserve = request.start_event("stock.reserve");
    tokio::time::sleep(Duration::from_millis(15)).await;
    reserve.finish_with(&serde_json::json!({ "item": item, "quantity": 1 }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let charge = request.start_event("payment.charge");
    tokio::time::sleep(Duration::from_millis(40)).await;
    charge.finish_with(&serde_json::json!({ "amount": 42, "currency": "EUR" }));
    let _ = request.event("confirmation.sent");
    tokio::time::sleep(Duration::from_millis(5)).await;
    "ordered\n"
}

/// The quickstart app with an order route that records a timeline.
fn app(stats: &Stats) -> Router {
    Router::new()
        .route("/orders", post(order))
        .layer(stats.layer())
        .merge(quickstart::app(stats))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let chromedriver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        panic!("{PACKAGES}; not found on PATH: chromium or chromedriver");
    };
    match tokio::time::timeout(WHOLE_TEST, run(&chromium, &chromedriver)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("the browser test took longer than {WHOLE_TEST:?}"),
    }
}

async fn run(chromium: &Path, chromedriver: &Path) -> TestResult {
    let stats = Stats::builder()
        .slow_threshold(Duration::from_millis(500))
        // The stats routes are recorded too, so that the refused cross-site POST to
        // /stats/pause is observable as a 4xx in its URI set.
        .record_stats_routes(true)
        .build()?;
    register_shop(&stats)?;
    let addr = serve(app(&stats)).await?;
    let base = format!("http://{addr}");
    let driver = start_chromedriver(chromedriver).await?;
    let client = connect_browser(&driver, chromium).await?;
    let result = drive(&client, &stats, addr, &base).await;
    let _ = tokio::time::timeout(STEP, client.close()).await;
    drop(driver);
    result
}

async fn drive(client: &Client, stats: &Stats, addr: SocketAddr, base: &str) -> TestResult {
    // A few requests, then the page shows them.
    for _ in 0..3 {
        assert_eq!(http(addr, "GET", "/hello", "").await?.0, 200);
    }
    http(addr, "GET", "/users/42", "").await?;
    http(addr, "POST", "/echo", "some bytes").await?;
    assert_eq!(http(addr, "GET", "/missing", "").await?.0, 404);
    http(addr, "GET", "/slow?ms=600", "").await?;

    step("open /stats", client.goto(&format!("{base}/stats"))).await?;
    assert_eq!(text(client, &uri_set_cell("GET /hello", 2)).await?, "3");
    assert_eq!(
        text(client, &uri_set_cell("GET /users/{id}", 2)).await?,
        "1"
    );
    let slow = text(
        client,
        "//h3[starts-with(normalize-space(),'Slow requests')]/following-sibling::table[1]//td[4]",
    )
    .await?;
    assert_eq!(slow, "/slow", "the slow request is listed");

    // Pause the http namespace with its button.
    step(
        "click Pause",
        find(client, &button("pause", "http")).await?.click(),
    )
    .await?;
    find(client, &http_state("paused")).await?;
    let pause = find(client, &button("pause", "http")).await?;
    let resume = find(client, &button("resume", "http")).await?;
    assert!(step("Pause disabled?", pause.attr("disabled"))
        .await?
        .is_some());
    assert!(step("Resume disabled?", resume.attr("disabled"))
        .await?
        .is_none());
    assert!(
        !stats.is_enabled("http")?,
        "the Pause button paused recording"
    );

    // Requests made while paused are not counted.
    let before = stats.snapshot().http.requests_total;
    for _ in 0..2 {
        assert_eq!(http(addr, "GET", "/hello", "").await?.0, 200);
    }
    assert_eq!(hello_count(stats), 3);
    assert_eq!(stats.snapshot().http.requests_total, before);

    // Resume with its button; requests count again.
    step(
        "click Resume",
        find(client, &button("resume", "http")).await?.click(),
    )
    .await?;
    find(client, &http_state("recording")).await?;
    assert!(
        stats.is_enabled("http")?,
        "the Resume button resumed recording"
    );
    let pause = find(client, &button("pause", "http")).await?;
    assert!(step("Pause disabled?", pause.attr("disabled"))
        .await?
        .is_none());
    http(addr, "GET", "/hello", "").await?;
    assert_eq!(hello_count(stats), 4);

    maintenance_switch(client, stats).await?;
    cross_site_form_cannot_pause(client, stats, addr).await?;
    screenshot(client, stats, addr, base).await?;
    request_pages(client, stats, addr, base).await?;
    drill_down(client, stats, base).await
}

/// The maintenance buttons in the header turn the switch of `/status` on and off.
async fn maintenance_switch(client: &Client, stats: &Stats) -> TestResult {
    let on =
        "//div[contains(@class,'status-box')]//form[input[@name='on' and @value='true']]/button";
    let off =
        "//div[contains(@class,'status-box')]//form[input[@name='on' and @value='false']]/button";
    let state = |s: &str| {
        format!("//div[contains(@class,'status-box')]/span[contains(@class,'state') and normalize-space()='{s}']")
    };
    assert!(!stats.status().is_maintenance());
    find(client, &state("ok")).await?;
    step("click maintenance On", find(client, on).await?.click()).await?;
    find(client, &state("maintenance")).await?;
    assert!(
        stats.status().is_maintenance(),
        "the On button turned maintenance on"
    );
    let on_button = find(client, on).await?;
    assert!(step("On disabled?", on_button.attr("disabled"))
        .await?
        .is_some());
    step("click maintenance Off", find(client, off).await?.click()).await?;
    find(client, &state("ok")).await?;
    assert!(
        !stats.status().is_maintenance(),
        "the Off button turned it off"
    );
    Ok(())
}

/// The recent requests page, a click through to the order's page, its timeline, and a
/// screenshot of it saved to `target/request-detail.png`.
async fn request_pages(client: &Client, stats: &Stats, addr: SocketAddr, base: &str) -> TestResult {
    let (status, _) = http(addr, "POST", "/orders", "widget").await?;
    assert_eq!(status, 200);
    let id = stats
        .recent_requests()
        .into_iter()
        .find(|r| r.path == "/orders")
        .map(|r| r.id)
        .ok_or("the order is among the recent requests")?;

    // From the dashboard, the link to all recent requests.
    step("open /stats", client.goto(&format!("{base}/stats"))).await?;
    let order_row = "//section[contains(@class,'recent')]//tr[td[4][normalize-space()='/orders']]";
    find(client, order_row).await?;
    step(
        "click All recent requests",
        find(
            client,
            "//section[contains(@class,'recent')]//a[normalize-space()='All recent requests']",
        )
        .await?
        .click(),
    )
    .await?;
    let url = step("current URL", client.current_url()).await?;
    assert_eq!(url.path(), "/stats/requests");
    let list_row = "//table[contains(@class,'requests')]//tr[td[4][normalize-space()='/orders']]";
    assert_eq!(text(client, &format!("{list_row}/td[3]")).await?, "POST");
    assert_eq!(text(client, &format!("{list_row}/td[6]")).await?, "200");
    assert_eq!(text(client, &format!("{list_row}/td[10]")).await?, "3");

    // Click through to the order's page.
    step(
        "click the order",
        find(client, &format!("{list_row}/td[4]/a")).await?.click(),
    )
    .await?;
    find_css(client, "svg.waterfall").await?;
    let url = step("current URL", client.current_url()).await?;
    assert_eq!(url.path(), format!("/stats/requests/{id}"));
    assert_eq!(text(client, "//h1").await?, format!("Request {id}"));
    // One bar per timed event, a diamond for the instant, and the table in order.
    let bars = step(
        "find the bars",
        client.find_all(Locator::Css("svg.waterfall rect.event")),
    )
    .await?;
    assert_eq!(bars.len(), 2, "two timed events");
    let instants = step(
        "find the instants",
        client.find_all(Locator::Css("svg.waterfall polygon.instant")),
    )
    .await?;
    assert_eq!(instants.len(), 1, "one instant");
    let labels = step(
        "find the labels",
        client.find_all(Locator::Css("table.timeline tbody td.key")),
    )
    .await?;
    let mut names = Vec::new();
    for label in labels {
        names.push(step("label text", label.text()).await?);
    }
    assert_eq!(
        names,
        ["stock.reserve", "payment.charge", "confirmation.sent"]
    );
    let data = text(
        client,
        "//table[contains(@class,'timeline')]//tbody/tr[1]/td[6]",
    )
    .await?;
    assert_eq!(data, r#"{"item":"widget","quantity":1}"#);
    let source = text(
        client,
        "//table[contains(@class,'timeline')]//tbody/tr[1]/td[3]",
    )
    .await?;
    assert_eq!(source, "manual", "events the handler records are manual");
    // The charge bar is drawn after the reservation bar, and about 40/15 times as wide.
    let geometry = step(
        "measure the bars",
        client.execute(
            "return Array.from(document.querySelectorAll('svg.waterfall rect.event'))\
             .map(r => [r.x.baseVal.value, r.width.baseVal.value])",
            Vec::new(),
        ),
    )
    .await?;
    let bars: Vec<(f64, f64)> = serde_json::from_value(geometry)?;
    let ((x1, w1), (x2, w2)) = (bars[0], bars[1]);
    assert!(
        x2 >= x1 + w1,
        "the charge starts after the reservation ends: {bars:?}"
    );
    assert!(w2 > 2.0 * w1, "the charge lasted longer: {bars:?}");

    // Back to the list through its link, then to the detail page again for the screenshot.
    step(
        "click Recent requests",
        find(
            client,
            "//nav[contains(@class,'links')]/a[normalize-space()='Recent requests']",
        )
        .await?
        .click(),
    )
    .await?;
    find(client, list_row).await?;
    let url = step("current URL", client.current_url()).await?;
    assert_eq!(url.path(), "/stats/requests");
    step(
        "click the order again",
        find(client, &format!("{list_row}/td[4]/a")).await?.click(),
    )
    .await?;
    find_css(client, "svg.waterfall").await?;
    save_screenshot(client, "request-detail.png").await
}

/// From the dashboard to the requests behind its numbers: a URI set's link, the filter form,
/// a 4xx count's link and a slow request's link.
async fn drill_down(client: &Client, stats: &Stats, base: &str) -> TestResult {
    let list_rows = "//table[contains(@class,'requests')]/tbody/tr";
    let paths = || async {
        let mut paths = Vec::new();
        for cell in step(
            "find the listed paths",
            client.find_all(Locator::XPath(&format!("{list_rows}/td[4]"))),
        )
        .await?
        {
            paths.push(step("path text", cell.text()).await?);
        }
        TestResult::Ok(paths)
    };

    // The URI set's key links to its requests.
    step("open /stats", client.goto(&format!("{base}/stats"))).await?;
    step(
        "click the URI set POST /orders",
        find(client, &format!("{}/a", uri_set_cell("POST /orders", 1)))
            .await?
            .click(),
    )
    .await?;
    // The next page is loaded once its form holds the filter.
    find(
        client,
        "//form[contains(@class,'filters')]//input[@name='uri_set' and @value='POST /orders']",
    )
    .await?;
    let url = step("current URL", client.current_url()).await?;
    assert_eq!(url.path(), "/stats/requests");
    assert_eq!(url.query(), Some("uri_set=POST+%2Forders"));
    find(
        client,
        "//span[contains(@class,'count') and contains(.,'1 matching')]",
    )
    .await?;
    assert_eq!(paths().await?, ["/orders"]);

    // The form holds the filter; a call name narrows it further.
    filter_by_call(client, "payment.charge").await?;
    find(
        client,
        "//form[contains(@class,'filters')]//input[@name='call' and @value='payment.charge']",
    )
    .await?;
    let url = step("current URL", client.current_url()).await?;
    assert_eq!(
        url.query(),
        Some("uri_set=POST+%2Forders&status=&min_seconds=&call=payment.charge")
    );
    assert_eq!(paths().await?, ["/orders"]);
    filter_by_call(client, "no.such.call").await?;
    find(
        client,
        "//p[contains(@class,'empty') and normalize-space()='No recent request matches.']",
    )
    .await?;

    // A malformed value is refused, and the page says why.
    step(
        "open a malformed filter",
        client.goto(&format!("{base}/stats/requests?status=6xx")),
    )
    .await?;
    let error = text(client, "//p[contains(@class,'error')]").await?;
    assert!(error.contains("`status` must be"), "{error}");

    // The refused cross-site POST is a 4xx of its URI set: its count links to it.
    step("open /stats", client.goto(&format!("{base}/stats"))).await?;
    step(
        "click the 4xx count of POST /stats/pause",
        find(
            client,
            "//table[contains(@class,'uri-sets')]//tr[td[1][normalize-space()='POST /stats/pause']]//a[contains(@href,'status=4xx')]",
        )
        .await?
        .click(),
    )
    .await?;
    find(
        client,
        "//form[contains(@class,'filters')]//input[@name='status' and @value='4xx']",
    )
    .await?;
    assert_eq!(paths().await?, ["/stats/pause"]);
    assert_eq!(text(client, &format!("{list_rows}[1]/td[6]")).await?, "403");

    // The slow request links to its page.
    let slow = stats
        .snapshot()
        .http
        .slow_requests
        .into_iter()
        .find(|r| r.path == "/slow")
        .ok_or("the slow request is kept")?;
    step("open /stats", client.goto(&format!("{base}/stats"))).await?;
    step(
        "click the slow request",
        find(
            client,
            &format!(
                "//h3[starts-with(normalize-space(),'Slow requests')]/following-sibling::table[1]//td[4]/a[normalize-space()='/slow' and @href='./stats/requests/{}']",
                slow.id
            ),
        )
        .await?
        .click(),
    )
    .await?;
    find(
        client,
        &format!("//h1[normalize-space()='Request {}']", slow.id),
    )
    .await?;
    let url = step("current URL", client.current_url()).await?;
    assert_eq!(url.path(), format!("/stats/requests/{}", slow.id));
    Ok(())
}

/// Fits the window to the page and saves a screenshot under `target/`.
async fn save_screenshot(client: &Client, name: &str) -> TestResult {
    // Fit the window to the page (WebDriver runs this script, the page itself has none).
    let height = step(
        "measure the page",
        client.execute(
            "return Math.ceil(document.body.getBoundingClientRect().bottom) + 24",
            Vec::new(),
        ),
    )
    .await?
    .as_u64()
    .and_then(|h| u32::try_from(h).ok())
    .unwrap_or(2000);
    let height = height.clamp(600, 4000);
    step("fit the window", client.set_window_size(1280, height)).await?;
    // The window's height includes the browser's own frame: grow it by what the page lost.
    let inner = step(
        "measure the viewport",
        client.execute("return window.innerHeight", Vec::new()),
    )
    .await?
    .as_u64()
    .and_then(|h| u32::try_from(h).ok())
    .unwrap_or(height);
    if inner < height {
        step(
            "fit the window again",
            client.set_window_size(1280, (2 * height - inner).min(4400)),
        )
        .await?;
    }
    let png = step("take a screenshot", client.screenshot()).await?;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let path = target.join(name);
    std::fs::write(&path, &png)?;
    println!("screenshot: {}", path.display());
    Ok(())
}

/// A page on another loopback origin (another port) that posts a form to `/stats/pause` as
/// soon as it loads, as an attacker's page would.
async fn cross_site_form_cannot_pause(
    client: &Client,
    stats: &Stats,
    target: SocketAddr,
) -> TestResult {
    let attacker_page = format!(
        "<!DOCTYPE html><html><body>\
         <form method=\"post\" action=\"http://{target}/stats/pause\">\
         <input type=\"hidden\" name=\"namespace\" value=\"http\"></form>\
         <script>document.forms[0].submit()</script></body></html>"
    );
    let attacker = serve(Router::new().route(
        "/",
        get(move || {
            let page = attacker_page.clone();
            async move { Html(page) }
        }),
    ))
    .await?;
    assert_ne!(attacker.port(), target.port());
    let refused = |stats: &Stats| {
        stats
            .snapshot()
            .http
            .uri_sets
            .get("POST /stats/pause")
            .map_or(0, |s| s.status_4xx)
    };
    assert_eq!(refused(stats), 0);

    step(
        "open the attacker page",
        client.goto(&format!("http://{attacker}/")),
    )
    .await?;
    // Wait until the browser has posted the form (the refusal is counted) or 3 s elapse.
    let deadline = Instant::now() + Duration::from_secs(3);
    while refused(stats) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stats.is_enabled("http")?,
        "a cross-site form paused recording"
    );
    assert_eq!(
        refused(stats),
        1,
        "the cross-site POST was answered with a 4xx"
    );
    let url = step("current URL", client.current_url()).await?;
    assert_eq!(url.path(), "/stats/pause", "the browser followed the form");
    let source = step("page source", client.source()).await?;
    assert!(source.contains("cross-site request refused"), "{source}");
    Ok(())
}

/// Loads the page with a request in flight, an open stream and a mix of traffic, and saves a
/// screenshot to `target/dashboard.png`.
async fn screenshot(client: &Client, stats: &Stats, addr: SocketAddr, base: &str) -> TestResult {
    for path in ["/users/7", "/users/8", "/stream?chunks=3", "/nope"] {
        http(addr, "GET", path, "").await?;
    }
    let in_flight = tokio::spawn(async move { http(addr, "GET", "/slow?ms=20000", "").await });
    let stream = tokio::spawn(async move { http(addr, "GET", "/events", "").await });
    let deadline = Instant::now() + STEP;
    while (stats.snapshot().http.in_flight.is_empty() || stats.snapshot().http.streams_open == 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    step("open /stats", client.goto(&format!("{base}/stats"))).await?;
    find(client, &uri_set_cell("GET /hello", 2)).await?;
    // The latest requests and events are on the page, each linking to the request's page.
    let nope = "//section[contains(@class,'recent')]//tr[td[4][normalize-space()='/nope']]";
    assert_eq!(text(client, &format!("{nope}/td[6]")).await?, "404");
    let finished = "//section[contains(@class,'events')]//td[3]/a[starts-with(normalize-space(),'Finished GET /nope 404')]";
    find(client, finished).await?;
    let result = save_screenshot(client, "dashboard.png").await;
    in_flight.abort();
    stream.abort();
    result
}
