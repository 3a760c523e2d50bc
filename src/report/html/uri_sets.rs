//! The URI sets table of the `http` namespace, in the order asked for, with each set's share
//! of requests and its latency bars.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::cells::{more_rows, opt_duration, text, MAX_ROWS};
use super::options::{DashboardOptions, Rules, Sort};
use super::page::link;
use super::svg::{latency_bars, share_bar};
use crate::report::format;
use crate::UriSetSnapshot;

/// The URI sets heading with its sort links and legend, then the table; `c` are the rules of
/// the `uri_sets` columns. The share bars go with the count, the latency bars with p50 and p99,
/// and a sort link with the column it sorts by.
pub(super) fn uri_sets_view(
    sets: &BTreeMap<String, UriSetSnapshot>,
    options: &DashboardOptions,
    c: Rules<'_>,
) -> Markup {
    let rows = sorted_uri_sets(sets, options.sort);
    let latency = c.shown("p50_seconds") && c.shown("p99_seconds");
    // The latency bars share one scale: the largest p99.
    let scale = if latency {
        sets.values()
            .filter_map(|s| s.p99_seconds)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
    } else {
        0.0
    };
    let total: u64 = sets
        .values()
        .map(|s| s.count.saturating_add(s.streams))
        .sum();
    let with_streams = c.shown("streams") && sets.values().any(|s| s.streams > 0);
    let sorts = [
        (Sort::Count, "count", "count"),
        (Sort::Avg, "average", "avg_seconds"),
        (Sort::P99, "p99", "p99_seconds"),
        (Sort::Max, "max", "max_seconds"),
    ];
    let bytes = |n: u64| format::bytes(n as f64);
    let num = |n: u64, bad: &'static str| if n > 0 { bad } else { "num" };
    html! {
        div.section-head {
            h3 { "URI sets " span.count { "(" (sets.len()) ")" } }
            nav.sort aria-label="Sort URI sets" {
                "Sort by "
                @for (sort, label, key) in sorts {
                    @if sort == options.sort {
                        strong aria-current="true" { (label) }
                        " "
                    } @else if c.shown(key) {
                        a href=(options.href(sort, options.refresh)) { (label) }
                        " "
                    }
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
                    @if c.shown("count") { th.num { "Count" } th.bars { "Share" } }
                    @if with_streams { th.num { "Streams" } }
                    @if c.shown("avg_seconds") { th.num { "Avg" } }
                    @if c.shown("p50_seconds") { th.num { "p50" } }
                    @if c.shown("p99_seconds") { th.num { "p99" } }
                    @if c.shown("p999_seconds") { th.num { "p99.9" } }
                    @if c.shown("max_seconds") { th.num { "Max" } }
                    @if latency {
                        th.bars title="Latency bars: p50 and p99 since start, to one scale" {
                            span.legend { span.key-p50 { "p50" } " " span.key-p99 { "p99" } }
                        }
                    }
                    @if c.shown("status_2xx") { th.num { "2xx" } }
                    @if c.shown("status_3xx") { th.num { "3xx" } }
                    @if c.shown("status_4xx") { th.num { "4xx" } }
                    @if c.shown("status_5xx") { th.num { "5xx" } }
                    @if c.shown("errors") { th.num { "Errors" } }
                    @if c.shown("bytes_read") { th.num { "Read" } }
                    @if c.shown("bytes_written") { th.num { "Written" } }
                } }
                tbody {
                    @for (key, s) in rows.iter().take(MAX_ROWS) {
                        @let seen = s.count.saturating_add(s.streams);
                        tr {
                            td.key {
                                a href=(requests_href(options, key, None))
                                    title="Its recent requests" { (text(key)) }
                            }
                            @if let Some(v) = c.show("count", s.count, format::count) {
                                td.num { (v) }
                                td.bars {
                                    (share_bar(seen, total))
                                    " " span.pct { (percent(seen, total)) }
                                }
                            }
                            @if with_streams { td.num { (c.format("streams", s.streams, format::count)) } }
                            @if let Some(v) = c.show("avg_seconds", s.avg_seconds, |avg| duration_or_missing(s.count, avg)) {
                                td.num { (v) }
                            }
                            @if let Some(v) = c.show("p50_seconds", s.p50_seconds, opt_duration) { td.num { (v) } }
                            @if let Some(v) = c.show("p99_seconds", s.p99_seconds, opt_duration) { td.num.p99 { (v) } }
                            @if let Some(v) = c.show("p999_seconds", s.p999_seconds, opt_duration) { td.num { (v) } }
                            @if let Some(v) = c.show("max_seconds", s.max_seconds, opt_duration) { td.num { (v) } }
                            @if latency {
                                td.bars {
                                    (latency_bars(s.p50_seconds, s.p99_seconds, scale))
                                }
                            }
                            @if let Some(v) = c.show("status_2xx", s.status_2xx, format::count) { td.num.s2 { (v) } }
                            @if let Some(v) = c.show("status_3xx", s.status_3xx, format::count) { td.num.s3 { (v) } }
                            @if let Some(v) = c.show("status_4xx", s.status_4xx, format::count) {
                                td class=(num(s.status_4xx, "num warn")) {
                                    (count_link(options, key, "4xx", s.status_4xx, &v))
                                }
                            }
                            @if let Some(v) = c.show("status_5xx", s.status_5xx, format::count) {
                                td class=(num(s.status_5xx, "num bad")) {
                                    (count_link(options, key, "5xx", s.status_5xx, &v))
                                }
                            }
                            @if let Some(v) = c.show("errors", s.errors, format::count) {
                                td class=(num(s.errors, "num bad")) { (v) }
                            }
                            @if let Some(v) = c.show("bytes_read", s.bytes_read, bytes) { td.num { (v) } }
                            @if let Some(v) = c.show("bytes_written", s.bytes_written, bytes) { td.num { (v) } }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, rows.len()))
        }
    }
}

/// The link from the dashboard to the recent requests of URI set `key`, with `status` (a
/// class) when given, in the scope or instance the dashboard shows.
fn requests_href(options: &DashboardOptions, key: &str, status: Option<&str>) -> String {
    let mut params = vec![("uri_set", key)];
    params.extend(status.map(|s| ("status", s)));
    if let Some((name, value)) = &options.view {
        params.push((name.as_str(), value.as_str()));
    }
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    format!("{}?{query}", link(&options.base, 0, "requests"))
}

/// A status count linking to the requests with that status class, when there are any.
fn count_link(options: &DashboardOptions, key: &str, class: &str, n: u64, shown: &str) -> Markup {
    html! {
        @if n > 0 {
            a href=(requests_href(options, key, Some(class))) title={ "Its recent " (class) " requests" } { (shown) }
        } @else {
            (shown)
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

/// A URI set's average, or [`format::MISSING`] when it has no finished request.
fn duration_or_missing(count: u64, seconds: f64) -> String {
    if count == 0 {
        format::MISSING.to_owned()
    } else {
        format::duration(seconds)
    }
}

/// `part` as a whole percentage of `total`; `<1%` for a positive share under 1%.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(percent(1, 0), format::MISSING);
        assert_eq!(percent(1, 1000), "<1%");
        assert_eq!(percent(1, 3), "33%");
    }
}
