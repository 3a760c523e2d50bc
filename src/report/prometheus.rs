//! The `/stats/metrics` exposition: Prometheus text format 0.0.4, or OpenMetrics 1.0 text.
//!
//! Names follow OpenTelemetry's HTTP server semantic conventions as Prometheus exports them:
//! base units (`_seconds`, `_bytes`), counters ending in `_total`, and the conventions'
//! attributes as labels with dots made underscores (`http.request.method` is
//! `http_request_method`, `http.route` is `http_route`, `http.response.status_code` is
//! `http_response_status_code`, `error.type` is `error_type`).
//!
//! | Metric | Type | Labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code`, `error_type` |
//! | `http_server_active_requests` | gauge | |
//! | `http_server_open_streams` | gauge | |
//! | `http_server_requests_total` (started) | counter | |
//! | `http_server_request_errors_total` | counter | `error_type` |
//! | `http_server_responses_total` | counter | `status_class` |
//! | `http_server_responses_by_code_total` (tracked codes) | counter | `http_response_status_code` |
//! | `http_server_request_body_bytes_total`, `http_server_response_body_bytes_total` | counter | `http_request_method`, `http_route` |
//! | `http_server_uri_sets_overflowed_total` | counter | |
//! | `tower_stats_http_calls_total`, `tower_stats_http_call_requests_total` | counter | `call` |
//! | `tower_stats_http_call_duration_seconds` (p50, p99) | summary | `call` |
//! | `tower_stats_http_uri_set_calls_total` | counter | `uri_set`, `call` |
//! | `tower_stats_recording` (1 while recording) | gauge | `namespace` |
//! | `tower_stats_start_time_seconds` | gauge | |
//! | `<namespace>_<name>` for numeric application values | counter or gauge | |
//!
//! `http_request_method` is one of the nine standard methods or `_OTHER`, as the conventions
//! ask. `http_route` is the URI set's route (a `MatchedPath` template or an application
//! label, `<unmatched>` when no route matched), never a raw path. `error_type` is set on the
//! requests that ended in an error, one series for each way to end so: `aborted` (the client
//! went away before the response ended), `error` (the service or a body failed, other than
//! by a panic) and `panicked`; their sum is every request that failed.
//!
//! # The duration histogram
//!
//! Like OpenTelemetry's `http.server.request.duration`, the histogram is labelled by the
//! method, the route, the response's status code (`499` when the client went away first, left
//! out when there was none, as after a panic) and the error type (left out when there was
//! none). The
//! series are bounded: each URI set keeps its own series for the first 8 combinations of
//! status code and error type it sees (kept across resets), and counts any further status
//! code under `http_response_status_code="_OTHER"`, with its error type. So a route has at
//! most 12 series, and dashboards built on the conventions work unchanged.
//!
//! In OpenMetrics, each bucket carries an exemplar: a recent request that fell in it,
//! `# {request_id="42",trace_id="4bf9…"} 0.0123 1763700000.5` (its processing time and when
//! it ended), with the W3C trace id when the request carried a valid `traceparent` header.
//! The id leads to `{prefix}/requests/{id}` while the request is among the recent or slow
//! requests; a bucket's exemplar is replaced by a newer request of the bucket once 16
//! requests have started since its own, and only requests that keep a detailed record
//! (sampled, not `dont_record`) are exemplars. The text format 0.0.4 has
//! no exemplars.
//!
//! Label values and help texts are escaped; application names are reduced to
//! `[a-zA-Z0-9_]`, and a value whose name collides with one already written is left out.
//! The duration histogram is exact for its bounds (each request is counted in its bucket
//! when it finishes).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use crate::registry::ValueKind;
use crate::{Exemplar, Snapshot};

/// OpenTelemetry's `http.request.method`.
const METHOD: &str = "http_request_method";
/// OpenTelemetry's `http.route`.
const ROUTE: &str = "http_route";
/// OpenTelemetry's `http.response.status_code`.
const STATUS_CODE: &str = "http_response_status_code";
/// OpenTelemetry's `error.type`.
const ERROR_TYPE: &str = "error_type";

/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text format (ends with `# EOF`).
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header lists `application/openmetrics-text` (with a
    /// non-zero quality), else the Prometheus text format.
    #[must_use]
    pub fn from_accept(accept: Option<&str>) -> Self {
        let wants = accept.is_some_and(|accept| {
            accept.split(',').any(|part| {
                let mut params = part.split(';');
                let media = params.next().unwrap_or("").trim();
                let refused = params.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f64>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    /// The `Content-Type` of this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => TEXT_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Renders a snapshot in `format`.
///
/// # Example
///
/// ```
/// use tower_stats::report::prometheus::{render, Format};
///
/// let stats = tower_stats::Stats::new();
/// let text = render(&stats.snapshot(), Format::Text);
/// assert!(text.contains("# TYPE http_server_requests_total counter\nhttp_server_requests_total 0\n"));
/// let open = render(&stats.snapshot(), Format::OpenMetrics);
/// assert!(open.ends_with("# EOF\n"));
/// ```
#[must_use]
pub fn render(snapshot: &Snapshot, format: Format) -> String {
    let mut out = Writer {
        out: String::with_capacity(16 * 1024),
        format,
        names: BTreeSet::new(),
    };
    let http = &snapshot.http;

    out.family(
        "http_server_request_duration_seconds",
        "histogram",
        "Duration of HTTP server requests, from the call of the stats layer to the end of the response body (streams excluded).",
    );
    let bounds: Vec<String> = http
        .duration_buckets
        .iter()
        .map(|b| float_label(*b))
        .collect();
    for set in http.uri_sets.values() {
        for series in &set.durations {
            let mut labels = vec![(METHOD, set.method.as_str()), (ROUTE, set.route.as_str())];
            if !series.status_code.is_empty() {
                labels.push((STATUS_CODE, series.status_code.as_str()));
            }
            if !series.error_type.is_empty() {
                labels.push((ERROR_TYPE, series.error_type.as_str()));
            }
            for (i, count) in series.cumulative.iter().enumerate() {
                let le = bounds.get(i).map_or("+Inf", String::as_str);
                let exemplar = series.exemplars.iter().find(|e| e.bucket == i);
                out.bucket(
                    "http_server_request_duration_seconds_bucket",
                    &labels,
                    le,
                    *count,
                    exemplar,
                );
            }
            let count = series.cumulative.last().copied().unwrap_or(0);
            out.sample("http_server_request_duration_seconds_count", &labels, count);
            out.sample_f64(
                "http_server_request_duration_seconds_sum",
                &labels,
                series.sum_seconds,
            );
        }
    }

    out.gauge(
        "http_server_active_requests",
        "Requests in flight (open streams excluded).",
        http.requests_in_flight as f64,
    );
    out.gauge(
        "http_server_open_streams",
        "Streaming responses (101, text/event-stream) whose body is open.",
        http.streams_open as f64,
    );
    out.counter(
        "http_server_requests",
        "Requests started since start or the last reset.",
        http.requests_total,
    );
    out.family(
        "http_server_request_errors",
        "counter",
        "Requests that ended in an error: the client went away before the response ended (aborted), the service or a body failed other than by a panic (error), or a panic unwound through the stats layer (panicked).",
    );
    for (error_type, n) in [
        ("aborted", http.requests_aborted),
        (
            "error",
            http.requests_errored.saturating_sub(http.requests_panicked),
        ),
        ("panicked", http.requests_panicked),
    ] {
        out.sample(
            "http_server_request_errors_total",
            &[(ERROR_TYPE, error_type)],
            n,
        );
    }

    out.family(
        "http_server_responses",
        "counter",
        "Responses by status class.",
    );
    for (class, n) in [
        ("1xx", http.status_1xx),
        ("2xx", http.status_2xx),
        ("3xx", http.status_3xx),
        ("4xx", http.status_4xx),
        ("5xx", http.status_5xx),
    ] {
        out.sample("http_server_responses_total", &[("status_class", class)], n);
    }
    out.family(
        "http_server_responses_by_code",
        "counter",
        "Responses with each tracked status code.",
    );
    for (code, n) in &http.status_codes {
        out.sample(
            "http_server_responses_by_code_total",
            &[(STATUS_CODE, code)],
            *n,
        );
    }

    for (name, help, pick) in [
        (
            "http_server_request_body_bytes",
            "Request body bytes the service read, by URI set.",
            (|s: &crate::UriSetSnapshot| s.bytes_read) as fn(&crate::UriSetSnapshot) -> u64,
        ),
        (
            "http_server_response_body_bytes",
            "Response body bytes the server wrote, by URI set.",
            |s: &crate::UriSetSnapshot| s.bytes_written,
        ),
    ] {
        out.family(name, "counter", help);
        let sample = format!("{name}_total");
        for set in http.uri_sets.values() {
            let labels = [(METHOD, set.method.as_str()), (ROUTE, set.route.as_str())];
            out.sample(&sample, &labels, pick(set));
        }
    }
    out.counter(
        "http_server_uri_sets_overflowed",
        "Requests counted in the <overflow> URI set.",
        http.uri_sets_overflowed,
    );
    calls(&mut out, http);

    out.family(
        "tower_stats_recording",
        "gauge",
        "1 while the namespace records, 0 while paused.",
    );
    out.sample(
        "tower_stats_recording",
        &[("namespace", "http")],
        u64::from(http.enabled),
    );
    for (name, ns) in &snapshot.namespaces {
        out.sample(
            "tower_stats_recording",
            &[("namespace", name)],
            u64::from(ns.enabled),
        );
    }
    out.gauge(
        "tower_stats_start_time_seconds",
        "Start time of the statistics, in Unix epoch seconds.",
        snapshot.server.start_time,
    );

    for (ns_name, ns) in &snapshot.namespaces {
        for (key, value) in &ns.values {
            let Some(number) = numeric(value) else {
                continue;
            };
            let base = metric_name(&format!("{ns_name}_{key}"));
            let help = format!("Application value {key:?} of namespace {ns_name:?}.");
            match ns.kinds.get(key) {
                Some(ValueKind::Counter) => {
                    let family = base.strip_suffix("_total").unwrap_or(&base).to_owned();
                    if out.claim(&family) {
                        out.family(&family, "counter", &help);
                        out.sample_f64(&format!("{family}_total"), &[], number);
                    }
                }
                _ => {
                    if out.claim(&base) {
                        out.family(&base, "gauge", &help);
                        out.sample_f64(&base, &[], number);
                    }
                }
            }
        }
    }

    if format == Format::OpenMetrics {
        out.out.push_str("# EOF\n");
    }
    out.out
}

/// The call statistics: calls, requests that made them and their durations by call name,
/// and calls by URI set.
fn calls(out: &mut Writer, http: &crate::HttpSnapshot) {
    if http.calls.is_empty() {
        return;
    }
    out.family(
        "tower_stats_http_calls",
        "counter",
        "Calls (timed timeline entries: spans, events carrying their elapsed time, timed custom events) of finished requests, by call name.",
    );
    for (name, call) in &http.calls {
        out.sample(
            "tower_stats_http_calls_total",
            &[("call", name)],
            call.count,
        );
    }
    out.family(
        "tower_stats_http_call_requests",
        "counter",
        "Finished requests that made the call at least once.",
    );
    for (name, call) in &http.calls {
        out.sample(
            "tower_stats_http_call_requests_total",
            &[("call", name)],
            call.requests,
        );
    }
    out.family(
        "tower_stats_http_call_duration_seconds",
        "summary",
        "Duration of the calls, by call name; quantiles within 1/64 of the exact value.",
    );
    for (name, call) in &http.calls {
        for (quantile, value) in [("0.5", call.p50_seconds), ("0.99", call.p99_seconds)] {
            if let Some(value) = value {
                out.sample_f64(
                    "tower_stats_http_call_duration_seconds",
                    &[("call", name), ("quantile", quantile)],
                    value,
                );
            }
        }
        let labels = [("call", name.as_str())];
        out.sample_f64(
            "tower_stats_http_call_duration_seconds_sum",
            &labels,
            call.total_seconds,
        );
        out.sample(
            "tower_stats_http_call_duration_seconds_count",
            &labels,
            call.count,
        );
    }
    out.family(
        "tower_stats_http_uri_set_calls",
        "counter",
        "Calls made by the requests of each URI set.",
    );
    for (name, call) in &http.calls {
        for (set, s) in &call.uri_sets {
            out.sample(
                "tower_stats_http_uri_set_calls_total",
                &[("uri_set", set), ("call", name)],
                s.count,
            );
        }
    }
}

struct Writer {
    out: String,
    format: Format,
    names: BTreeSet<String>,
}

impl Writer {
    /// Reserves a family name and the sample names derived from it; false if taken.
    fn claim(&mut self, family: &str) -> bool {
        let derived = [
            family.to_owned(),
            format!("{family}_total"),
            format!("{family}_bucket"),
            format!("{family}_count"),
            format!("{family}_sum"),
            format!("{family}_created"),
        ];
        if derived.iter().any(|n| self.names.contains(n)) {
            return false;
        }
        self.names.extend(derived);
        true
    }

    /// Writes `# HELP` and `# TYPE` for a family. For counters, `name` is the family name
    /// without `_total`: the text format names the family after its sample.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.claim(name);
        let typed = match (self.format, kind) {
            (Format::Text, "counter") => format!("{name}_total"),
            _ => name.to_owned(),
        };
        let help = escape_help(help, self.format);
        let _ = writeln!(self.out, "# HELP {typed} {help}");
        let _ = writeln!(self.out, "# TYPE {typed} {kind}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(&format!("{name}_total"), &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample_f64(name, &[], value);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (name, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{name}=\"");
            escape_label_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('}');
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram bucket; in OpenMetrics with its exemplar, when it has one.
    fn bucket(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        le: &str,
        value: u64,
        exemplar: Option<&Exemplar>,
    ) {
        self.out.push_str(name);
        self.labels(labels, Some(le));
        let _ = write!(self.out, " {value}");
        if let (Format::OpenMetrics, Some(e)) = (self.format, exemplar) {
            let mut exemplar_labels = vec![("request_id", e.request_id.as_str())];
            if let Some(trace_id) = &e.trace_id {
                exemplar_labels.push(("trace_id", trace_id.as_str()));
            }
            self.out.push_str(" # ");
            // `labels` writes nothing for an empty set; an exemplar always has its braces.
            self.labels(&exemplar_labels, None);
            let _ = write!(
                self.out,
                " {} {}",
                float_value(e.value_seconds),
                float_value(e.time)
            );
        }
        self.out.push('\n');
    }

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", float_value(value));
    }
}

/// A number for a sample: `NaN`, `+Inf`, `-Inf`, or a decimal.
fn float_value(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{x}")
    }
}

/// A bucket bound as a label value, always with a decimal point (`1.0`, `0.005`).
fn float_label(x: f64) -> String {
    let s = float_value(x);
    if s.contains(['.', 'e', 'I', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Reduces a name to `[a-zA-Z_][a-zA-Z0-9_]*`.
fn metric_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes help text: backslash and line feed, and in OpenMetrics also double quote.
fn escape_help(help: &str, format: Format) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0, text/plain")),
            Format::Text
        );
    }

    #[test]
    fn labels_are_the_opentelemetry_attributes() {
        let mut snapshot = Snapshot::default();
        let http = &mut snapshot.http;
        http.duration_buckets = vec![0.1];
        http.requests_aborted = 1;
        http.requests_errored = 3;
        http.requests_panicked = 1;
        http.status_2xx = 2;
        http.status_codes.insert("404".to_owned(), 2);
        http.uri_sets.insert(
            "GET /users/{id}".to_owned(),
            crate::UriSetSnapshot {
                method: "GET".to_owned(),
                route: "/users/{id}".to_owned(),
                bytes_read: 3,
                bytes_written: 4,
                durations: vec![
                    crate::DurationSeries {
                        status_code: "200".to_owned(),
                        cumulative: vec![1, 2],
                        sum_seconds: 0.5,
                        sum_nanos: 500_000_000,
                        exemplars: vec![crate::Exemplar {
                            bucket: 1,
                            request_id: "7".to_owned(),
                            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
                            value_seconds: 0.25,
                            time: 1_763_700_000.5,
                        }],
                        ..crate::DurationSeries::default()
                    },
                    crate::DurationSeries {
                        error_type: "aborted".to_owned(),
                        cumulative: vec![0, 1],
                        ..crate::DurationSeries::default()
                    },
                ],
                ..crate::UriSetSnapshot::default()
            },
        );
        let text = render(&snapshot, Format::Text);
        for line in [
            r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/users/{id}",http_response_status_code="200",le="0.1"} 1"#,
            r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/users/{id}",http_response_status_code="200",le="+Inf"} 2"#,
            r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/users/{id}",http_response_status_code="200"} 2"#,
            r#"http_server_request_duration_seconds_sum{http_request_method="GET",http_route="/users/{id}",http_response_status_code="200"} 0.5"#,
            r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/users/{id}",error_type="aborted",le="+Inf"} 1"#,
            "# TYPE http_server_request_errors_total counter",
            r#"http_server_request_errors_total{error_type="aborted"} 1"#,
            r#"http_server_request_errors_total{error_type="error"} 2"#,
            r#"http_server_request_errors_total{error_type="panicked"} 1"#,
            r#"http_server_responses_total{status_class="2xx"} 2"#,
            r#"http_server_responses_by_code_total{http_response_status_code="404"} 2"#,
            r#"http_server_request_body_bytes_total{http_request_method="GET",http_route="/users/{id}"} 3"#,
            r#"http_server_response_body_bytes_total{http_request_method="GET",http_route="/users/{id}"} 4"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let open = render(&snapshot, Format::OpenMetrics);
        let with_exemplar = r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/users/{id}",http_response_status_code="200",le="+Inf"} 2 # {request_id="7",trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.25 1763700000.5"#;
        assert!(open.lines().any(|l| l == with_exemplar), "{open}");
        assert!(!text.contains(" # {"), "no exemplar in the text format");
        for old in [
            "status_class=\"2xx\",le",
            "{method=",
            ",route=",
            "{code=",
            "_aborted_total",
            "_errored_total",
        ] {
            assert!(!text.contains(old), "{old:?} in\n{text}");
        }
    }

    #[test]
    fn errors_never_count_a_panic_twice_nor_go_below_zero() {
        let mut snapshot = Snapshot::default();
        // A document read back from elsewhere may say more panics than errors.
        snapshot.http.requests_errored = 1;
        snapshot.http.requests_panicked = 2;
        let text = render(&snapshot, Format::Text);
        assert!(text.contains("http_server_request_errors_total{error_type=\"error\"} 0\n"));
        assert!(text.contains("http_server_request_errors_total{error_type=\"panicked\"} 2\n"));
    }

    #[test]
    fn escaping() {
        let mut out = String::new();
        escape_label_into(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("x\"y\n", Format::Text), "x\"y\\n");
        assert_eq!(escape_help("x\"y\n", Format::OpenMetrics), "x\\\"y\\n");
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(metric_name("shop-1_orders.total"), "shop_1_orders_total");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(float_label(1.0), "1.0");
        assert_eq!(float_label(0.005), "0.005");
        assert_eq!(float_value(f64::INFINITY), "+Inf");
        assert_eq!(float_value(f64::NAN), "NaN");
    }
}
