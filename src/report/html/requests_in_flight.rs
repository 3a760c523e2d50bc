//! The request lists of the `http` namespace: requests in flight oldest first, open streams,
//! and slow requests newest first.

use maud::{html, Markup};

use super::cells::{more_rows, status_class, status_text, text, MAX_ROWS};
use super::options::Rules;
use super::page::request_link;
use crate::report::format;
use crate::RequestRecord;

/// A table of requests still running: requests in flight, or open streams (which have no request
/// bytes to show). The client column appears when any record has one.
struct InFlightTable<'a> {
    title: &'a str,
    order: &'a str,
    age: &'a str,
    empty: &'a str,
    show_read: bool,
}

fn bytes(n: u64) -> String {
    format::bytes(n as f64)
}

/// The client address of a record, or nothing.
fn client(client: Option<&str>) -> String {
    text(client.unwrap_or(""))
}

fn in_flight_table(records: &[RequestRecord], table: &InFlightTable<'_>, c: Rules<'_>) -> Markup {
    let with_client = c.shown("client") && records.iter().any(|r| r.client.is_some());
    let show_read = table.show_read && c.shown("bytes_read");
    html! {
        h3 { (table.title) " " span.count { "(" (records.len()) (table.order) ")" } }
        @if records.is_empty() {
            p.empty { (table.empty) }
        } @else {
            table.records {
                thead { tr {
                    @if c.shown("processing_seconds") { th.num { (table.age) } }
                    @if c.shown("method") { th { "Method" } }
                    @if c.shown("path") { th { "Path" } }
                    @if c.shown("uri_set") { th { "URI set" } }
                    @if c.shown("status") { th.num { "Status" } }
                    @if show_read { th.num { "Read" } }
                    @if c.shown("bytes_written") { th.num { "Written" } }
                    @if with_client { th { "Client" } }
                } }
                tbody {
                    @for r in records.iter().take(MAX_ROWS) {
                        tr {
                            @if let Some(v) = c.show("processing_seconds", r.processing_seconds, format::duration) {
                                td.num { (v) }
                            }
                            @if let Some(v) = c.show("method", r.method.as_str(), text) { td { (v) } }
                            @if let Some(v) = c.show("path", r.path.as_str(), text) { td.path { (v) } }
                            @if let Some(v) = c.show("uri_set", r.uri_set.as_str(), text) { td.key { (v) } }
                            @if let Some(v) = c.show("status", r.status, status_text) {
                                td class=(status_class(r.status)) { (v) }
                            }
                            @if show_read { td.num { (c.format("bytes_read", r.bytes_read, bytes)) } }
                            @if let Some(v) = c.show("bytes_written", r.bytes_written, bytes) { td.num { (v) } }
                            @if with_client { td { (c.format("client", r.client.as_deref(), client)) } }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, records.len()))
        }
    }
}

/// The requests in flight, oldest first, with the rules of the `in_flight` columns.
pub(super) fn in_flight_view(records: &[RequestRecord], columns: Rules<'_>) -> Markup {
    in_flight_table(
        records,
        &InFlightTable {
            title: "In flight",
            order: ", oldest first",
            age: "Age",
            empty: "No request in flight.",
            show_read: true,
        },
        columns,
    )
}

/// The open streams, with the rules of the `open_streams` columns.
pub(super) fn open_streams_view(records: &[RequestRecord], columns: Rules<'_>) -> Markup {
    in_flight_table(
        records,
        &InFlightTable {
            title: "Open streams",
            order: "",
            age: "Open for",
            empty: "No open stream.",
            show_read: false,
        },
        columns,
    )
}

/// The slow requests kept as evidence, newest first, with the rules of the `slow_requests`
/// columns.
pub(super) fn slow_view(records: &[RequestRecord], base: &str, now: f64, c: Rules<'_>) -> Markup {
    html! {
        h3 { "Slow requests " span.count { "(" (records.len()) ", newest first)" } }
        @if records.is_empty() {
            p.empty { "No slow request." }
        } @else {
            table.records {
                thead { tr {
                    @if c.shown("end_time") { th { "Finished" } }
                    @if c.shown("processing_seconds") { th.num { "Took" } }
                    @if c.shown("method") { th { "Method" } }
                    @if c.shown("path") { th { "Path" } }
                    @if c.shown("uri_set") { th { "URI set" } }
                    @if c.shown("status") { th.num { "Status" } }
                    @if c.shown("outcome") { th { "Outcome" } }
                    @if c.shown("bytes_read") { th.num { "Read" } }
                    @if c.shown("bytes_written") { th.num { "Written" } }
                } }
                tbody {
                    @for r in records.iter().rev().take(MAX_ROWS) {
                        @let end = r.end_time.unwrap_or(r.start_time);
                        tr {
                            @if let Some(v) = c.show("end_time", end, |end| format::ago(now - end)) {
                                td {
                                    time datetime=(format::iso_time(end)) title=(format::iso_time(end)) { (v) }
                                }
                            }
                            @if let Some(v) = c.show("processing_seconds", r.processing_seconds, format::duration) {
                                td.num { (v) }
                            }
                            @if let Some(v) = c.show("method", r.method.as_str(), text) { td { (v) } }
                            @if let Some(v) = c.show("path", r.path.as_str(), text) {
                                td.path {
                                    @match request_link(base, 0, &r.id) {
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
                            @if let Some(v) = c.show("outcome", r.outcome.as_str(), str::to_owned) { td { (v) } }
                            @if let Some(v) = c.show("bytes_read", r.bytes_read, bytes) { td.num { (v) } }
                            @if let Some(v) = c.show("bytes_written", r.bytes_written, bytes) { td.num { (v) } }
                        }
                    }
                }
            }
            (more_rows(MAX_ROWS, records.len()))
        }
    }
}
