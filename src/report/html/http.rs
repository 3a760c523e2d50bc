//! The built-in `http` namespace on the dashboard: the windows table, the tiles, the trend,
//! the responses by status, then the request lists and the URI sets.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::cells::{opt_duration, plural, text};
use super::dashboard::namespace_head;
use super::options::DashboardOptions;
use super::requests_in_flight::{in_flight_view, open_streams_view, slow_view};
use super::svg::{sparkline, status_bar};
use super::uri_sets::uri_sets_view;
use crate::report::format;
use crate::{Snapshot, WindowSnapshot};

/// The `http` namespace section.
pub(super) fn http_section(snapshot: &Snapshot, options: &DashboardOptions) -> Markup {
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

/// A figure with its label and an optional line under it.
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

/// The windows of the rates and latency table, top to bottom, with what each one means.
const WINDOWS: [(&str, &str); 3] = [
    ("1m", "in the last minute"),
    ("15m", "in the last 15 minutes"),
    ("total", "since start or the last reset"),
];

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

/// Responses by status class, as a bar and a table with the count of each status code.
fn status_view(snapshot: &Snapshot) -> Markup {
    let http = &snapshot.http;
    let classes = [
        ("1xx", http.status_1xx),
        ("2xx", http.status_2xx),
        ("3xx", http.status_3xx),
        ("4xx", http.status_4xx),
        ("5xx", http.status_5xx),
    ];
    html! {
        h3 { "Responses by status" }
        (status_bar(&classes))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
