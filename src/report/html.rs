//! The `/stats` page: what the server is doing right now, for people.
//!
//! Top to bottom: a header (version, instance, uptime, when the page was generated), the
//! built-in `http` namespace (rates, errors and latency quantiles over the last minute, the
//! last 15 minutes and since start side by side, as zPages' rpcz shows them; a summary of
//! counters; a requests-per-minute sparkline; responses by status; requests in flight oldest
//! first; open streams; slow requests newest first; and URI sets sortable by count, average,
//! p99 and maximum, with p50/p99 latency bars), then every application namespace rendered
//! generically, as CherryPy's cpstats does: a table of scalars and one table per collection.
//! Each namespace has pause/resume and reset buttons (plain `POST` forms) unless the router is
//! read-only.
//!
//! Served by the router, the page also shows the application status (as `/status` reports
//! it) with maintenance On/Off buttons in the header, and, after `http`, the latest recent
//! requests (linking to their pages) and the latest events of the event stream. The router
//! serves two more pages from the same stylesheet when the client asks for HTML:
//! `{prefix}/requests`, the recent requests newest first, and `{prefix}/requests/{id}`, one
//! request with every field and its timeline as a waterfall and a table. All their links are
//! relative (`./…`), so the pages work wherever the router is nested.
//!
//! The page has no script at all and works with JavaScript off; pictures are inline SVG drawn
//! on the server, and the styles come from `{prefix}/style.css` on the same origin. It is built
//! with [maud] templates, which escape every interpolated value, so request paths, labels and
//! application values cannot inject markup. Query parameters: `refresh=N` reloads the page
//! every `N` seconds (at least [`MIN_REFRESH_SECONDS`]), `sort=count|avg|p99|max` orders the
//! URI sets.
//!
//! [maud]: https://docs.rs/maud

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use crate::events::StreamEvent;
use crate::report::format;
use crate::sanitize;
use crate::{AppStatus, RequestRecord, Snapshot, UriSetSnapshot, WindowSnapshot};

/// The `Content-Security-Policy` the page is served with: no script at all, styles only from
/// the same origin, forms only to the same origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The `Referrer-Policy` the page is served with. Not `no-referrer`: under it browsers send
/// `Origin: null` with the page's own form posts, which the control routes must refuse as
/// cross-origin. `same-origin` sends the page's address to its own origin only.
pub const REFERRER_POLICY: &str = "same-origin";

/// The stylesheet served at `{prefix}/style.css`.
pub const STYLESHEET: &str = include_str!("style.css");

/// Shortest auto-refresh interval the page accepts, in seconds; shorter requests are raised
/// to it.
pub const MIN_REFRESH_SECONDS: u32 = 2;

/// Longest auto-refresh interval, in seconds; longer requests are lowered to it.
pub const MAX_REFRESH_SECONDS: u32 = 3600;

/// Longest string shown in a cell, in characters.
const MAX_TEXT: usize = 200;

/// Most rows shown in one table; the rest are counted in a note.
const MAX_ROWS: usize = 300;

/// Refresh intervals offered as links.
const REFRESH_CHOICES: [u32; 3] = [5, 30, 60];

/// How the URI sets table is ordered (`?sort=`). Every order is descending, ties by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Sort {
    /// By request count (`sort=count`, the default).
    #[default]
    Count,
    /// By average processing time (`sort=avg`).
    Avg,
    /// By 99th percentile processing time since start or the last reset (`sort=p99`).
    P99,
    /// By longest processing time (`sort=max`).
    Max,
}

impl Sort {
    /// The query value: `count`, `avg`, `p99` or `max`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Avg => "avg",
            Self::P99 => "p99",
            Self::Max => "max",
        }
    }

    /// Parses a query value; anything else is `None`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "count" => Some(Self::Count),
            "avg" => Some(Self::Avg),
            "p99" => Some(Self::P99),
            "max" => Some(Self::Max),
            _ => None,
        }
    }
}

/// Which controls the page shows for each namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Controls {
    /// Pause/resume and reset buttons posting to the control routes.
    #[default]
    Forms,
    /// No buttons, and a note that the control routes require a bearer token (a browser form
    /// cannot send one).
    TokenRequired,
    /// No controls at all (read-only mode).
    None,
}

/// How the dashboard is drawn: where the control routes are, which controls to show, and the
/// options read from the page's query string.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DashboardOptions {
    /// Last segment of the router prefix (`stats`): the page's relative name, used for links,
    /// form actions and the stylesheet so the page works wherever the router is nested.
    pub base: String,
    /// The controls shown.
    pub controls: Controls,
    /// Auto-refresh interval in seconds, already clamped; `None` for no refresh.
    pub refresh: Option<u32>,
    /// Order of the URI sets table.
    pub sort: Sort,
}

impl DashboardOptions {
    /// Options with forms, no refresh and the default order.
    #[must_use]
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            controls: Controls::Forms,
            refresh: None,
            sort: Sort::Count,
        }
    }

    /// Sets the controls shown.
    #[must_use]
    pub fn controls(mut self, controls: Controls) -> Self {
        self.controls = controls;
        self
    }

    /// Reads `refresh` (see [`refresh_interval`]) and `sort` from a raw query string. Unknown,
    /// repeated or malformed parameters are ignored; the first occurrence wins.
    ///
    /// ```
    /// use tower_stats::report::html::{Sort, DashboardOptions};
    ///
    /// let options = DashboardOptions::new("stats").with_query(Some("refresh=0&sort=max"));
    /// assert_eq!(options.refresh, Some(2));
    /// assert_eq!(options.sort, Sort::Max);
    /// let options = DashboardOptions::new("stats").with_query(Some("refresh=abc&sort=<x>"));
    /// assert_eq!((options.refresh, options.sort), (None, Sort::Count));
    /// ```
    #[must_use]
    pub fn with_query(mut self, query: Option<&str>) -> Self {
        let pairs: Vec<(String, String)> = query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == "refresh") {
            self.refresh = refresh_interval(v);
        }
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == "sort") {
            self.sort = Sort::parse(v).unwrap_or_default();
        }
        self
    }

    /// A relative link to this page with the given options.
    fn href(&self, sort: Sort, refresh: Option<u32>) -> String {
        let mut params = Vec::new();
        if sort != Sort::Count {
            params.push(format!("sort={}", sort.as_str()));
        }
        if let Some(n) = refresh {
            params.push(format!("refresh={n}"));
        }
        if params.is_empty() {
            format!("./{}", self.base)
        } else {
            format!("./{}?{}", self.base, params.join("&"))
        }
    }
}

/// The auto-refresh interval asked for by a `refresh` query value: a whole number of seconds
/// clamped to [`MIN_REFRESH_SECONDS`]..=[`MAX_REFRESH_SECONDS`]; anything that is not made of
/// ASCII digits gives `None`.
///
/// ```
/// use tower_stats::report::html::refresh_interval;
///
/// assert_eq!(refresh_interval("0"), Some(2));
/// assert_eq!(refresh_interval("30"), Some(30));
/// assert_eq!(refresh_interval("99999999999999999999999"), Some(3600));
/// assert_eq!(refresh_interval("abc"), None);
/// assert_eq!(refresh_interval("-5"), None);
/// ```
#[must_use]
pub fn refresh_interval(raw: &str) -> Option<u32> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = raw.parse::<u64>().unwrap_or(u64::MAX);
    let n = n.clamp(
        u64::from(MIN_REFRESH_SECONDS),
        u64::from(MAX_REFRESH_SECONDS),
    );
    u32::try_from(n).ok()
}

type FormatFn = Arc<dyn Fn(&Value) -> String + Send + Sync>;

#[derive(Clone)]
enum Rule {
    Hide,
    With(FormatFn),
}

/// Per-key display rules for application namespaces, like cpstats' `StatsPage.formatting`:
/// hide a value, or show it through a function of your own.
///
/// A key names a scalar or a whole collection (`"orders_total"`, `"recent_orders"`), or a
/// column of a collection as `"<collection>.<column>"` (`"recent_orders.at"`). Keys without a
/// rule are formatted from their name (see [`format::Kind`]). What a function returns is
/// text: it is escaped and capped like every other value, never taken as markup.
///
/// # Example
///
/// ```
/// use tower_stats::report::html::Formatting;
/// use tower_stats::Stats;
///
/// let stats = Stats::new();
/// let formatting = Formatting::new()
///     .hide("shop", "internal_id")
///     .format_with("shop", "price", |v| format!("€{:.2}", v.as_f64().unwrap_or(0.0)));
/// let router: axum::Router = stats.router_with_formatting(formatting);
/// # drop(router);
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Formatting {
    rules: BTreeMap<String, BTreeMap<String, Rule>>,
}

impl fmt::Debug for Formatting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (ns, keys) in &self.rules {
            for (key, rule) in keys {
                let what = match rule {
                    Rule::Hide => "hide",
                    Rule::With(_) => "format_with(..)",
                };
                map.entry(&format_args!("{ns}/{key}"), &what);
            }
        }
        map.finish()
    }
}

impl Formatting {
    /// No rules: every value formatted from its name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves `key` of `namespace` off the page (it stays in `/stats/data`).
    pub fn hide(mut self, namespace: impl Into<String>, key: impl Into<String>) -> Self {
        self.rules
            .entry(namespace.into())
            .or_default()
            .insert(key.into(), Rule::Hide);
        self
    }

    /// Shows `key` of `namespace` as `f` formats it.
    pub fn format_with<F>(
        mut self,
        namespace: impl Into<String>,
        key: impl Into<String>,
        f: F,
    ) -> Self
    where
        F: Fn(&Value) -> String + Send + Sync + 'static,
    {
        self.rules
            .entry(namespace.into())
            .or_default()
            .insert(key.into(), Rule::With(Arc::new(f)));
        self
    }

    fn rule(&self, namespace: &str, key: &str) -> Option<&Rule> {
        self.rules.get(namespace)?.get(key)
    }

    fn hidden(&self, namespace: &str, key: &str) -> bool {
        matches!(self.rule(namespace, key), Some(Rule::Hide))
    }

    /// The display text of `value`: through the rule for `key` if there is one, else
    /// formatted from its `name` (the key itself, or the column of a collection).
    fn show(&self, namespace: &str, key: &str, name: &str, value: &Value, now: f64) -> String {
        match self.rule(namespace, key) {
            Some(Rule::With(f)) => text(&f(value)),
            _ => format::json_value(name, value, now, MAX_TEXT),
        }
    }
}

/// Renders the page.
///
/// This is the page without the router's live sections (recent requests, latest events and
/// the maintenance switch), which the router adds from its [`Stats`](crate::Stats).
///
/// # Example
///
/// ```
/// use tower_stats::report::html::{render, Formatting, DashboardOptions};
///
/// let stats = tower_stats::Stats::new();
/// let page = render(&stats.snapshot(), &DashboardOptions::new("stats"), &Formatting::new());
/// assert!(page.starts_with("<!DOCTYPE html>"));
/// assert!(!page.contains("<script"));
/// ```
#[must_use]
pub fn render(snapshot: &Snapshot, options: &DashboardOptions, formatting: &Formatting) -> String {
    render_dashboard(snapshot, None, options, formatting)
}

/// What the router's page shows beyond the snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct DashboardActivity {
    /// Recent finished requests, newest first (all of them; the page shows the first few).
    pub(crate) recent: Vec<RequestRecord>,
    /// The event stream, newest first (all of it; the page shows the first few).
    pub(crate) events: Vec<StreamEvent>,
    /// The application status, as `/status` reports it.
    pub(crate) status: AppStatus,
    /// Whether the maintenance switch is on.
    pub(crate) maintenance: bool,
}

/// Recent requests shown on the dashboard; the list page has them all.
const RECENT_ON_PAGE: usize = 10;

/// Latest events shown on the dashboard; `{prefix}/events` has them all.
const EVENTS_ON_PAGE: usize = 20;

/// Most rows of the recent requests page.
const LIST_ROWS: usize = 1000;

/// The dashboard, with the live sections when `activity` is given.
pub(crate) fn render_dashboard(
    snapshot: &Snapshot,
    activity: Option<&DashboardActivity>,
    options: &DashboardOptions,
    formatting: &Formatting,
) -> String {
    let context = PageContext::new(&options.base, snapshot);
    let now = context.now;
    let header_side = html! {
        div.side {
            @if let Some(activity) = activity {
                (status_box(activity, options))
            }
            (refresh_nav(options))
        }
    };
    let main = html! {
        (http_section(snapshot, options))
        @if let Some(activity) = activity {
            (recent_section(&activity.recent, options, now))
            (events_section(&activity.events, options))
        }
        @for (name, ns) in &snapshot.namespaces {
            (app_section(name, ns.enabled, &ns.values, options, formatting, now))
        }
    };
    let footer = html! {
        p {
            "Values as of " (format::iso_time(now))
            ". The same data as JSON: "
            a href=(format!("./{}/data", options.base)) { (options.base) "/data" }
            "."
        }
    };
    render_page(
        &context,
        &Page {
            title: "Statistics",
            level: 0,
            refresh: options.refresh,
            uptime_seconds: Some(snapshot.server.uptime_seconds),
            header_side,
            main,
            footer: Some(footer),
        },
    )
}

/// A relative link from a page `level` directories below the directory holding the router
/// prefix (the dashboard `{prefix}` is at level 0, `{prefix}/requests` at 1,
/// `{prefix}/requests/{id}` at 2) to `path` under the prefix, or to the dashboard itself when
/// `path` is empty. Every link starts with `./`, so no segment can read as a URL scheme, and
/// none depends on where the router is nested.
fn link(base: &str, level: usize, path: &str) -> String {
    match (level, path.is_empty()) {
        (0, true) => format!("./{base}"),
        (0, false) => format!("./{base}/{path}"),
        (n, true) => format!("./{}{base}", "../".repeat(n)),
        (n, false) => format!("./{}{path}", "../".repeat(n - 1)),
    }
}

/// The application status and the maintenance switch, in the page header.
fn status_box(activity: &DashboardActivity, options: &DashboardOptions) -> Markup {
    let class = match activity.status {
        AppStatus::Ok => "state on",
        AppStatus::Maintenance => "state off",
        _ => "state bad",
    };
    html! {
        div.status-box {
            span.label { "Status" }
            span class=(class) title="As /status reports it" { (text(activity.status.as_str())) }
            @if options.controls == Controls::Forms {
                span.label.switch { "Maintenance" }
                (maintenance_form(options, true, activity.maintenance))
                (maintenance_form(options, false, !activity.maintenance))
            }
        }
    }
}

/// A button turning maintenance on or off. The value is in the action's query too, so the
/// form works whatever else is posted with it; the form field wins.
fn maintenance_form(options: &DashboardOptions, on: bool, disabled: bool) -> Markup {
    let (value, label) = if on { ("true", "On") } else { ("false", "Off") };
    html! {
        form method="post" action=(format!("./{}/maintenance?on={value}", options.base)) {
            input type="hidden" name="on" value=(value);
            button type="submit" class=(if on { "maintenance-on" } else { "maintenance-off" })
                disabled[disabled]
                title=(if on { "Answer 503 at /status" } else { "Answer normally at /status" }) {
                (label)
            }
        }
    }
}

/// "latest 10 of 22, newest first", or "7, newest first" when all are shown.
fn newest_first_caption(shown: usize, total: usize) -> Markup {
    html! {
        span.count {
            @if total > shown {
                "latest " (shown) " of " (format::count(total as u64)) ", newest first"
            } @else {
                (total) ", newest first"
            }
        }
    }
}

/// The latest recent requests on the dashboard, linking to the list and the detail pages.
fn recent_section(records: &[RequestRecord], options: &DashboardOptions, now: f64) -> Markup {
    let shown = records.len().min(RECENT_ON_PAGE);
    html! {
        section.card.recent {
            div.section-head {
                h2 { "Recent requests" }
                (newest_first_caption(shown, records.len()))
                a.more href=(link(&options.base, 0, "requests")) { "All recent requests" }
            }
            @if records.is_empty() {
                p.empty { "No request recorded yet." }
            } @else {
                (requests_table(&records[..shown], &options.base, 0, now))
            }
        }
    }
}

/// The latest events of the event stream on the dashboard.
fn events_section(events: &[StreamEvent], options: &DashboardOptions) -> Markup {
    let shown = events.len().min(EVENTS_ON_PAGE);
    html! {
        section.card.events {
            div.section-head {
                h2 { "Latest events" }
                (newest_first_caption(shown, events.len()))
                a.more href=(link(&options.base, 0, "events")) { "Event stream" }
                a.more href=(format!("{}?format=json", link(&options.base, 0, "events"))) { "as JSON" }
            }
            @if events.is_empty() {
                p.empty { "No event yet." }
            } @else {
                table.records.event-log {
                    thead { tr {
                        th { "When" } th { "Instance" } th { "Event" }
                    } }
                    tbody {
                        @for event in &events[..shown] {
                            tr class=(event_class(event.kind)) {
                                td.when {
                                    time datetime=(format::iso_time(event.time)) title=(format::iso_time(event.time)) {
                                        (format::ago(event.age_seconds))
                                    }
                                }
                                td.instance { (text(&event.instance)) }
                                td.message {
                                    @match event.request_id.as_deref().and_then(|id| id.parse::<u64>().ok()) {
                                        Some(id) => a href=(link(&options.base, 0, &format!("requests/{id}"))) { (text(&event.message)) },
                                        None => (text(&event.message)),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn event_class(kind: &str) -> &'static str {
    match kind {
        "request_error" | "request_panicked" => "bad",
        "request_aborted" => "warn",
        "application" => "app",
        _ => "req",
    }
}

fn outcome_class(outcome: crate::Outcome) -> &'static str {
    match outcome {
        crate::Outcome::Error | crate::Outcome::Panicked => "bad",
        crate::Outcome::Aborted => "warn",
        _ => "text",
    }
}

/// The number of events on a request's timeline, with the dropped ones.
fn events_count(record: &RequestRecord) -> String {
    let n = format::count(record.events.len() as u64);
    if record.events_dropped > 0 {
        format!(
            "{n} (+{} dropped)",
            format::count(u64::from(record.events_dropped))
        )
    } else {
        n
    }
}

/// Finished requests, newest first, each path linking to the request's page. `level` is the
/// page's level (see [`link`]).
fn requests_table(records: &[RequestRecord], base: &str, level: usize, now: f64) -> Markup {
    html! {
        table.records.requests {
            thead { tr {
                th { "Finished" } th.num { "Took" } th { "Method" } th { "Path" }
                th { "URI set" } th.num { "Status" } th { "Outcome" }
                th.num { "Read" } th.num { "Written" } th.num { "Events" }
            } }
            tbody {
                @for r in records {
                    @let end = r.end_time.unwrap_or(r.start_time);
                    tr {
                        td.when {
                            time datetime=(format::iso_time(end)) title=(format::iso_time(end)) {
                                (format::ago(now - end))
                            }
                        }
                        td.num { (format::duration(r.processing_seconds)) }
                        td { (text(&r.method)) }
                        td.path {
                            @match r.id.parse::<u64>() {
                                Ok(id) => a href=(link(base, level, &format!("requests/{id}")))
                                    title=(format!("Request {id}")) { (text(&r.path)) },
                                Err(_) => (text(&r.path)),
                            }
                        }
                        td.key { (text(&r.uri_set)) }
                        td class=(status_class(r.status)) { (status_text(r.status)) }
                        td class=(outcome_class(r.outcome)) { (r.outcome.as_str()) }
                        td.num { (format::bytes(r.bytes_read as f64)) }
                        td.num { (format::bytes(r.bytes_written as f64)) }
                        td.num { (events_count(r)) }
                    }
                }
            }
        }
    }
}

/// What every page is drawn with: the prefix's last segment, this server's version and
/// instance, and the time now (Unix epoch seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageContext<'a> {
    /// Last segment of the router prefix, as [`DashboardOptions::base`].
    pub(crate) base: &'a str,
    /// Version of this server, as [`ServerInfo::version`](crate::ServerInfo::version).
    pub(crate) version: &'a str,
    /// Instance name.
    pub(crate) instance: &'a str,
    /// Now, in Unix epoch seconds.
    pub(crate) now: f64,
}

impl<'a> PageContext<'a> {
    /// The context of a page under `base`, with the version, instance and time of `snapshot`.
    pub(crate) fn new(base: &'a str, snapshot: &'a Snapshot) -> Self {
        Self {
            base,
            version: &snapshot.server.version,
            instance: &snapshot.server.instance,
            now: snapshot.generated_at,
        }
    }
}

/// What one page shows inside the shell that [`render_page`] draws around it.
#[derive(Debug)]
pub(crate) struct Page<'a> {
    /// Title of the page and its heading.
    pub(crate) title: &'a str,
    /// The page's level (see [`link`]).
    pub(crate) level: usize,
    /// Auto-refresh interval in seconds; `None` for no refresh.
    pub(crate) refresh: Option<u32>,
    /// The server's uptime, shown in the header with the page's age (the dashboard shows
    /// them; the other pages do not).
    pub(crate) uptime_seconds: Option<f64>,
    /// The right of the header: the dashboard's status and refresh links, or a page's
    /// navigation.
    pub(crate) header_side: Markup,
    /// The page's sections.
    pub(crate) main: Markup,
    /// The footer's content, if the page has one.
    pub(crate) footer: Option<Markup>,
}

/// The page shell shared by every page: the document head with the stylesheet, the header
/// (title, version, instance and when the page was generated), then the page's own parts.
pub(crate) fn render_page(context: &PageContext<'_>, page: &Page<'_>) -> String {
    let now = context.now;
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(n) = page.refresh {
                    meta http-equiv="refresh" content=(n);
                }
                title { (page.title) " · " (text(context.instance)) }
                link rel="stylesheet" href=(link(context.base, page.level, "style.css"));
            }
            body {
                header.top {
                    div.title {
                        h1 { (page.title) }
                        p.meta {
                            span { (text(context.version)) }
                            " on " strong { (text(context.instance)) }
                            @if let Some(uptime) = page.uptime_seconds {
                                " · up " (format::duration(uptime))
                            }
                            " · generated "
                            time datetime=(format::iso_time(now)) { (format::iso_time(now)) }
                            @if page.uptime_seconds.is_some() {
                                " (" (format::ago(0.0)) ")"
                            }
                        }
                    }
                    (page.header_side)
                }
                main { (page.main) }
                @if let Some(footer) = &page.footer {
                    footer { (footer) }
                }
            }
        }
    };
    markup.into_string()
}

/// A page other than the dashboard: the shell with a navigation bar and a body. `level` is
/// the page's level (see [`link`]).
fn subpage(
    title: &str,
    context: &PageContext<'_>,
    level: usize,
    nav: Markup,
    body: Markup,
) -> String {
    render_page(
        context,
        &Page {
            title,
            level,
            refresh: None,
            uptime_seconds: None,
            header_side: html! { nav.links aria-label="Pages" { (nav) } },
            main: body,
            footer: None,
        },
    )
}

/// The `{prefix}/requests` page: the recent requests, newest first, each linking to its page.
pub(crate) fn render_requests(records: &[RequestRecord], context: &PageContext<'_>) -> String {
    const LEVEL: usize = 1;
    let base = context.base;
    let nav = html! {
        a href=(link(base, LEVEL, "")) { "Dashboard" }
        a href=(link(base, LEVEL, "events")) { "Event stream" }
        a href=(format!("{}?format=json", link(base, LEVEL, "requests"))) { "JSON" }
    };
    let body = html! {
        section.card {
            div.section-head {
                h2 { "Finished requests" }
                span.count { (format::count(records.len() as u64)) ", newest first" }
            }
            @if records.is_empty() {
                p.empty { "No request recorded yet." }
            } @else {
                (requests_table(&records[..records.len().min(LIST_ROWS)], base, LEVEL, context.now))
                (more_rows(LIST_ROWS, records.len()))
            }
        }
    };
    subpage("Recent requests", context, LEVEL, nav, body)
}

/// The `{prefix}/requests/{id}` page: every field of the record, and its timeline as a
/// waterfall and a table.
pub(crate) fn render_request(record: &RequestRecord, context: &PageContext<'_>) -> String {
    const LEVEL: usize = 2;
    let base = context.base;
    let id = record.id.parse::<u64>().ok();
    let title = match id {
        Some(id) => format!("Request {id}"),
        None => "Request".to_owned(),
    };
    let nav = html! {
        a href=(link(base, LEVEL, "requests")) { "Recent requests" }
        a href=(link(base, LEVEL, "")) { "Dashboard" }
        @if let Some(id) = id {
            a href=(format!("{}?format=json", link(base, LEVEL, &format!("requests/{id}")))) { "JSON" }
        }
    };
    let body = html! {
        section.card.request {
            div.section-head {
                h2.request-line { span.method { (text(&record.method)) } " " span.path { (text(&record.path)) } }
            }
            (record_fields(record, context.now))
        }
        section.card.timeline {
            div.section-head {
                h2 { "Timeline" }
                span.count {
                    (plural(record.events.len() as u64, "event", "events"))
                    " over " (format::duration(record.processing_seconds))
                    @if record.events_dropped > 0 {
                        ", " (format::count(u64::from(record.events_dropped))) " more dropped (the timeline was full)"
                    }
                }
            }
            @if record.events.is_empty() {
                p.empty { "No event on this request's timeline." }
            } @else {
                (waterfall(record))
                (timeline_table(record))
            }
        }
    };
    subpage(&title, context, LEVEL, nav, body)
}

/// The page for a request id that is not (or no longer) known.
pub(crate) fn render_request_not_found(context: &PageContext<'_>) -> String {
    const LEVEL: usize = 2;
    let nav = html! {
        a href=(link(context.base, LEVEL, "requests")) { "Recent requests" }
        a href=(link(context.base, LEVEL, "")) { "Dashboard" }
    };
    let body = html! {
        section.card {
            h2 { "No such request" }
            p {
                "It never existed, or it is no longer among the recent requests (the oldest are "
                "dropped first). "
                a href=(link(context.base, LEVEL, "requests")) { "See the recent requests" } "."
            }
        }
    };
    subpage("Request not found", context, LEVEL, nav, body)
}

/// Every field of a request record, for people.
fn record_fields(r: &RequestRecord, now: f64) -> Markup {
    let when = |t: f64| format!("{} ({})", format::iso_time(t), format::ago(now - t));
    html! {
        table.fields {
            tbody {
                tr { th { "Id" } td { (text(&r.id)) } th { "Outcome" } td class=(outcome_class(r.outcome)) { (r.outcome.as_str()) } }
                tr { th { "Method" } td { (text(&r.method)) } th { "Status" } td class=(status_tone(r.status)) { (status_text(r.status)) } }
                tr { th { "Path" } td.path { (text(&r.path)) } th { "Processing time" } td { (format::duration(r.processing_seconds)) } }
                tr { th { "URI set" } td.key { (text(&r.uri_set)) } th { "Read" } td { (format::bytes(r.bytes_read as f64)) } }
                tr {
                    th { "Started" }
                    td { time datetime=(format::iso_time(r.start_time)) { (when(r.start_time)) } }
                    th { "Written" } td { (format::bytes(r.bytes_written as f64)) }
                }
                tr {
                    th { "Finished" }
                    td {
                        @match r.end_time {
                            Some(end) => time datetime=(format::iso_time(end)) { (when(end)) },
                            None => "still in flight",
                        }
                    }
                    th { "Stream" } td { (if r.stream { "yes" } else { "no" }) }
                }
                tr {
                    th { "Client" } td { (r.client.as_deref().map_or_else(|| format::MISSING.to_owned(), text)) }
                    th { "Timeline events" } td { (events_count(r)) }
                }
            }
        }
    }
}

/// A finite, non-negative number of seconds, or 0.
fn seconds(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Width, label column, row height and axis height of the timeline waterfall.
const FALL_W: f64 = 1100.0;
const FALL_LABEL: f64 = 230.0;
const FALL_RIGHT: f64 = 16.0;
const FALL_ROW: f64 = 22.0;
const FALL_AXIS: f64 = 22.0;

/// The timeline as a waterfall: the whole request on the first row, then one bar per event
/// at its offset, as long as it lasted, to the scale of the request's processing time (or of
/// the last event's end, if later). Instants are diamonds. Each bar's title says what it is.
fn waterfall(record: &RequestRecord) -> Markup {
    let events = &record.events[..record.events.len().min(MAX_ROWS)];
    let total = seconds(record.processing_seconds);
    let scale = events
        .iter()
        .map(|e| seconds(e.offset_seconds) + seconds(e.duration_seconds))
        .fold(total, f64::max);
    let lane = FALL_W - FALL_LABEL - FALL_RIGHT;
    let x = |s: f64| -> f64 {
        if scale > 0.0 {
            FALL_LABEL + (seconds(s) / scale).min(1.0) * lane
        } else {
            FALL_LABEL
        }
    };
    let height = FALL_AXIS + (events.len() + 1) as f64 * FALL_ROW + 4.0;
    let ticks: Vec<(f64, &str)> = (0..=4)
        .map(|k| {
            let class = match k {
                0 => "tick first",
                4 => "tick last",
                _ => "tick",
            };
            (scale * f64::from(k) / 4.0, class)
        })
        .collect();
    let rows: Vec<(f64, &crate::TimelineEvent)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (FALL_AXIS + (i + 1) as f64 * FALL_ROW, e))
        .collect();
    let label = format!(
        "Timeline: {} over {}",
        plural(events.len() as u64, "event", "events"),
        format::duration(total)
    );
    html! {
        svg.waterfall width=(FALL_W) height=(height) viewBox=(format!("0 0 {FALL_W} {height}"))
            role="img" aria-label=(label) {
            title { (label) }
            @for (t, class) in &ticks {
                rect.grid x=(format!("{:.1}", x(*t))) y=(FALL_AXIS - 4.0) width="1"
                    height=(format!("{:.1}", height - FALL_AXIS)) {}
                text class=(class) x=(format!("{:.1}", x(*t))) y="13" { (format::duration(*t)) }
            }
            // The whole request.
            text.label x=(FALL_LABEL - 10.0) y=(FALL_AXIS + 15.0) { "whole request" }
            rect.lane x=(FALL_LABEL) y=(FALL_AXIS + 3.0) width=(lane) height="16" {}
            rect.total x=(FALL_LABEL) y=(FALL_AXIS + 5.0)
                width=(format!("{:.1}", (x(total) - FALL_LABEL).max(1.0))) height="12" {
                title { "whole request: " (format::duration(total)) }
            }
            @let (class, at) = duration_place(FALL_LABEL, x(total));
            text class=(class) x=(format!("{at:.1}")) y=(FALL_AXIS + 15.0) { (format::duration(total)) }
            @for (y, e) in &rows {
                @let start = x(e.offset_seconds);
                @let end = x(seconds(e.offset_seconds) + seconds(e.duration_seconds));
                @let what = format!(
                    "{}: at +{} for {}",
                    text(&e.label),
                    format::duration(seconds(e.offset_seconds)),
                    format::duration(seconds(e.duration_seconds)),
                );
                text.label x=(FALL_LABEL - 10.0) y=(y + 15.0) { (sanitize::clean(&e.label, 32)) }
                rect.lane x=(FALL_LABEL) y=(y + 3.0) width=(lane) height="16" {}
                @if e.duration_seconds > 0.0 {
                    rect.event x=(format!("{start:.1}")) y=(y + 5.0)
                        width=(format!("{:.1}", (end - start).max(2.0))) height="12" {
                        title { (what) }
                    }
                } @else {
                    polygon.instant points=(format!(
                        "{start:.1},{:.1} {:.1},{:.1} {start:.1},{:.1} {:.1},{:.1}",
                        y + 5.0, start + 6.0, y + 11.0, y + 17.0, start - 6.0, y + 11.0
                    )) {
                        title { (what) }
                    }
                }
                @if e.duration_seconds > 0.0 {
                    @let (class, at) = duration_place(start, end);
                    text class=(class) x=(format!("{at:.1}")) y=(y + 15.0) {
                        (format::duration(seconds(e.duration_seconds)))
                    }
                }
            }
        }
    }
}

/// Where a bar's duration is written: after the bar when there is room, else inside it when
/// it is wide enough, else before it.
fn duration_place(start: f64, end: f64) -> (&'static str, f64) {
    if end + 90.0 <= FALL_W - FALL_RIGHT {
        ("dur", end + 8.0)
    } else if end - start >= 80.0 {
        ("dur inside", end - 6.0)
    } else {
        ("dur before", start - 8.0)
    }
}

/// The timeline as a table: label, offset, duration and data of each event, in order.
fn timeline_table(record: &RequestRecord) -> Markup {
    html! {
        table.records.timeline {
            thead { tr {
                th.num { "#" } th { "Event" } th.num { "Offset" } th.num { "Duration" } th { "Data" }
            } }
            tbody {
                @for (n, e) in record.events.iter().take(MAX_ROWS).enumerate() {
                    tr {
                        td.num { (n + 1) }
                        td.key { (text(&e.label)) }
                        td.num { "+" (format::duration(seconds(e.offset_seconds))) }
                        td.num {
                            @if e.duration_seconds > 0.0 {
                                (format::duration(e.duration_seconds))
                            } @else {
                                span.note { "instant" }
                            }
                        }
                        td.data {
                            @match &e.data {
                                Some(data) => (text(data)),
                                None => span.note { (format::MISSING) },
                            }
                        }
                    }
                }
            }
        }
        (more_rows(MAX_ROWS, record.events.len()))
    }
}

/// Display text of a string from a request or the application: capped, no control characters.
fn text(s: &str) -> String {
    sanitize::clean(s, MAX_TEXT)
}

fn refresh_nav(options: &DashboardOptions) -> Markup {
    html! {
        nav.refresh aria-label="Auto-refresh" {
            @match options.refresh {
                Some(n) => {
                    span.on { "Refreshing every " (n) " s" }
                    " · " a href=(options.href(options.sort, None)) { "Stop" }
                }
                None => {
                    span { "Auto-refresh:" }
                    @for n in REFRESH_CHOICES {
                        " " a href=(options.href(options.sort, Some(n))) { (n) " s" }
                    }
                }
            }
        }
    }
}

/// The namespace heading with its state and controls.
fn namespace_head(name: &str, enabled: bool, options: &DashboardOptions) -> Markup {
    html! {
        div.ns-head {
            h2 { (text(name)) }
            @if enabled {
                span.state.on { "recording" }
            } @else {
                span.state.off { "paused" }
            }
            @match options.controls {
                Controls::Forms => {
                    div.controls {
                        (control_form(options, "pause", "Pause", name, !enabled))
                        (control_form(options, "resume", "Resume", name, enabled))
                        (control_form(options, "reset", "Reset", name, false))
                    }
                }
                Controls::TokenRequired => {
                    span.note { "Pause, resume and reset need a bearer token." }
                }
                Controls::None => {}
            }
        }
    }
}

fn control_form(
    options: &DashboardOptions,
    action: &str,
    label: &str,
    namespace: &str,
    disabled: bool,
) -> Markup {
    html! {
        form method="post" action=(format!("./{}/{action}", options.base)) {
            input type="hidden" name="namespace" value=(namespace);
            button type="submit" class=(action) disabled[disabled] { (label) }
        }
    }
}

/// `n` and the singular or plural noun: `1 open stream`, `2 open streams`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", format::count(n), if n == 1 { one } else { many })
}

fn tile(label: &str, value: &str, sub: Option<String>, class: Option<&str>) -> Markup {
    html! {
        div class=(match class { Some(c) => format!("tile {c}"), None => "tile".to_owned() }) {
            div.label { (label) }
            div.value { (value) }
            @if let Some(sub) = sub {
                div.sub { (sub) }
            }
        }
    }
}

fn http_section(snapshot: &Snapshot, options: &DashboardOptions) -> Markup {
    let http = &snapshot.http;
    let now = snapshot.generated_at;
    let errors_class = (http.requests_errored > 0).then_some("bad");
    html! {
        section.namespace.http {
            (namespace_head("http", http.enabled, options))
            (windows_view(&http.windows))
            div.tiles {
                (tile("Requests", &format::count(http.requests_total),
                    Some(format::per_second(http.requests_per_second)), None))
                (tile("In flight", &format::count(http.requests_in_flight),
                    Some(plural(http.streams_open, "open stream", "open streams")), None))
                (tile("Errors", &format::count(http.requests_errored),
                    Some(format!("{} panicked", format::count(http.requests_panicked))), errors_class))
                (tile("Aborted", &format::count(http.requests_aborted),
                    Some("client went away".to_owned()), None))
                (tile("Read", &format::bytes(http.bytes_read_total as f64),
                    Some(format::bytes_per_second(http.bytes_read_per_second)), None))
                (tile("Written", &format::bytes(http.bytes_written_total as f64),
                    Some(format::bytes_per_second(http.bytes_written_per_second)), None))
                (tile("Slow requests", &format::count(http.slow_requests.len() as u64),
                    Some("kept as evidence".to_owned()), None))
            }
            div.summary {
                (trend_view(&http.requests_per_minute))
                p.facts {
                    "Counting since " (format::iso_time(http.reset_time))
                    " (" (format::ago(now - http.reset_time)) ")"
                    " · processing time " (format::duration(http.processing_seconds_total))
                    " · per request: read " (format::bytes(http.bytes_read_per_request))
                    ", written " (format::bytes(http.bytes_written_per_request))
                    " · streams " (format::count(http.streams_total))
                    " · URI sets overflowed " (format::count(http.uri_sets_overflowed))
                }
            }
            (status_view(snapshot))
            (in_flight_view(&http.in_flight))
            (open_streams_view(&http.open_streams))
            (slow_view(&http.slow_requests, now))
            (uri_sets_view(&http.uri_sets, options))
        }
    }
}

/// The windows of the rates and latency table, top to bottom, with what each one means.
const WINDOWS: [(&str, &str); 3] = [
    ("1m", "in the last minute"),
    ("15m", "in the last 15 minutes"),
    ("total", "since start or the last reset"),
];

/// A duration that may be missing (no request in the window yet).
fn opt_duration(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| format::MISSING.to_owned(), format::duration)
}

/// Rates, errors and latency over the last minute, the last 15 minutes and since start, side
/// by side as zPages' rpcz shows them. Each row says how long its window actually covers
/// (less than nominal just after start or a reset).
fn windows_view(windows: &BTreeMap<String, WindowSnapshot>) -> Markup {
    let none = WindowSnapshot::default();
    html! {
        table.windows {
            thead { tr {
                th { "Window" }
                th.num { "Requests" } th.num { "Req/s" } th.num { "Errors" }
                th.num { "Avg" } th.num { "p50" } th.num { "p90" } th.num { "p99" }
                th.num { "p99.9" } th.num { "Max" }
            } }
            tbody {
                @for (key, meaning) in WINDOWS {
                    @let w = windows.get(key).unwrap_or(&none);
                    tr {
                        th.window title=(format!("Requests finished {meaning}")) {
                            (key)
                            " " span.covered { "over " (format::duration(w.covered_seconds)) }
                        }
                        td.num { (format::count(w.count)) }
                        td.num { (format::per_second(w.requests_per_second)) }
                        td class=(if w.errors > 0 { "num bad" } else { "num" }) { (format::count(w.errors)) }
                        td.num { (opt_duration(w.avg_seconds)) }
                        td.num { (opt_duration(w.p50_seconds)) }
                        td.num { (opt_duration(w.p90_seconds)) }
                        td.num.p99 { (opt_duration(w.p99_seconds)) }
                        td.num { (opt_duration(w.p999_seconds)) }
                        td.num { (opt_duration(w.max_seconds)) }
                    }
                }
            }
        }
    }
}

/// The requests-per-minute sparkline with its caption: oldest minute first, the last point
/// being the current minute so far.
fn trend_view(per_minute: &[u64]) -> Markup {
    let minutes = per_minute.len();
    let max = per_minute.iter().copied().max().unwrap_or(0);
    let current = per_minute.last().copied().unwrap_or(0);
    let points: Vec<f64> = per_minute.iter().map(|n| *n as f64).collect();
    let label = format!("requests per minute, last {minutes} minutes");
    html! {
        @if minutes > 0 {
            div.trend {
                div.caption {
                    div.label { "Requests per minute" }
                    div.sub {
                        "last " (minutes) " minutes · max " strong { (format::count(max)) }
                        " · this minute " strong { (format::count(current)) } " so far"
                    }
                }
                (sparkline(&points, &label))
            }
        }
    }
}

fn status_view(snapshot: &Snapshot) -> Markup {
    let http = &snapshot.http;
    let classes = [
        ("1xx", http.status_1xx),
        ("2xx", http.status_2xx),
        ("3xx", http.status_3xx),
        ("4xx", http.status_4xx),
        ("5xx", http.status_5xx),
    ];
    let total: u64 = classes.iter().map(|(_, n)| n).sum();
    let mut x = 0.0;
    let segments: Vec<(usize, f64, f64, &str, u64)> = classes
        .iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(i, (label, n))| {
            let w = *n as f64 / total as f64 * 1000.0;
            let seg = (i + 1, x, w, *label, *n);
            x += w;
            seg
        })
        .collect();
    html! {
        h3 { "Responses by status" }
        svg.statusbar width="100%" height="10" viewBox="0 0 1000 10" preserveAspectRatio="none"
            role="img" aria-label="Share of responses by status class" {
            rect.empty x="0" y="0" width="1000" height="10" {}
            @for (class, x, w, label, n) in &segments {
                rect class=(format!("s{class}")) x=(format!("{x:.2}")) y="0"
                    width=(format!("{w:.2}")) height="10" {
                    title { (label) ": " (n) }
                }
            }
        }
        table.status {
            thead { tr {
                @for (label, _) in &classes { th.num { (label) } }
                @for (i, code) in http.status_codes.keys().enumerate() {
                    th class=(if i == 0 { "num code first" } else { "num code" }) { (text(code)) }
                }
            } }
            tbody { tr {
                @for (i, (_, n)) in classes.iter().enumerate() {
                    td class=(format!("num s{}", i + 1)) { (format::count(*n)) }
                }
                @for (i, n) in http.status_codes.values().enumerate() {
                    td class=(if i == 0 { "num code first" } else { "num code" }) { (format::count(*n)) }
                }
            } }
        }
    }
}

fn status_text(status: Option<u16>) -> String {
    status.map_or_else(|| format::MISSING.to_owned(), |s| s.to_string())
}

fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(500..) => "num bad",
        Some(400..=499) => "num warn",
        _ => "num",
    }
}

/// [`status_class`] for a cell that is not a number column.
fn status_tone(status: Option<u16>) -> &'static str {
    match status {
        Some(500..) => "bad",
        Some(400..=499) => "warn",
        _ => "text",
    }
}

fn more_rows(shown: usize, total: usize) -> Markup {
    html! {
        @if total > shown {
            p.note { (format::count((total - shown) as u64)) " more not shown." }
        }
    }
}

/// A table of live records: requests in flight, or open streams (which have no request
/// bytes to show). The client column appears when any record has one.
struct LiveTable<'a> {
    title: &'a str,
    order: &'a str,
    age: &'a str,
    empty: &'a str,
    show_read: bool,
}

fn live_view(records: &[RequestRecord], table: &LiveTable<'_>) -> Markup {
    let with_client = records.iter().any(|r| r.client.is_some());
    html! {
        h3 { (table.title) " " span.count { "(" (records.len()) (table.order) ")" } }
        @if records.is_empty() {
            p.empty { (table.empty) }
        } @else {
            table.records {
                thead { tr {
                    th.num { (table.age) } th { "Method" } th { "Path" } th { "URI set" }
                    th.num { "Status" }
                    @if table.show_read { th.num { "Read" } }
                    th.num { "Written" }
                    @if with_client { th { "Client" } }
                } }
                tbody {
                    @for r in records.iter().take(MAX_ROWS) {
                        tr {
                            td.num { (format::duration(r.processing_seconds)) }
                            td { (text(&r.method)) }
                            td.path { (text(&r.path)) }
                            td.key { (text(&r.uri_set)) }
                            td class=(status_class(r.status)) { (status_text(r.status)) }
                            @if table.show_read { td.num { (format::bytes(r.bytes_read as f64)) } }
                            td.num { (format::bytes(r.bytes_written as f64)) }
                            @if with_client { td { (text(r.client.as_deref().unwrap_or(""))) } }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, records.len()))
        }
    }
}

fn in_flight_view(records: &[RequestRecord]) -> Markup {
    live_view(
        records,
        &LiveTable {
            title: "In flight",
            order: ", oldest first",
            age: "Age",
            empty: "No request in flight.",
            show_read: true,
        },
    )
}

fn open_streams_view(records: &[RequestRecord]) -> Markup {
    live_view(
        records,
        &LiveTable {
            title: "Open streams",
            order: "",
            age: "Open for",
            empty: "No open stream.",
            show_read: false,
        },
    )
}

fn slow_view(records: &[RequestRecord], now: f64) -> Markup {
    html! {
        h3 { "Slow requests " span.count { "(" (records.len()) ", newest first)" } }
        @if records.is_empty() {
            p.empty { "No slow request." }
        } @else {
            table.records {
                thead { tr {
                    th { "Finished" } th.num { "Took" } th { "Method" } th { "Path" }
                    th { "URI set" } th.num { "Status" } th { "Outcome" }
                    th.num { "Read" } th.num { "Written" }
                } }
                tbody {
                    @for r in records.iter().rev().take(MAX_ROWS) {
                        @let end = r.end_time.unwrap_or(r.start_time);
                        tr {
                            td {
                                time datetime=(format::iso_time(end)) title=(format::iso_time(end)) {
                                    (format::ago(now - end))
                                }
                            }
                            td.num { (format::duration(r.processing_seconds)) }
                            td { (text(&r.method)) }
                            td.path { (text(&r.path)) }
                            td.key { (text(&r.uri_set)) }
                            td class=(status_class(r.status)) { (status_text(r.status)) }
                            td { (r.outcome.as_str()) }
                            td.num { (format::bytes(r.bytes_read as f64)) }
                            td.num { (format::bytes(r.bytes_written as f64)) }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, records.len()))
        }
    }
}

/// URI sets in the order asked for: descending, ties by key.
fn sorted_uri_sets(
    sets: &BTreeMap<String, UriSetSnapshot>,
    sort: Sort,
) -> Vec<(&String, &UriSetSnapshot)> {
    let mut rows: Vec<(&String, &UriSetSnapshot)> = sets.iter().collect();
    let metric = |s: &UriSetSnapshot| -> f64 {
        let v = match sort {
            Sort::Count => s.count as f64,
            Sort::Avg => s.avg_seconds,
            Sort::P99 => s.p99_seconds.unwrap_or(0.0),
            Sort::Max => s.max_seconds.unwrap_or(0.0),
        };
        if v.is_finite() {
            v
        } else {
            0.0
        }
    };
    rows.sort_by(|a, b| {
        metric(b.1)
            .total_cmp(&metric(a.1))
            .then_with(|| a.0.cmp(b.0))
    });
    rows
}

/// Width of `value` out of `max` in a bar `width` wide; at least 1 when `value` is positive.
fn bar_width(value: f64, max: f64, width: f64) -> f64 {
    if !(value.is_finite() && max.is_finite()) || value <= 0.0 || max <= 0.0 {
        return 0.0;
    }
    (value / max * width).clamp(1.0, width)
}

const LATENCY_BAR: f64 = 100.0;
const SHARE_BAR: f64 = 44.0;

fn uri_sets_view(sets: &BTreeMap<String, UriSetSnapshot>, options: &DashboardOptions) -> Markup {
    let rows = sorted_uri_sets(sets, options.sort);
    // The latency bars share one scale: the largest p99.
    let scale = sets
        .values()
        .filter_map(|s| s.p99_seconds)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let total: u64 = sets
        .values()
        .map(|s| s.count.saturating_add(s.streams))
        .sum();
    let with_streams = sets.values().any(|s| s.streams > 0);
    html! {
        div.section-head {
            h3 { "URI sets " span.count { "(" (sets.len()) ")" } }
            nav.sort aria-label="Sort URI sets" {
                "Sort by "
                @for (sort, label) in [(Sort::Count, "count"), (Sort::Avg, "average"), (Sort::P99, "p99"), (Sort::Max, "max")] {
                    @if sort == options.sort {
                        strong aria-current="true" { (label) }
                    } @else {
                        a href=(options.href(sort, options.refresh)) { (label) }
                    }
                    " "
                }
            }
            @if scale > 0.0 {
                span.note.legend {
                    "Latency bars: " span.key-p50 { "p50" } " and " span.key-p99 { "p99" }
                    " since start, to the scale of the largest p99 (" (format::duration(scale)) ")"
                }
            }
        }
        @if rows.is_empty() {
            p.empty { "No request recorded yet." }
        } @else {
            table.records.uri-sets {
                thead { tr {
                    th { "URI set" }
                    th.num { "Count" }
                    th.bars { "Share" }
                    @if with_streams { th.num { "Streams" } }
                    th.num { "Avg" } th.num { "p50" } th.num { "p99" } th.num { "p99.9" }
                    th.num { "Max" }
                    th.bars title="Latency bars: p50 and p99 since start, to one scale" {
                        span.legend { span.key-p50 { "p50" } " " span.key-p99 { "p99" } }
                    }
                    th.num { "2xx" } th.num { "3xx" } th.num { "4xx" } th.num { "5xx" }
                    th.num { "Errors" } th.num { "Read" } th.num { "Written" }
                } }
                tbody {
                    @for (key, s) in rows.iter().take(MAX_ROWS) {
                        @let seen = s.count.saturating_add(s.streams);
                        @let p50 = s.p50_seconds.unwrap_or(0.0);
                        @let p99 = s.p99_seconds.unwrap_or(0.0);
                        tr {
                            td.key { (text(key)) }
                            td.num { (format::count(s.count)) }
                            td.bars {
                                svg.bar width=(SHARE_BAR) height="10" viewBox=(format!("0 0 {SHARE_BAR} 10"))
                                    role="img" aria-label="share of requests" {
                                    rect.track x="0" y="0" width=(SHARE_BAR) height="10" {}
                                    rect.share x="0" y="0"
                                        width=(format!("{:.1}", bar_width(seen as f64, total as f64, SHARE_BAR)))
                                        height="10" {}
                                }
                                " " span.pct { (percent(seen, total)) }
                            }
                            @if with_streams { td.num { (format::count(s.streams)) } }
                            td.num { (duration_or_missing(s.count, s.avg_seconds)) }
                            td.num { (opt_duration(s.p50_seconds)) }
                            td.num.p99 { (opt_duration(s.p99_seconds)) }
                            td.num { (opt_duration(s.p999_seconds)) }
                            td.num { (opt_duration(s.max_seconds)) }
                            td.bars {
                                svg.bar width=(LATENCY_BAR) height="12" viewBox=(format!("0 0 {LATENCY_BAR} 12"))
                                    role="img" aria-label="median and 99th percentile processing time" {
                                    title {
                                        "p50 " (opt_duration(s.p50_seconds))
                                        " · p99 " (opt_duration(s.p99_seconds))
                                    }
                                    rect.track x="0" y="5" width=(LATENCY_BAR) height="2" {}
                                    rect.p99 x="0" y="1"
                                        width=(format!("{:.1}", bar_width(p99, scale, LATENCY_BAR)))
                                        height="10" {}
                                    rect.p50 x="0" y="3"
                                        width=(format!("{:.1}", bar_width(p50, scale, LATENCY_BAR)))
                                        height="6" {}
                                }
                            }
                            td.num.s2 { (format::count(s.status_2xx)) }
                            td.num.s3 { (format::count(s.status_3xx)) }
                            td class=(if s.status_4xx > 0 { "num warn" } else { "num" }) { (format::count(s.status_4xx)) }
                            td class=(if s.status_5xx > 0 { "num bad" } else { "num" }) { (format::count(s.status_5xx)) }
                            td class=(if s.errors > 0 { "num bad" } else { "num" }) { (format::count(s.errors)) }
                            td.num { (format::bytes(s.bytes_read as f64)) }
                            td.num { (format::bytes(s.bytes_written as f64)) }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, rows.len()))
        }
    }
}

fn duration_or_missing(count: u64, seconds: f64) -> String {
    if count == 0 {
        format::MISSING.to_owned()
    } else {
        format::duration(seconds)
    }
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        return format::MISSING.to_owned();
    }
    let p = part as f64 / total as f64 * 100.0;
    if p > 0.0 && p < 1.0 {
        "<1%".to_owned()
    } else {
        format!("{p:.0}%")
    }
}

/// An application namespace: its scalars, then one table per collection.
fn app_section(
    name: &str,
    enabled: bool,
    values: &serde_json::Map<String, Value>,
    options: &DashboardOptions,
    formatting: &Formatting,
    now: f64,
) -> Markup {
    let mut scalars: Vec<(&String, &Value)> = Vec::new();
    let mut collections: Vec<(&String, &Value)> = Vec::new();
    for (key, value) in values {
        if key == "enabled" || formatting.hidden(name, key) {
            continue;
        }
        match value {
            Value::Array(_) | Value::Object(_) => collections.push((key, value)),
            _ => scalars.push((key, value)),
        }
    }
    scalars.sort_by(|a, b| a.0.cmp(b.0));
    collections.sort_by(|a, b| a.0.cmp(b.0));
    html! {
        section.namespace.app {
            (namespace_head(name, enabled, options))
            @if scalars.is_empty() && collections.is_empty() {
                p.empty { "No values." }
            }
            @if !scalars.is_empty() {
                table.scalars {
                    tbody {
                        @for row in scalars.chunks(3) {
                            tr {
                                @for (key, value) in row {
                                    th { (text(key)) }
                                    td.num { (formatting.show(name, key, key, value, now)) }
                                }
                                @for _ in row.len()..3 { th {} td {} }
                            }
                        }
                    }
                }
            }
            @for (key, value) in &collections {
                h3 { (text(key)) }
                (collection_view(name, key, value, formatting, now))
            }
        }
    }
}

/// A collection: a list (rows in order) or a map (an `id` column, rows by id); columns are the
/// sorted union of the records' keys.
fn collection_view(
    namespace: &str,
    name: &str,
    value: &Value,
    formatting: &Formatting,
    now: f64,
) -> Markup {
    let rows: Vec<(Option<&str>, &Value)> = match value {
        Value::Array(items) => items.iter().map(|v| (None, v)).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
        _ => Vec::new(),
    };
    let keyed = matches!(value, Value::Object(_));
    let mut columns: BTreeSet<&str> = BTreeSet::new();
    let mut plain = false;
    for (_, row) in &rows {
        match row {
            Value::Object(fields) => columns.extend(fields.keys().map(String::as_str)),
            _ => plain = true,
        }
    }
    let columns: Vec<(&str, String)> = columns
        .into_iter()
        .map(|c| (c, format!("{name}.{c}")))
        .filter(|(_, rule)| !formatting.hidden(namespace, rule))
        .collect();
    // A column whose values are all numbers gets a right-aligned heading too.
    let numeric = |column: &str| {
        rows.iter()
            .filter_map(|(_, row)| row.get(column))
            .all(Value::is_number)
    };
    html! {
        @if rows.is_empty() {
            p.empty { "Empty." }
        } @else {
            table.records.collection {
                thead { tr {
                    @if keyed { th { "id" } }
                    @for (column, _) in &columns {
                        th class=[numeric(column).then_some("num")] { (text(column)) }
                    }
                    @if plain { th { "value" } }
                } }
                tbody {
                    @for (id, row) in rows.iter().take(MAX_ROWS) {
                        tr {
                            @if let Some(id) = id { td.key { (text(id)) } }
                            @for (column, rule) in &columns {
                                @let cell = match row {
                                    Value::Object(fields) => fields.get(*column),
                                    _ => None,
                                };
                                @match cell {
                                    Some(v) => td class=(cell_class(v)) { (formatting.show(namespace, rule, column, v, now)) },
                                    None => td {},
                                }
                            }
                            @if plain {
                                @match row {
                                    Value::Object(_) => td {},
                                    v => td class=(cell_class(v)) { (formatting.show(namespace, name, name, v, now)) },
                                }
                            }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, rows.len()))
        }
    }
}

fn cell_class(value: &Value) -> &'static str {
    if value.is_number() {
        "num"
    } else {
        "text"
    }
}

/// Width and height of a [`sparkline`].
const SPARK_W: f64 = 240.0;
const SPARK_H: f64 = 40.0;

/// A sparkline of `points` (oldest first) as inline SVG named `label`: a line scaled to the
/// largest value, over a light area, with a dot on the newest point. Non-finite and negative
/// points count as 0; no point gives an empty frame. Its title lists the values.
pub(crate) fn sparkline(points: &[f64], label: &str) -> Markup {
    let clean: Vec<f64> = points
        .iter()
        .map(|p| if p.is_finite() && *p > 0.0 { *p } else { 0.0 })
        .collect();
    let max = clean.iter().copied().fold(0.0_f64, f64::max);
    let step = if clean.len() > 1 {
        SPARK_W / (clean.len() - 1) as f64
    } else {
        0.0
    };
    let coords: Vec<(f64, f64)> = match clean.as_slice() {
        [] => Vec::new(),
        [only] => {
            let y = scale_y(*only, max);
            vec![(0.0, y), (SPARK_W, y)]
        }
        many => many
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 * step, scale_y(*v, max)))
            .collect(),
    };
    let line: Vec<String> = coords
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let area = if coords.is_empty() {
        String::new()
    } else {
        format!(
            "0,{SPARK_H:.1} {} {SPARK_W:.1},{SPARK_H:.1}",
            line.join(" ")
        )
    };
    let values: Vec<String> = clean.iter().map(|v| format::number(*v)).collect();
    html! {
        svg.sparkline width=(SPARK_W) height=(SPARK_H) viewBox=(format!("0 0 {SPARK_W} {SPARK_H}"))
            role="img" aria-label=(label) {
            title { (label) ", oldest first: " (values.join(", ")) }
            @if let Some((x, y)) = coords.last() {
                polygon.area points=(area) {}
                polyline.line points=(line.join(" ")) fill="none" {}
                circle.now cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="2.5" {}
            }
        }
    }
}

/// The y coordinate of `v` on a sparkline whose top is `max` (1 px margins).
fn scale_y(v: f64, max: f64) -> f64 {
    if max <= 0.0 {
        return SPARK_H - 1.0;
    }
    SPARK_H - 1.0 - (v / max) * (SPARK_H - 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest_point() {
        let svg = sparkline(&[0.0, 5.0, 10.0], "hits").into_string();
        assert!(
            svg.contains(r#"points="0.0,39.0 120.0,20.0 240.0,1.0""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"points="0,40.0 0.0,39.0 120.0,20.0 240.0,1.0 240.0,40.0""#),
            "{svg}"
        );
        assert!(svg.contains(r#"aria-label="hits""#), "{svg}");
        assert!(
            svg.contains("<title>hits, oldest first: 0, 5, 10</title>"),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<circle class="now" cx="240.0" cy="1.0" r="2.5">"#),
            "{svg}"
        );
    }

    #[test]
    fn sparkline_edge_cases() {
        let empty = sparkline(&[], "x").into_string();
        assert!(
            empty.starts_with("<svg") && !empty.contains("polyline") && !empty.contains("circle"),
            "{empty}"
        );
        let one = sparkline(&[3.0], "x").into_string();
        assert!(one.contains(r#"points="0.0,1.0 240.0,1.0""#), "{one}");
        let flat = sparkline(&[0.0, 0.0], "x").into_string();
        assert!(flat.contains(r#"points="0.0,39.0 240.0,39.0""#), "{flat}");
        let odd = sparkline(&[f64::NAN, -1.0, f64::INFINITY, 2.0], "x").into_string();
        assert!(
            odd.contains(r#"points="0.0,39.0 80.0,39.0 160.0,39.0 240.0,1.0""#),
            "{odd}"
        );
    }

    #[test]
    fn refresh_is_clamped() {
        assert_eq!(refresh_interval("0"), Some(MIN_REFRESH_SECONDS));
        assert_eq!(refresh_interval("1"), Some(MIN_REFRESH_SECONDS));
        assert_eq!(refresh_interval("2"), Some(2));
        assert_eq!(refresh_interval("3600"), Some(3600));
        assert_eq!(refresh_interval("3601"), Some(MAX_REFRESH_SECONDS));
        assert_eq!(refresh_interval(""), None);
        assert_eq!(refresh_interval("5s"), None);
        assert_eq!(refresh_interval(" 5"), None);
        assert_eq!(refresh_interval("+5"), None);
    }

    #[test]
    fn query_parsing_ignores_junk() {
        let options = DashboardOptions::new("stats")
            .with_query(Some("sort=avg&sort=max&refresh=9&refresh=1"));
        assert_eq!((options.sort, options.refresh), (Sort::Avg, Some(9)));
        let options = DashboardOptions::new("stats").with_query(Some("%%%&&=="));
        assert_eq!((options.sort, options.refresh), (Sort::Count, None));
        let options = DashboardOptions::new("stats").with_query(None);
        assert_eq!((options.sort, options.refresh), (Sort::Count, None));
    }

    #[test]
    fn links_carry_only_parsed_options() {
        let options = DashboardOptions::new("stats");
        assert_eq!(options.href(Sort::Count, None), "./stats");
        assert_eq!(
            options.href(Sort::Max, Some(5)),
            "./stats?sort=max&refresh=5"
        );
        assert_eq!(options.href(Sort::P99, None), "./stats?sort=p99");
        for sort in [Sort::Count, Sort::Avg, Sort::P99, Sort::Max] {
            assert_eq!(Sort::parse(sort.as_str()), Some(sort));
        }
        assert_eq!(Sort::parse("P99"), None);
    }

    #[test]
    fn links_are_relative_at_every_level() {
        // The dashboard `/stats`, its list `/stats/requests`, a request `/stats/requests/7`.
        assert_eq!(link("stats", 0, ""), "./stats");
        assert_eq!(link("stats", 0, "requests/7"), "./stats/requests/7");
        assert_eq!(link("stats", 1, ""), "./../stats");
        assert_eq!(link("stats", 1, "requests/7"), "./requests/7");
        assert_eq!(link("stats", 1, "style.css"), "./style.css");
        assert_eq!(link("stats", 2, ""), "./../../stats");
        assert_eq!(link("stats", 2, "requests"), "./../requests");
        assert_eq!(link("a:b", 2, ""), "./../../a:b");
    }

    #[test]
    fn durations_sit_beside_their_bars() {
        assert_eq!(duration_place(300.0, 400.0), ("dur", 408.0));
        assert_eq!(duration_place(300.0, 1080.0), ("dur inside", 1074.0));
        assert_eq!(duration_place(1050.0, 1070.0), ("dur before", 1042.0));
    }

    #[test]
    fn missing_windows_show_as_missing() {
        let html = windows_view(&BTreeMap::new()).into_string();
        for key in ["1m", "15m", "total"] {
            assert!(
                html.contains(&format!(r#"">{key} <span class="covered">over 0 s</span>"#)),
                "{html}"
            );
        }
        // Six durations per row, none known.
        assert_eq!(html.matches(format::MISSING).count(), 3 * 6, "{html}");
        assert!(trend_view(&[]).into_string().is_empty());
    }

    #[test]
    fn bars_and_percentages() {
        assert_eq!(bar_width(0.0, 1.0, 100.0), 0.0);
        assert_eq!(bar_width(1e-9, 1.0, 100.0), 1.0);
        assert_eq!(bar_width(2.0, 1.0, 100.0), 100.0);
        assert_eq!(bar_width(f64::NAN, 1.0, 100.0), 0.0);
        assert_eq!(bar_width(1.0, 0.0, 100.0), 0.0);
        assert_eq!(percent(1, 0), format::MISSING);
        assert_eq!(percent(1, 1000), "<1%");
        assert_eq!(percent(1, 3), "33%");
    }

    #[test]
    fn formatting_rules() {
        let f = Formatting::new()
            .hide("ns", "secret")
            .format_with("ns", "price", |v| format!("€{v}"));
        assert!(f.hidden("ns", "secret"));
        assert!(!f.hidden("ns", "price"));
        assert!(!f.hidden("other", "secret"));
        assert_eq!(
            f.show("ns", "price", "price", &serde_json::json!(3), 0.0),
            "€3"
        );
        assert_eq!(
            f.show("ns", "c.size", "bytes", &serde_json::json!(2048), 0.0),
            "2.00 KiB"
        );
        let debug = format!("{f:?}");
        assert!(
            debug.contains("ns/secret") && debug.contains("format_with"),
            "{debug}"
        );
    }
}
