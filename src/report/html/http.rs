//! The built-in `http` namespace on the dashboard: the windows table, the tiles, the trend,
//! the responses by status, then the request lists and the URI sets.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::cells::{opt_duration, text};
use super::dashboard::namespace_head;
use super::options::{DashboardOptions, Rules};
use super::requests_in_flight::{in_flight_view, open_streams_view, slow_view};
use super::svg::{sparkline, status_bar};
use super::uri_sets::uri_sets_view;
use crate::report::format;
use crate::{Snapshot, WindowSnapshot};

/// The `http` namespace section, each value shown as `rules` say.
pub(super) fn http_section(
    snapshot: &Snapshot,
    options: &DashboardOptions,
    rules: Rules<'_>,
) -> Markup {
    let http = &snapshot.http;
    let now = snapshot.generated_at;
    let bytes = |n: u64| format::bytes(n as f64);
    let errors = rules.show("requests_errored", http.requests_errored, format::count);
    let errors_class = (errors.is_some() && http.requests_errored > 0).then_some("bad");
    let streams_open = rules
        .show("streams_open", http.streams_open, format::count)
        .map(|n| {
            let noun = if http.streams_open == 1 {
                "open stream"
            } else {
                "open streams"
            };
            format!("{n} {noun}")
        });
    let aborted = rules.show("requests_aborted", http.requests_aborted, format::count);
    let went_away = aborted.as_ref().map(|_| "client went away".to_owned());
    html! {
        section.namespace.http {
            (namespace_head("http", http.enabled, options))
            @if rules.shown("windows") {
                (windows_view(&http.windows, rules.table("windows")))
            }
            div.tiles {
                (tile("Requests",
                    rules.show("requests_total", http.requests_total, format::count),
                    rules.show("requests_per_second", http.requests_per_second, format::per_second),
                    None))
                (tile("In flight",
                    rules.show("requests_in_flight", http.requests_in_flight, format::count),
                    streams_open, None))
                (tile("Errors", errors,
                    rules.show("requests_panicked", http.requests_panicked, format::count)
                        .map(|n| format!("{n} panicked")),
                    errors_class))
                (tile("Aborted", aborted, went_away, None))
                (tile("Read",
                    rules.show("bytes_read_total", http.bytes_read_total, bytes),
                    rules.show("bytes_read_per_second", http.bytes_read_per_second, format::bytes_per_second),
                    None))
                (tile("Written",
                    rules.show("bytes_written_total", http.bytes_written_total, bytes),
                    rules.show("bytes_written_per_second", http.bytes_written_per_second, format::bytes_per_second),
                    None))
                (tile("Slow requests",
                    rules.shown("slow_requests").then(|| format::count(http.slow_requests.len() as u64)),
                    rules.shown("slow_requests").then(|| "kept as evidence".to_owned()),
                    None))
            }
            div.summary {
                @if rules.shown("requests_per_minute") {
                    (trend_view(&http.requests_per_minute, rules))
                }
                p.facts {
                    @for (i, fact) in facts(snapshot, rules).iter().enumerate() {
                        @if i > 0 { " · " }
                        (fact)
                    }
                }
            }
            (status_view(snapshot, rules))
            @if rules.shown("in_flight") {
                (in_flight_view(&http.in_flight, rules.table("in_flight")))
            }
            @if rules.shown("open_streams") {
                (open_streams_view(&http.open_streams, rules.table("open_streams")))
            }
            @if rules.shown("slow_requests") {
                (slow_view(&http.slow_requests, &options.base, now, rules.table("slow_requests")))
            }
            @if rules.shown("uri_sets") {
                (uri_sets_view(&http.uri_sets, options, rules.table("uri_sets")))
            }
        }
    }
}

/// The line of facts under the tiles, each one left out when its value is hidden.
fn facts(snapshot: &Snapshot, rules: Rules<'_>) -> Vec<String> {
    let http = &snapshot.http;
    let now = snapshot.generated_at;
    let bytes = format::bytes;
    let since = |t: f64| format!("{} ({})", format::iso_time(t), format::ago(now - t));
    let per_request: Vec<String> = [
        rules
            .show("bytes_read_per_request", http.bytes_read_per_request, bytes)
            .map(|b| format!("read {b}")),
        rules
            .show(
                "bytes_written_per_request",
                http.bytes_written_per_request,
                bytes,
            )
            .map(|b| format!("written {b}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    [
        rules
            .show("reset_time", http.reset_time, since)
            .map(|t| format!("Counting since {t}")),
        rules
            .show(
                "processing_seconds_total",
                http.processing_seconds_total,
                format::duration,
            )
            .map(|d| format!("processing time {d}")),
        (!per_request.is_empty()).then(|| format!("per request: {}", per_request.join(", "))),
        rules
            .show("streams_total", http.streams_total, format::count)
            .map(|n| format!("streams {n}")),
        rules
            .show(
                "uri_sets_overflowed",
                http.uri_sets_overflowed,
                format::count,
            )
            .map(|n| format!("URI sets overflowed {n}")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A figure with its label and an optional line under it; nothing when both are hidden.
fn tile(label: &str, value: Option<String>, sub: Option<String>, class: Option<&str>) -> Markup {
    html! {
        @if value.is_some() || sub.is_some() {
            div class=(match class { Some(c) => format!("tile {c}"), None => "tile".to_owned() }) {
                div.label { (label) }
                @if let Some(value) = value {
                    div.value { (value) }
                }
                @if let Some(sub) = sub {
                    div.sub { (sub) }
                }
            }
        }
    }
}

/// The windows of the rates and latency table, top to bottom, with what each one means.
const WINDOWS: [(&str, &str); 3] = [
    ("1m", "in the last minute"),
    ("15m", "in the last 15 minutes"),
    ("total", "since start or the last reset"),
];

/// Rates, errors and latency over the last minute, the last 15 minutes and since start, side
/// by side as zPages' rpcz shows them. Each row says how long its window actually covers
/// (less than nominal just after start or a reset). `columns` are the rules of the
/// `windows` columns.
fn windows_view(windows: &BTreeMap<String, WindowSnapshot>, columns: Rules<'_>) -> Markup {
    let none = WindowSnapshot::default();
    let c = columns;
    html! {
        table.windows {
            thead { tr {
                th { "Window" }
                @if c.shown("count") { th.num { "Requests" } }
                @if c.shown("requests_per_second") { th.num { "Req/s" } }
                @if c.shown("errors") { th.num { "Errors" } }
                @if c.shown("avg_seconds") { th.num { "Avg" } }
                @if c.shown("p50_seconds") { th.num { "p50" } }
                @if c.shown("p90_seconds") { th.num { "p90" } }
                @if c.shown("p99_seconds") { th.num { "p99" } }
                @if c.shown("p999_seconds") { th.num { "p99.9" } }
                @if c.shown("max_seconds") { th.num { "Max" } }
            } }
            tbody {
                @for (key, meaning) in WINDOWS {
                    @let w = windows.get(key).unwrap_or(&none);
                    tr {
                        th.window title=(format!("Requests finished {meaning}")) {
                            (key)
                            @if let Some(covered) = c.show("covered_seconds", w.covered_seconds, format::duration) {
                                " " span.covered { "over " (covered) }
                            }
                        }
                        @if let Some(v) = c.show("count", w.count, format::count) { td.num { (v) } }
                        @if let Some(v) = c.show("requests_per_second", w.requests_per_second, format::per_second) {
                            td.num { (v) }
                        }
                        @if let Some(v) = c.show("errors", w.errors, format::count) {
                            td class=(if w.errors > 0 { "num bad" } else { "num" }) { (v) }
                        }
                        @if let Some(v) = c.show("avg_seconds", w.avg_seconds, opt_duration) { td.num { (v) } }
                        @if let Some(v) = c.show("p50_seconds", w.p50_seconds, opt_duration) { td.num { (v) } }
                        @if let Some(v) = c.show("p90_seconds", w.p90_seconds, opt_duration) { td.num { (v) } }
                        @if let Some(v) = c.show("p99_seconds", w.p99_seconds, opt_duration) { td.num.p99 { (v) } }
                        @if let Some(v) = c.show("p999_seconds", w.p999_seconds, opt_duration) { td.num { (v) } }
                        @if let Some(v) = c.show("max_seconds", w.max_seconds, opt_duration) { td.num { (v) } }
                    }
                }
            }
        }
    }
}

/// The requests-per-minute sparkline with its caption: oldest minute first, the last point
/// being the current minute so far.
fn trend_view(per_minute: &[u64], rules: Rules<'_>) -> Markup {
    let minutes = per_minute.len();
    let count = |n: u64| rules.format("requests_per_minute", n, format::count);
    let max = count(per_minute.iter().copied().max().unwrap_or(0));
    let current = count(per_minute.last().copied().unwrap_or(0));
    let points: Vec<f64> = per_minute.iter().map(|n| *n as f64).collect();
    let label = format!("requests per minute, last {minutes} minutes");
    html! {
        @if minutes > 0 {
            div.trend {
                div.caption {
                    div.label { "Requests per minute" }
                    div.sub {
                        "last " (minutes) " minutes · max " strong { (max) }
                        " · this minute " strong { (current) } " so far"
                    }
                }
                (sparkline(&points, &label))
            }
        }
    }
}

/// Responses by status class, as a bar and a table with the count of each status code; the
/// classes and codes hidden by `rules` are left out of both.
fn status_view(snapshot: &Snapshot, rules: Rules<'_>) -> Markup {
    let http = &snapshot.http;
    let classes = [
        ("1xx", "status_1xx", http.status_1xx),
        ("2xx", "status_2xx", http.status_2xx),
        ("3xx", "status_3xx", http.status_3xx),
        ("4xx", "status_4xx", http.status_4xx),
        ("5xx", "status_5xx", http.status_5xx),
    ];
    let shown: Vec<(usize, &str, String)> = classes
        .iter()
        .enumerate()
        .filter_map(|(i, (label, key, n))| Some((i, *label, rules.show(key, *n, format::count)?)))
        .collect();
    let bar: Vec<(&str, u64)> = classes
        .iter()
        .map(|(label, key, n)| (*label, if rules.shown(key) { *n } else { 0 }))
        .collect();
    let codes = rules.shown("status_codes");
    html! {
        @if !shown.is_empty() || (codes && !http.status_codes.is_empty()) {
            h3 { "Responses by status" }
            @if !shown.is_empty() {
                (status_bar(&bar))
            }
            table.status {
                thead { tr {
                    @for (_, label, _) in &shown { th.num { (label) } }
                    @if codes {
                        @for (i, code) in http.status_codes.keys().enumerate() {
                            th class=(if i == 0 { "num code first" } else { "num code" }) { (text(code)) }
                        }
                    }
                } }
                tbody { tr {
                    @for (i, _, n) in &shown {
                        td class=(format!("num s{}", i + 1)) { (n) }
                    }
                    @if codes {
                        @for (i, n) in http.status_codes.values().enumerate() {
                            td class=(if i == 0 { "num code first" } else { "num code" }) {
                                (rules.format("status_codes", *n, format::count))
                            }
                        }
                    }
                } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_windows_show_as_missing() {
        let html = windows_view(&BTreeMap::new(), Rules::default()).into_string();
        for key in ["1m", "15m", "total"] {
            assert!(
                html.contains(&format!(r#"">{key} <span class="covered">over 0 s</span>"#)),
                "{html}"
            );
        }
        // Six durations per row, none known.
        assert_eq!(html.matches(format::MISSING).count(), 3 * 6, "{html}");
        assert!(trend_view(&[], Rules::default()).into_string().is_empty());
    }
}
