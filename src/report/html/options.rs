//! The page's public options: the headers and stylesheet it is served with, how the
//! dashboard is drawn ([`DashboardOptions`], [`Sort`], [`Controls`], [`refresh_interval`]) and
//! how application values are shown ([`Formatting`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::cells::{text, MAX_TEXT};
use crate::report::format;

/// The `Content-Security-Policy` the page is served with: no script at all, styles only from
/// the same origin, forms only to the same origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The `Referrer-Policy` the page is served with. Not `no-referrer`: under it browsers send
/// `Origin: null` with the page's own form posts, which the control routes must refuse as
/// cross-origin. `same-origin` sends the page's address to its own origin only.
pub const REFERRER_POLICY: &str = "same-origin";

/// The stylesheet served at `{prefix}/style.css`.
pub const STYLESHEET: &str = include_str!("../style.css");

/// Shortest auto-refresh interval the page accepts, in seconds; shorter requests are raised
/// to it.
pub const MIN_REFRESH_SECONDS: u32 = 2;

/// Longest auto-refresh interval, in seconds; longer requests are lowered to it.
pub const MAX_REFRESH_SECONDS: u32 = 3600;

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
    /// Whether the controls act on every instance of a cluster: set by [`render`] from the
    /// snapshot it draws.
    ///
    /// [`render`]: super::render
    pub(super) cluster_controls: bool,
    /// The `scope` or `instance` the page was asked for, kept in its own links.
    pub(super) view: Option<(String, String)>,
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
            cluster_controls: false,
            view: None,
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
        // What a cluster page shows (`scope=local`, `instance=NAME`), kept in its links.
        self.view = pairs
            .iter()
            .find(|(k, v)| (k == "instance" && !v.is_empty()) || (k == "scope" && v == "local"))
            .map(|(k, v)| (k.clone(), v.chars().take(128).collect()));
        self
    }

    /// A relative link to this page with the given options.
    pub(super) fn href(&self, sort: Sort, refresh: Option<u32>) -> String {
        let mut params = Vec::new();
        if let Some(view) = &self.view {
            params.extend(serde_urlencoded::to_string([view]).ok());
        }
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

/// Per-key display rules for the dashboard's namespaces, like cpstats'
/// `StatsPage.formatting`: hide a value, or show it through a function of your own.
///
/// A key names a scalar or a whole collection (`"orders_total"`, `"recent_orders"`), or a
/// column of a collection as `"<collection>.<column>"` (`"recent_orders.at"`). Keys without a
/// rule are formatted from their name (see [`format::Kind`]). What a function returns is
/// text: it is escaped and capped like every other value, never taken as markup. The function
/// is given the value as `/stats/data` has it.
///
/// The built-in `http` namespace takes the same rules, with the keys of its `/stats/data`
/// object, wherever the dashboard shows its values: the tiles and the line under them
/// (`"requests_total"`, `"requests_per_second"`, `"bytes_read_total"`, `"reset_time"`, …), the
/// windows table (`"windows"`, `"windows.p99_seconds"`, …), the requests-per-minute trend
/// (`"requests_per_minute"`), the responses by status (`"status_2xx"`, `"status_codes"`,
/// `"grpc_status_codes"`), the
/// tables of requests (`"in_flight"`, `"open_streams"`, `"slow_requests"`,
/// `"recent_requests"`, and their columns such as `"in_flight.client"` or
/// `"slow_requests.processing_seconds"`), the URI sets (`"uri_sets"`, `"uri_sets.max_seconds"`)
/// and the columns of the cluster table that show `http` values (`"requests_total"`,
/// `"requests_per_second"`, `"requests_in_flight"`, `"requests_errored"`, `"p99_seconds"`).
/// A rule on a list or map of plain numbers (`"status_codes"`, `"grpc_status_codes"`,
/// `"requests_per_minute"`)
/// formats each of them. The requests pages (`{prefix}/requests`) are not affected.
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
///     .format_with("shop", "price", |v| format!("€{:.2}", v.as_f64().unwrap_or(0.0)))
///     .hide("http", "in_flight.client")
///     .format_with("http", "requests_total", |v| format!("{v} requests"));
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

    /// The rules of `namespace`, for a section that shows its values field by field.
    pub(super) fn namespace(&self, namespace: &str) -> Rules<'_> {
        Rules {
            keys: self.rules.get(namespace),
            table: None,
        }
    }

    pub(super) fn hidden(&self, namespace: &str, key: &str) -> bool {
        matches!(self.rule(namespace, key), Some(Rule::Hide))
    }

    /// The display text of `value`: through the rule for `key` if there is one, else
    /// formatted from its `name` (the key itself, or the column of a collection).
    pub(super) fn show(
        &self,
        namespace: &str,
        key: &str,
        name: &str,
        value: &Value,
        now: f64,
    ) -> String {
        match self.rule(namespace, key) {
            Some(Rule::With(f)) => text(&f(value)),
            _ => format::json_value(name, value, now, MAX_TEXT),
        }
    }
}

/// The rules of one namespace (see [`Formatting::namespace`]), or of one of its tables (see
/// [`Rules::table`]). Without any rule for the namespace, looking one up costs nothing.
#[derive(Clone, Copy, Default)]
pub(super) struct Rules<'a> {
    keys: Option<&'a BTreeMap<String, Rule>>,
    /// The table whose columns the keys name (`uri_sets` for `uri_sets.count`).
    table: Option<&'a str>,
}

impl<'a> Rules<'a> {
    /// The rules of the columns of `table`, a collection of the namespace.
    pub(super) fn table(self, table: &'a str) -> Self {
        Self {
            table: Some(table),
            ..self
        }
    }

    fn rule(&self, key: &str) -> Option<&'a Rule> {
        let keys = self.keys?;
        match self.table {
            None => keys.get(key),
            Some(table) => keys.get(format!("{table}.{key}").as_str()),
        }
    }

    /// Whether `key` is shown: it has no `hide` rule.
    pub(super) fn shown(&self, key: &str) -> bool {
        !matches!(self.rule(key), Some(Rule::Hide))
    }

    /// The display text of `value`, the value of `key`: through the rule for `key` if it has a
    /// function, else as `default` formats it.
    pub(super) fn format<V: Into<Value>>(
        &self,
        key: &str,
        value: V,
        default: impl FnOnce(V) -> String,
    ) -> String {
        match self.rule(key) {
            Some(Rule::With(f)) => text(&f(&value.into())),
            _ => default(value),
        }
    }

    /// [`format`](Self::format), or `None` when `key` is hidden.
    pub(super) fn show<V: Into<Value>>(
        &self,
        key: &str,
        value: V,
        default: impl FnOnce(V) -> String,
    ) -> Option<String> {
        self.shown(key).then(|| self.format(key, value, default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let rules = f.namespace("ns");
        assert!(!rules.shown("secret") && rules.shown("price"));
        assert_eq!(rules.show("secret", 1, |_| "1".to_owned()), None);
        assert_eq!(
            rules.show("price", 3, |_| "3".to_owned()),
            Some("€3".to_owned())
        );
        assert_eq!(rules.format("other", 4, |n| format!("{n}!")), "4!");
        let f = f
            .hide("ns", "list.hidden")
            .format_with("ns", "list.size", |v| format!("{v} B"));
        let table = f.namespace("ns").table("list");
        assert!(!table.shown("hidden") && table.shown("size") && table.shown("secret"));
        assert_eq!(table.format("size", 2, |_| String::new()), "2 B");
        assert!(Rules::default().shown("anything"));
        let debug = format!("{f:?}");
        assert!(
            debug.contains("ns/secret") && debug.contains("format_with"),
            "{debug}"
        );
    }
}
