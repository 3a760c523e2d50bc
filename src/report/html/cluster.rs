//! The cluster section (feature `redis`): the publishing status, what the page shows (the
//! whole service, this instance or another one), and brim's per-instance breakdown.

use maud::{html, Markup};

use super::cells::text;
use super::options::DashboardOptions;
use crate::report::format;
use crate::snapshot::{ClusterStatus, InstanceSummary};

/// The cluster card, when the snapshot has a cluster.
pub(super) fn cluster_section(
    cluster: Option<&ClusterStatus>,
    options: &DashboardOptions,
    now: f64,
) -> Markup {
    let Some(cluster) = cluster else {
        return html! {};
    };
    let base = format!("./{}", options.base);
    let view_link = |query: &str| {
        if query.is_empty() {
            base.clone()
        } else {
            format!("{base}?{query}")
        }
    };
    html! {
        section.card.cluster {
            div.ns-head {
                h2 { "Cluster " (text(&cluster.service)) }
                @if cluster.status == "ok" {
                    span.state.on title="Publishing to Redis" { "ok" }
                } @else {
                    span.state.off title="Publishing to Redis" { "down" }
                }
            }
            p.cluster-status {
                (cluster.publishes) " publishes, " (cluster.publish_failures) " failed or skipped, every "
                (format::duration(cluster.publish_interval_seconds)) "."
                @if let Some(at) = cluster.last_success {
                    " Last success " (format::ago((now - at).max(0.0))) "."
                }
                @if cluster.status != "ok" {
                    @if let Some(error) = &cluster.last_error {
                        " Last error: " span.error { (text(error)) }
                    }
                }
            }
            nav.scope aria-label="What this page shows" {
                "Showing: "
                @match cluster.scope.as_str() {
                    "cluster" => {
                        strong { "every instance, merged" }
                        " · " a href=(view_link("scope=local")) { "this instance only" }
                    }
                    "local" => {
                        a href=(view_link("")) { "every instance, merged" }
                        " · " strong { "this instance only" }
                    }
                    _ => {
                        a href=(view_link("")) { "every instance, merged" }
                        " · " a href=(view_link("scope=local")) { "this instance only" }
                        " · " strong { "one instance" }
                    }
                }
            }
            table.instances {
                thead {
                    tr {
                        th { "Instance" } th { "Boot id" } th { "State" } th { "Last seen" }
                        th { "Version" } th { "Started" } th.num { "Requests" } th.num { "Req/s" }
                        th.num { "In flight" } th.num { "Errors" } th.num { "p99" }
                        th.num { "Clock offset" }
                    }
                }
                tbody {
                    @for i in &cluster.instances {
                        (instance_row(i, &view_link, now))
                    }
                }
            }
        }
    }
}

fn instance_row(i: &InstanceSummary, view_link: &dyn Fn(&str) -> String, now: f64) -> Markup {
    let query =
        serde_urlencoded::to_string([("instance", i.server.boot_id.as_str())]).unwrap_or_default();
    html! {
        tr class=(format!("state-{}", state_class(&i.state))) {
            td.instance {
                @if i.server.instance.is_empty() {
                    "?"
                } @else {
                    a href=(view_link(&query)) { (text(&i.server.instance)) }
                }
                @if i.local { " " span.note { "(this one)" } }
            }
            td.boot { code { (text(&i.server.boot_id)) } }
            td.state title=[i.error.as_deref().map(text)] { (text(&i.state)) }
            td { @if let Some(at) = i.last_seen { (format::ago((now - at).max(0.0))) } @else { "—" } }
            td { (text(&i.server.version)) }
            td { @if i.server.start_time > 0.0 { (format::iso_time(i.server.start_time)) } @else { "—" } }
            td.num { (i.requests_total) }
            td.num { (format!("{:.2}", i.requests_per_second)) }
            td.num { (i.requests_in_flight) }
            td.num { (i.requests_errored) }
            td.num { @if let Some(p99) = i.p99_seconds { (format::duration(p99)) } @else { "—" } }
            td.num { @if let Some(o) = i.clock_offset_seconds { (format!("{:+.3} s", o)) } @else { "—" } }
        }
    }
}

/// A CSS class for a state: one of a known few, whatever the data says.
fn state_class(state: &str) -> &'static str {
    match state {
        "live" => "live",
        "stale" => "stale",
        "stopped" => "stopped",
        _ => "incompatible",
    }
}
