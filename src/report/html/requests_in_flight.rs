//! The request lists of the `http` namespace: requests in flight oldest first, open streams,
//! and slow requests newest first.

use maud::{html, Markup};

use super::cells::{more_rows, status_class, status_text, text, MAX_ROWS};
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

fn in_flight_table(records: &[RequestRecord], table: &InFlightTable<'_>) -> Markup {
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

/// The requests in flight, oldest first.
pub(super) fn in_flight_view(records: &[RequestRecord]) -> Markup {
    in_flight_table(
        records,
        &InFlightTable {
            title: "In flight",
            order: ", oldest first",
            age: "Age",
            empty: "No request in flight.",
            show_read: true,
        },
    )
}

/// The open streams.
pub(super) fn open_streams_view(records: &[RequestRecord]) -> Markup {
    in_flight_table(
        records,
        &InFlightTable {
            title: "Open streams",
            order: "",
            age: "Open for",
            empty: "No open stream.",
            show_read: false,
        },
    )
}

/// The slow requests kept as evidence, newest first.
pub(super) fn slow_view(records: &[RequestRecord], now: f64) -> Markup {
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
