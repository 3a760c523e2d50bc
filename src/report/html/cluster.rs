//! The cluster section (feature `redis`): the publishing status, what the page shows (the
//! whole service, this instance or another one), and brim's per-instance breakdown.

use maud::{html, Markup};

use super::cells::text;
use super::options::{DashboardOptions, Rules};
use crate::report::format;
use crate::snapshot::{ClusterStatus, InstanceSummary};

/// The cluster card, when the snapshot has a cluster. `rules` are the `http` namespace's: the
/// instance table's columns of `http` values follow them.
pub(super) fn cluster_section(
    cluster: Option<&ClusterStatus>,
    options: &DashboardOptions,
    now: f64,
    rules: Rules<'_>,
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
                        th { "Version" } th { "Started" }
                        @if rules.shown("requests_total") { th.num { "Requests" } }
                        @if rules.shown("requests_per_second") { th.num { "Req/s" } }
                        @if rules.shown("requests_in_flight") { th.num { "In flight" } }
                        @if rules.shown("requests_errored") { th.num { "Errors" } }
                        @if rules.shown("p99_seconds") { th.num { "p99" } }
                        th.num { "Clock offset" }
                    }
                }
                tbody {
                    @for i in &cluster.instances {
                        (instance_row(i, &view_link, now, rules))
                    }
                }
            }
        }
    }
}

fn instance_row(
    i: &InstanceSummary,
    view_link: &dyn Fn(&str) -> String,
    now: f64,
    rules: Rules<'_>,
) -> Markup {
    let count = |n: u64| n.to_string();
    let rate = |r: f64| format!("{r:.2}");
    let p99 = |p: Option<f64>| p.map_or_else(|| "—".to_owned(), format::duration);
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
            @if let Some(v) = rules.show("requests_total", i.requests_total, count) { td.num { (v) } }
            @if let Some(v) = rules.show("requests_per_second", i.requests_per_second, rate) { td.num { (v) } }
            @if let Some(v) = rules.show("requests_in_flight", i.requests_in_flight, count) { td.num { (v) } }
            @if let Some(v) = rules.show("requests_errored", i.requests_errored, count) { td.num { (v) } }
            @if let Some(v) = rules.show("p99_seconds", i.p99_seconds, p99) { td.num { (v) } }
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
