//! The dashboard's view of activity: the application status with the maintenance switch,
//! the latest recent requests and the latest events of the event stream.

use maud::{html, Markup};

use super::cells::text;
use super::options::{Controls, DashboardOptions, Rules};
use super::page::{link, request_link};
use super::request_pages::requests_table;
use crate::report::format;
use crate::{AppStatus, RequestRecord, StatusSnapshot, StreamEvent};

/// Recent requests shown on the dashboard; the list page has them all.
const RECENT_ON_PAGE: usize = 10;

/// Latest events shown on the dashboard; `{prefix}/events` has them all.
const EVENTS_ON_PAGE: usize = 20;

/// The application status and the maintenance switch, in the page header.
pub(super) fn status_box(status: &StatusSnapshot, options: &DashboardOptions) -> Markup {
    let class = match status.status {
        AppStatus::Ok => "state on",
        AppStatus::Maintenance => "state off",
        _ => "state bad",
    };
    html! {
        div.status-box {
            span.label { "Status" }
            span class=(class) title="As /status reports it" { (text(status.status.as_str())) }
            @if options.controls == Controls::Forms {
                span.label.switch { "Maintenance" }
                (maintenance_form(options, true, status.maintenance))
                (maintenance_form(options, false, !status.maintenance))
            }
        }
    }
}

/// A button turning maintenance on or off. The value is in the action's query too, so the
/// form works whatever else is posted with it; the form field wins.
fn maintenance_form(options: &DashboardOptions, on: bool, disabled: bool) -> Markup {
    let (value, label) = if on { ("true", "On") } else { ("false", "Off") };
    html! {
        form method="post" action=(format!("./{}/maintenance?on={value}", options.base)) {
            input type="hidden" name="on" value=(value);
            button type="submit" class=(if on { "maintenance-on" } else { "maintenance-off" })
                disabled[disabled]
                title=(if on { "Answer 503 at /status" } else { "Answer normally at /status" }) {
                (label)
            }
        }
    }
}

/// "latest 10 of 22, newest first", or "7, newest first" when all are shown.
fn newest_first_caption(shown: usize, total: usize) -> Markup {
    html! {
        span.count {
            @if total > shown {
                "latest " (shown) " of " (format::count(total as u64)) ", newest first"
            } @else {
                (total) ", newest first"
            }
        }
    }
}

/// The latest recent requests on the dashboard, linking to the list and the detail pages.
/// `rules` are the `http` namespace's: `recent_requests` hides the section, and its columns
/// (`recent_requests.path`, …) the table's.
pub(super) fn recent_section(
    records: &[RequestRecord],
    options: &DashboardOptions,
    now: f64,
    rules: Rules<'_>,
) -> Markup {
    if !rules.shown("recent_requests") {
        return html! {};
    }
    let shown = records.len().min(RECENT_ON_PAGE);
    html! {
        section.card.recent {
            div.section-head {
                h2 { "Recent requests" }
                (newest_first_caption(shown, records.len()))
                a.more href=(link(&options.base, 0, "requests")) { "All recent requests" }
            }
            @if records.is_empty() {
                p.empty { "No request recorded yet." }
            } @else {
                (requests_table(&records[..shown], &options.base, 0, now, rules.table("recent_requests")))
            }
        }
    }
}

/// The latest events of the event stream on the dashboard.
pub(super) fn events_section(events: &[StreamEvent], options: &DashboardOptions) -> Markup {
    let shown = events.len().min(EVENTS_ON_PAGE);
    html! {
        section.card.events {
            div.section-head {
                h2 { "Latest events" }
                (newest_first_caption(shown, events.len()))
                a.more href=(link(&options.base, 0, "events")) { "Event stream" }
                a.more href=(format!("{}?format=json", link(&options.base, 0, "events"))) { "as JSON" }
            }
            @if events.is_empty() {
                p.empty { "No event yet." }
            } @else {
                table.records.event-log {
                    thead { tr {
                        th { "When" } th { "Instance" } th { "Event" }
                    } }
                    tbody {
                        @for event in &events[..shown] {
                            tr class=(event_class(&event.kind)) {
                                td.when {
                                    time datetime=(format::iso_time(event.time)) title=(format::iso_time(event.time)) {
                                        (format::ago(event.age_seconds))
                                    }
                                }
                                td.instance { (text(&event.instance)) }
                                td.message {
                                    @match event.request_id.as_deref().and_then(|id| request_link(&options.base, 0, id)) {
                                        Some(href) => a href=(href) { (text(&event.message)) },
                                        None => (text(&event.message)),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The class of an event's row: `bad` for errors and panics, `warn` for aborted requests,
/// `app` for application events.
fn event_class(kind: &str) -> &'static str {
    match kind {
        "request_error" | "request_panicked" => "bad",
        "request_aborted" => "warn",
        "application" => "app",
        _ => "req",
    }
}
