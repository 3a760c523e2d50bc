//! The calls the requests made (appstats' "RPC Stats" and "Path Stats"): one table by call
//! name, one by URI set; and a request's own totals by call name ("RPC totals").

use maud::{html, Markup};

use super::cells::{more_rows, opt_duration, text, MAX_ROWS};
use super::options::DashboardOptions;
use super::page::link;
use crate::report::format;
use crate::{CallSnapshot, HttpSnapshot, RequestRecord};

/// The calls section of the dashboard, when any call was counted: calls by name, most
/// frequent first, then which calls each URI set makes.
pub(super) fn calls_section(http: &HttpSnapshot, options: &DashboardOptions) -> Markup {
    if http.calls.is_empty() {
        return html! {};
    }
    let mut calls: Vec<(&String, &CallSnapshot)> = http.calls.iter().collect();
    calls.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
    // URI set → its calls, by the calls' counts.
    let mut paths: Vec<(&str, &str, u64, u64, f64)> = http
        .calls
        .iter()
        .flat_map(|(name, call)| {
            call.uri_sets.iter().map(move |(set, s)| {
                (
                    set.as_str(),
                    name.as_str(),
                    s.count,
                    s.requests,
                    s.per_request,
                )
            })
        })
        .collect();
    paths.sort_by(|a, b| {
        a.0.cmp(b.0)
            .then_with(|| b.2.cmp(&a.2))
            .then_with(|| a.1.cmp(b.1))
    });
    html! {
        section.card.calls {
            div.section-head {
                h2 { "Calls" }
                span.count { (format::count(calls.len() as u64)) " names, most frequent first" }
            }
            p.note {
                "The timed entries of finished requests' timelines: spans, events carrying their "
                "elapsed time, timed custom events. Per request: among the requests that made the call."
            }
            table.records.calls {
                thead { tr {
                    th { "Call" } th.num { "Count" } th.num { "Requests" } th.num { "Per request" }
                    th.num { "Total" } th.num { "Avg" } th.num { "p50" } th.num { "p99" }
                } }
                tbody {
                    @for (name, call) in calls.iter().take(MAX_ROWS) {
                        tr {
                            td.key {
                                a href=(requests_href(options, &[("call", name)])) title="Its recent requests" { (text(name)) }
                            }
                            td.num { (format::count(call.count)) }
                            td.num { (format::count(call.requests)) }
                            td.num { (format!("{:.2}", call.per_request)) }
                            td.num { (format::duration(call.total_seconds)) }
                            td.num { (format::duration(call.avg_seconds)) }
                            td.num { (opt_duration(call.p50_seconds)) }
                            td.num { (opt_duration(call.p99_seconds)) }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, calls.len()))
            h3 { "Calls by URI set" }
            table.records.call-paths {
                thead { tr {
                    th { "URI set" } th { "Call" } th.num { "Count" } th.num { "Requests" }
                    th.num { "Per request" }
                } }
                tbody {
                    @for (set, name, count, requests, per_request) in paths.iter().take(MAX_ROWS) {
                        tr {
                            td.key { (text(set)) }
                            td.key {
                                a href=(requests_href(options, &[("uri_set", set), ("call", name)])) title="Its recent requests" { (text(name)) }
                            }
                            td.num { (format::count(*count)) }
                            td.num { (format::count(*requests)) }
                            td.num { (format!("{per_request:.2}")) }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, paths.len()))
        }
    }
}

/// The link to the recent requests matching `params`, in the scope or instance the dashboard
/// shows.
fn requests_href(options: &DashboardOptions, params: &[(&str, &str)]) -> String {
    let mut params = params.to_vec();
    if let Some((name, value)) = &options.view {
        params.push((name.as_str(), value.as_str()));
    }
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    format!("{}?{query}", link(&options.base, 0, "requests"))
}

/// A request's timed entries totalled by call name, most frequent first.
pub(super) fn call_totals_table(record: &RequestRecord) -> Markup {
    if record.call_totals.is_empty() {
        return html! {};
    }
    html! {
        h3 { "Call totals" }
        table.records.call-totals {
            thead { tr { th { "Call" } th.num { "Count" } th.num { "Total" } } }
            tbody {
                @for total in record.call_totals.iter().take(MAX_ROWS) {
                    tr {
                        td.key { (text(&total.name)) }
                        td.num { (format::count(total.count)) }
                        td.num { (format::duration(total.total_seconds)) }
                    }
                }
            }
        }
        (more_rows(MAX_ROWS, record.call_totals.len()))
    }
}

/// How deep each timeline entry nests: 0 for an entry without a parent, else one more than
/// its parent (a parent always comes earlier; anything else counts as no parent).
pub(super) fn depths(record: &RequestRecord) -> Vec<usize> {
    let mut depths: Vec<usize> = Vec::with_capacity(record.events.len());
    for (i, e) in record.events.iter().enumerate() {
        let depth = e
            .parent
            .filter(|p| *p < i)
            .and_then(|p| depths.get(p))
            .map_or(0, |d| (d + 1).min(16));
        depths.push(depth);
    }
    depths
}
