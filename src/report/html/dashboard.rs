//! The dashboard: its header (status and refresh links), the sections in order, the footer,
//! and the namespace heading with its controls that every namespace section starts with.

use maud::{html, Markup};

use super::activity::{events_section, recent_section, status_box};
use super::application::app_section;
use super::calls::calls_section;
use super::cells::text;
use super::cluster::cluster_section;
use super::http::http_section;
use super::options::{Controls, DashboardOptions, Formatting};
use super::page::{render_page, Page, PageContext};
use crate::report::format;
use crate::Snapshot;

/// Renders the page from a snapshot: its header with the application status (and the
/// maintenance switch, with [`Controls::Forms`]), the `http` namespace, the latest recent
/// requests and events, and every application namespace.
///
/// The router serves this page at `{prefix}`, from a snapshot taken for the request.
///
/// # Example
///
/// ```
/// use tower_stats::report::html::{render, Formatting, DashboardOptions};
///
/// let stats = tower_stats::Stats::new();
/// stats.log_event("deployed");
/// let page = render(&stats.snapshot(), &DashboardOptions::new("stats"), &Formatting::new());
/// assert!(page.starts_with("<!DOCTYPE html>"));
/// assert!(page.contains("deployed"));
/// assert!(!page.contains("<script"));
/// ```
#[must_use]
pub fn render(snapshot: &Snapshot, options: &DashboardOptions, formatting: &Formatting) -> String {
    let context = PageContext::new(&options.base, snapshot);
    let now = context.now;
    let options = &DashboardOptions {
        cluster_controls: snapshot
            .cluster
            .as_ref()
            .is_some_and(|c| c.scope == "cluster"),
        ..options.clone()
    };
    let header_side = html! {
        div.side {
            (status_box(&snapshot.status, options))
            (refresh_nav(options))
        }
    };
    let http = formatting.namespace("http");
    let main = html! {
        (cluster_section(snapshot.cluster.as_ref(), options, now, http))
        (http_section(snapshot, options, http))
        (calls_section(&snapshot.http, options))
        (recent_section(&snapshot.http.recent_requests, options, now, http))
        (events_section(&snapshot.events(), options))
        @for (name, ns) in &snapshot.namespaces {
            (app_section(name, ns.enabled, &ns.values, options, formatting, now))
        }
    };
    let footer = html! {
        p {
            "Values as of " (format::iso_time(now))
            ". The same data as JSON: "
            a href=(format!("./{}/data", options.base)) { (options.base) "/data" }
            "."
        }
    };
    render_page(
        &context,
        &Page {
            title: "Statistics",
            level: 0,
            refresh: options.refresh,
            uptime_seconds: Some(snapshot.server.uptime_seconds),
            header_side,
            main,
            footer: Some(footer),
        },
    )
}

/// Refresh intervals offered as links.
const REFRESH_CHOICES: [u32; 3] = [5, 30, 60];

/// The auto-refresh links, or how often the page refreshes with a link to stop.
fn refresh_nav(options: &DashboardOptions) -> Markup {
    html! {
        nav.refresh aria-label="Auto-refresh" {
            @match options.refresh {
                Some(n) => {
                    span.on { "Refreshing every " (n) " s" }
                    " · " a href=(options.href(options.sort, None)) { "Stop" }
                }
                None => {
                    span { "Auto-refresh:" }
                    @for n in REFRESH_CHOICES {
                        " " a href=(options.href(options.sort, Some(n))) { (n) " s" }
                    }
                }
            }
        }
    }
}

/// The namespace heading with its state and controls.
pub(super) fn namespace_head(name: &str, enabled: bool, options: &DashboardOptions) -> Markup {
    html! {
        div.ns-head {
            h2 { (text(name)) }
            @if enabled {
                span.state.on { "recording" }
            } @else {
                span.state.off { "paused" }
            }
            @match options.controls {
                Controls::Forms if options.cluster_controls => {
                    div.controls title="These buttons act on every instance of the cluster" {
                        (control_form(options, "pause", "Pause all", name, false))
                        (control_form(options, "resume", "Resume all", name, false))
                        (control_form(options, "reset", "Reset all", name, false))
                    }
                }
                Controls::Forms => {
                    div.controls {
                        (control_form(options, "pause", "Pause", name, !enabled))
                        (control_form(options, "resume", "Resume", name, enabled))
                        (control_form(options, "reset", "Reset", name, false))
                    }
                }
                Controls::TokenRequired => {
                    span.note { "Pause, resume and reset need a bearer token." }
                }
                Controls::None => {}
            }
        }
    }
}

/// A button posting `namespace` to the control route `action`.
fn control_form(
    options: &DashboardOptions,
    action: &str,
    label: &str,
    namespace: &str,
    disabled: bool,
) -> Markup {
    html! {
        form method="post" action=(format!("./{}/{action}", options.base)) {
            input type="hidden" name="namespace" value=(namespace);
            @if options.cluster_controls {
                input type="hidden" name="scope" value="cluster";
            }
            button type="submit" class=(action) disabled[disabled] { (label) }
        }
    }
}
