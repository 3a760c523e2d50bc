//! The URI sets table of the `http` namespace, in the order asked for, with each set's share
//! of requests and its latency bars.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::cells::{more_rows, opt_duration, text, MAX_ROWS};
use super::options::{DashboardOptions, Sort};
use super::svg::{latency_bars, share_bar};
use crate::report::format;
use crate::UriSetSnapshot;

/// The URI sets heading with its sort links and legend, then the table.
pub(super) fn uri_sets_view(
    sets: &BTreeMap<String, UriSetSnapshot>,
    options: &DashboardOptions,
) -> Markup {
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
                        tr {
                            td.key { (text(key)) }
                            td.num { (format::count(s.count)) }
                            td.bars {
                                (share_bar(seen, total))
                                " " span.pct { (percent(seen, total)) }
                            }
                            @if with_streams { td.num { (format::count(s.streams)) } }
                            td.num { (duration_or_missing(s.count, s.avg_seconds)) }
                            td.num { (opt_duration(s.p50_seconds)) }
                            td.num.p99 { (opt_duration(s.p99_seconds)) }
                            td.num { (opt_duration(s.p999_seconds)) }
                            td.num { (opt_duration(s.max_seconds)) }
                            td.bars {
                                (latency_bars(s.p50_seconds, s.p99_seconds, scale))
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
