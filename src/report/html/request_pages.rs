//! The pages of the recent requests, from a snapshot: the list (`{prefix}/requests`), one
//! request with every field and its timeline (`{prefix}/requests/{id}`), and the page for an
//! unknown id.

use maud::{html, Markup};

use super::calls::{call_totals_table, depths};
use super::cells::{
    more_rows, outcome_class, plural, seconds, status_class, status_text, status_tone, text,
    MAX_ROWS,
};
use super::options::Rules;
use super::page::{link, render_page, request_link, Page, PageContext};
use super::svg::waterfall;
use crate::report::format;
use crate::report::requests::RequestFilter;
use crate::{RequestRecord, Snapshot};

/// Most rows of the recent requests page.
const LIST_ROWS: usize = 1000;

/// The request with this id in `snapshot`: in flight, an open stream, or finished and still
/// among the recent or the slow requests. Ids are compared as strings, so the qualified ids
/// of a merged snapshot (`<boot id>-<n>`) are found as well.
pub(crate) fn find_request<'a>(snapshot: &'a Snapshot, id: &str) -> Option<&'a RequestRecord> {
    let http = &snapshot.http;
    http.in_flight
        .iter()
        .chain(&http.open_streams)
        .chain(&http.recent_requests)
        .chain(&http.slow_requests)
        .find(|record| record.id == id)
}

/// The `{prefix}/requests` page under `base`, the last segment of the router prefix: the
/// snapshot's finished requests that pass `filter` (see [`RequestFilter::select`]), newest
/// first, each linking to its page, under a form to change the filters. `error` is the reason
/// the filters given could not be used: the page then says so and lists nothing. `query` is
/// the page's query string: the view of a cluster it asks for (`scope=local`, `instance=NAME`)
/// is kept in the form and the JSON link.
pub(crate) fn render_requests(
    snapshot: &Snapshot,
    base: &str,
    filter: &RequestFilter,
    error: Option<&str>,
    query: Option<&str>,
) -> String {
    const LEVEL: usize = 1;
    let context = PageContext::new(base, snapshot);
    let records = if error.is_some() {
        Vec::new()
    } else {
        filter.select(snapshot)
    };
    let view = super::DashboardOptions::new(base).with_query(query).view;
    let here = link(base, LEVEL, "requests");
    let mut params: Vec<String> = view
        .iter()
        .filter_map(|pair| serde_urlencoded::to_string([pair]).ok())
        .collect();
    params.extend(
        serde_urlencoded::to_string(filter)
            .ok()
            .filter(|q| !q.is_empty()),
    );
    params.push("format=json".to_owned());
    let json = format!("{here}?{}", params.join("&"));
    let status = filter.status.map(|s| s.to_string());
    let min_seconds = filter.min_seconds.map(|s| s.to_string());
    let nav = html! {
        a href=(link(base, LEVEL, "")) { "Dashboard" }
        a href=(link(base, LEVEL, "events")) { "Event stream" }
        a href=(json) { "JSON" }
    };
    let body = html! {
        section.card {
            div.section-head {
                h2 { "Finished requests" }
                span.count {
                    (format::count(records.len() as u64))
                    @if !filter.is_empty() { " matching" }
                    ", newest first"
                }
            }
            form.filters method="get" action=(here) {
                label { "URI set " input type="text" name="uri_set" value=(filter.uri_set.as_deref().unwrap_or("")) placeholder="GET /users/{id}"; }
                label { "Status " input type="text" name="status" value=(status.as_deref().unwrap_or("")) placeholder="404 or 5xx" size="6"; }
                label { "At least " input type="text" name="min_seconds" value=(min_seconds.as_deref().unwrap_or("")) placeholder="0.5" size="6"; " s" }
                label { "Call " input type="text" name="call" value=(filter.call.as_deref().unwrap_or("")) placeholder="event name"; }
                @if let Some((name, value)) = &view {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" { "Filter" }
                @if !filter.is_empty() || error.is_some() { " " a href=(here) { "Clear" } }
            }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            } @else if records.is_empty() {
                p.empty {
                    @if filter.is_empty() { "No request recorded yet." } @else { "No recent request matches." }
                }
            } @else {
                (requests_table(&records[..records.len().min(LIST_ROWS)], base, LEVEL, context.now, Rules::default()))
                (more_rows(LIST_ROWS, records.len()))
            }
        }
    };
    subpage("Recent requests", &context, LEVEL, &nav, body)
}

/// The `{prefix}/requests/{id}` page under `base` for `record`, one of the snapshot's
/// records (see [`find_request`]): every field of the record, and its timeline as a
/// waterfall and a table.
pub(crate) fn render_request(snapshot: &Snapshot, record: &RequestRecord, base: &str) -> String {
    const LEVEL: usize = 2;
    let context = PageContext::new(base, snapshot);
    let title = format!("Request {}", text(&record.id));
    let nav = html! {
        a href=(link(base, LEVEL, "requests")) { "Recent requests" }
        a href=(link(base, LEVEL, "")) { "Dashboard" }
        @if let Some(href) = request_link(base, LEVEL, &record.id) {
            a href=(format!("{href}?format=json")) { "JSON" }
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
                (call_totals_table(record))
            }
        }
    };
    subpage(&title, &context, LEVEL, &nav, body)
}

/// The page under `base` for a request id that is not (or no longer) in the snapshot.
pub(crate) fn render_request_not_found(snapshot: &Snapshot, base: &str) -> String {
    const LEVEL: usize = 2;
    let context = PageContext::new(base, snapshot);
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
    subpage("Request not found", &context, LEVEL, &nav, body)
}

/// A page other than the dashboard: the shell with a navigation bar and a body. `level` is
/// the page's level (see [`link`]).
fn subpage(
    title: &str,
    context: &PageContext<'_>,
    level: usize,
    nav: &Markup,
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

/// Finished requests, newest first, each path linking to the request's page. `level` is the
/// page's level (see [`link`]); `c` are the rules of the columns (the dashboard's rules of
/// `recent_requests`). The instance column appears when any record has one (the records of a
/// merged snapshot).
pub(super) fn requests_table<R: std::borrow::Borrow<RequestRecord>>(
    records: &[R],
    base: &str,
    level: usize,
    now: f64,
    c: Rules<'_>,
) -> Markup {
    let with_instance =
        c.shown("instance") && records.iter().any(|r| r.borrow().instance.is_some());
    let bytes = |n: u64| format::bytes(n as f64);
    html! {
        table.records.requests {
            thead { tr {
                @if c.shown("end_time") { th { "Finished" } }
                @if c.shown("processing_seconds") { th.num { "Took" } }
                @if with_instance { th { "Instance" } }
                @if c.shown("method") { th { "Method" } }
                @if c.shown("path") { th { "Path" } }
                @if c.shown("uri_set") { th { "URI set" } }
                @if c.shown("status") { th.num { "Status" } }
                @if c.shown("outcome") { th { "Outcome" } }
                @if c.shown("bytes_read") { th.num { "Read" } }
                @if c.shown("bytes_written") { th.num { "Written" } }
                @if c.shown("events") { th.num { "Events" } }
            } }
            tbody {
                @for r in records.iter().map(std::borrow::Borrow::borrow) {
                    @let end = r.end_time.unwrap_or(r.start_time);
                    tr {
                        @if let Some(v) = c.show("end_time", end, |end| format::ago(now - end)) {
                            td.when {
                                time datetime=(format::iso_time(end)) title=(format::iso_time(end)) { (v) }
                            }
                        }
                        @if let Some(v) = c.show("processing_seconds", r.processing_seconds, format::duration) {
                            td.num { (v) }
                        }
                        @if with_instance {
                            td.instance { (c.format("instance", r.instance.as_deref(), |i| text(i.unwrap_or("")))) }
                        }
                        @if let Some(v) = c.show("method", r.method.as_str(), text) { td { (v) } }
                        @if let Some(v) = c.show("path", r.path.as_str(), text) {
                            td.path {
                                @match request_link(base, level, &r.id) {
                                    Some(href) => a href=(href)
                                        title=(format!("Request {}", text(&r.id))) { (v) },
                                    None => (v),
                                }
                            }
                        }
                        @if let Some(v) = c.show("uri_set", r.uri_set.as_str(), text) { td.key { (v) } }
                        @if let Some(v) = c.show("status", r.status, status_text) {
                            td class=(status_class(r.status)) { (v) }
                        }
                        @if let Some(v) = c.show("outcome", r.outcome.as_str(), str::to_owned) {
                            td class=(outcome_class(r.outcome)) { (v) }
                        }
                        @if let Some(v) = c.show("bytes_read", r.bytes_read, bytes) { td.num { (v) } }
                        @if let Some(v) = c.show("bytes_written", r.bytes_written, bytes) { td.num { (v) } }
                        @if c.shown("events") { td.num { (events_count(r)) } }
                    }
                }
            }
        }
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
                @if let Some(trace_id) = &r.trace_id {
                    tr { th { "Trace id" } td.key colspan="3" { (text(trace_id)) } }
                }
                @if let Some(instance) = &r.instance {
                    tr { th { "Instance" } td colspan="3" { (text(instance)) } }
                }
            }
        }
    }
}

/// The timeline as a table: label, offset, duration and data of each event, in order.
fn timeline_table(record: &RequestRecord) -> Markup {
    let depths = depths(record);
    html! {
        table.records.timeline {
            thead { tr {
                th.num { "#" } th { "Event" } th { "Source" } th.num { "Offset" } th.num { "Duration" } th { "Data" }
            } }
            tbody {
                @for (n, e) in record.events.iter().take(MAX_ROWS).enumerate() {
                    @let depth = depths.get(n).copied().unwrap_or(0);
                    tr {
                        td.num { (n + 1) }
                        td class=(format!("key depth-{}", depth.min(4))) {
                            @if let Some(parent) = e.parent.filter(|_| depth > 0) {
                                span.note title=(format!("inside #{}", parent + 1)) { "↳ " }
                            }
                            (text(&e.label))
                            @if let Some(target) = &e.target {
                                " " span.note { (text(target)) }
                            }
                        }
                        td.text { (text(&e.source)) }
                        td.num { "+" (format::duration(seconds(e.offset_seconds))) }
                        td.num {
                            @if e.timed || e.duration_seconds > 0.0 {
                                (format::duration(e.duration_seconds))
                                @if e.open {
                                    " " span.note title="The span had not closed yet" { "open" }
                                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_pages_show_the_version_they_are_given() {
        let mut snapshot = Snapshot::default();
        snapshot.server.version = "tower-stats 9.9.9".to_owned();
        snapshot.server.instance = "web-1".to_owned();
        for page in [
            render_requests(&snapshot, "stats", &RequestFilter::default(), None, None),
            render_request(&snapshot, &RequestRecord::default(), "stats"),
            render_request_not_found(&snapshot, "stats"),
        ] {
            assert!(page.contains("<span>tower-stats 9.9.9</span>"), "{page}");
        }
    }
}
