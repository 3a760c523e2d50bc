//! The pages show what their snapshot holds: a store's snapshot edited by hand, and the
//! merged snapshot of two stores that served requests.

use axum::routing::get;
use axum::Router;
use tower::ServiceExt;

use super::{
    find_request, render, render_request, render_request_not_found, render_requests,
    DashboardOptions, Formatting,
};
use crate::report::requests::RequestFilter;
use crate::{AppStatus, Outcome, RequestRecord, Snapshot, Stats};

const HOSTILE: &str = "<script>alert(1)</script>";
const HOSTILE_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

fn dashboard(snapshot: &Snapshot) -> String {
    render(
        snapshot,
        &DashboardOptions::new("stats"),
        &Formatting::new(),
    )
}

/// The HTML of the first `<section class="{class}">`.
fn section<'a>(page: &'a str, class: &str) -> &'a str {
    let start = page
        .find(&format!(r#"<section class="{class}">"#))
        .unwrap_or_else(|| panic!("no section {class}: {page}"));
    let end = page[start..].find("</section>").expect("section end");
    &page[start..start + end]
}

/// The maintenance form posting `on` (`"true"` or `"false"`), up to its end.
fn maintenance_form<'a>(page: &'a str, on: &str) -> &'a str {
    let start = page
        .find(&format!(r#"action="./stats/maintenance?on={on}""#))
        .expect("maintenance form");
    let end = page[start..].find("</form>").expect("form end");
    &page[start..start + end]
}

fn finished(id: &str, path: &str, end_time: f64) -> RequestRecord {
    RequestRecord {
        id: id.to_owned(),
        method: "GET".to_owned(),
        path: path.to_owned(),
        uri_set: "GET /r/{n}".to_owned(),
        start_time: end_time - 0.004,
        end_time: Some(end_time),
        processing_seconds: 0.004,
        status: Some(200),
        outcome: Outcome::Completed,
        ..RequestRecord::default()
    }
}

#[test]
fn the_dashboard_shows_what_its_snapshot_holds() {
    let mut snapshot = Stats::new().snapshot();
    let now = snapshot.generated_at;
    let page = dashboard(&snapshot);
    assert!(section(&page, "card recent").contains("No request recorded yet."));
    assert!(section(&page, "card events").contains("No event yet."));
    assert!(maintenance_form(&page, "false").contains(" disabled"));

    snapshot
        .http
        .recent_requests
        .push(finished("7", &format!("/r/{HOSTILE}"), now - 1.0));
    // The event stream is derived from the records: the request's end is an event of this
    // instance.
    snapshot.server.instance = format!("web-{HOSTILE}");
    snapshot.status.status = AppStatus::Maintenance;
    snapshot.status.maintenance = true;
    let page = dashboard(&snapshot);
    assert!(!page.contains(HOSTILE), "{page}");

    let recent = section(&page, "card recent");
    assert!(
        recent.contains(r#"<span class="count">1, newest first</span>"#),
        "{recent}"
    );
    assert!(
        recent.contains(&format!(
            r#"<a href="./stats/requests/7" title="Request 7">/r/{HOSTILE_ESCAPED}</a>"#
        )),
        "{recent}"
    );

    let events = section(&page, "card events");
    assert!(
        events.contains(&format!(
            r#"<td class="instance">web-{HOSTILE_ESCAPED}</td>"#
        )),
        "{events}"
    );
    assert!(
        events.contains(&format!(
            r#"<a href="./stats/requests/7">Finished GET /r/{HOSTILE_ESCAPED} 200 in 0.004 seconds</a>"#
        )),
        "{events}"
    );

    assert!(
        page.contains(
            r#"<span class="state off" title="As /status reports it">maintenance</span>"#
        ),
        "{page}"
    );
    assert!(maintenance_form(&page, "true").contains(" disabled"));
    assert!(!maintenance_form(&page, "false").contains(" disabled"));
}

#[test]
fn ids_that_cannot_stand_in_a_path_get_no_link() {
    let mut snapshot = Stats::new().snapshot();
    let now = snapshot.generated_at;
    for id in ["../../admin", "a/b", "a?b", HOSTILE] {
        snapshot
            .http
            .recent_requests
            .push(finished(id, "/plain", now));
    }
    for page in [
        dashboard(&snapshot),
        render_requests(&snapshot, "stats", &RequestFilter::default(), None, None),
    ] {
        assert!(
            !page.contains("requests/.") && !page.contains("requests/a"),
            "{page}"
        );
        assert!(!page.contains(HOSTILE), "{page}");
        assert!(page.contains("<td class=\"path\">/plain</td>"), "{page}");
    }
    let record = find_request(&snapshot, "a?b").expect("found by its id");
    let page = render_request(&snapshot, record, "stats");
    assert!(page.contains("<h1>Request a?b</h1>"), "{page}");
    assert!(!page.contains("format=json"), "{page}");
}

#[test]
fn a_request_is_found_in_every_list_of_the_snapshot() {
    let mut snapshot = Snapshot::default();
    let http = &mut snapshot.http;
    http.in_flight.push(RequestRecord {
        id: "1".to_owned(),
        ..RequestRecord::default()
    });
    http.open_streams.push(RequestRecord {
        id: "2".to_owned(),
        stream: true,
        ..RequestRecord::default()
    });
    http.recent_requests.push(finished("3", "/recent", 10.0));
    http.slow_requests.push(finished("4", "/slow", 10.0));
    for id in ["1", "2", "3", "4"] {
        let record = find_request(&snapshot, id).expect("found");
        assert_eq!(record.id, id);
    }
    for id in ["", "5", "03", "3 "] {
        assert_eq!(find_request(&snapshot, id), None, "{id:?}");
    }
}

/// `paths` through a store's layer, each body read to its end.
async fn serve(stats: &Stats, paths: &[&str]) {
    let app: Router = Router::new()
        .route("/r/{n}", get(|| async { "ok" }))
        .layer(stats.layer());
    for path in paths {
        let request = http::Request::get(*path)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    }
}

#[tokio::test]
async fn merged_request_pages_use_qualified_ids_and_show_instances() {
    let a = Stats::builder().instance("web-1").build().expect("valid");
    let b = Stats::builder()
        .instance(format!("web-{HOSTILE}"))
        .build()
        .expect("valid");
    serve(&a, &["/r/1", "/r/2"]).await;
    serve(&b, &["/r/3"]).await;
    let merged = Snapshot::merge([&a.snapshot(), &b.snapshot()]);
    let recent = &merged.http.recent_requests;
    assert_eq!(recent.len(), 3);

    let list = render_requests(
        &merged,
        "stats",
        &RequestFilter::default(),
        None,
        Some("instance=web-1&status=5xx"),
    );
    assert!(!list.contains(HOSTILE), "{list}");
    // The view asked for stays in the filter form and the JSON link.
    assert!(list.contains(r#"<input type="hidden" name="instance" value="web-1">"#));
    assert!(list.contains(r#"href="./requests?instance=web-1&amp;format=json""#));
    assert!(list.contains("<th>Instance</th>"), "{list}");
    assert!(
        list.contains(&format!(
            r#"<td class="instance">web-{HOSTILE_ESCAPED}</td>"#
        )),
        "{list}"
    );
    for record in recent {
        let (boot, instance) = if record.instance.as_deref() == Some("web-1") {
            (a.boot_id(), "web-1".to_owned())
        } else {
            (b.boot_id(), format!("web-{HOSTILE_ESCAPED}"))
        };
        let id = &record.id;
        assert!(id.starts_with(&format!("{boot}-")), "{id}");
        assert!(
            list.contains(&format!(
                r#"<a href="./requests/{id}" title="Request {id}">{}</a>"#,
                record.path
            )),
            "{id}: {list}"
        );

        let found = find_request(&merged, id).expect("found by its qualified id");
        assert_eq!(found, record);
        let page = render_request(&merged, found, "stats");
        assert!(!page.contains(HOSTILE), "{page}");
        assert!(page.contains(&format!("<h1>Request {id}</h1>")), "{page}");
        assert!(
            page.contains(&format!(r#"href="./../requests/{id}?format=json""#)),
            "{page}"
        );
        assert!(
            page.contains(&format!(
                r#"<th>Instance</th><td colspan="3">{instance}</td>"#
            )),
            "{page}"
        );
    }
    // The stores' own ids are not ids of the merged snapshot.
    assert_eq!(find_request(&merged, "1"), None);
    let missing = render_request_not_found(&merged, "stats");
    assert!(missing.contains("<h2>No such request</h2>"), "{missing}");

    // The dashboard links the merged recent requests and events to the same pages.
    let page = dashboard(&merged);
    assert!(!page.contains(HOSTILE), "{page}");
    for record in recent {
        assert!(
            page.contains(&format!(r#"href="./stats/requests/{}""#, record.id)),
            "{page}"
        );
    }
    let events = merged.events();
    let linked = events
        .iter()
        .filter_map(|e| e.request_id.as_deref())
        .collect::<Vec<_>>();
    assert_eq!(linked.len(), 6, "a start and an end per request");
    for id in linked {
        assert!(
            page.contains(&format!(r#"<a href="./stats/requests/{id}">"#)),
            "{id}: {page}"
        );
    }
}

#[test]
fn http_rules_apply_to_the_cluster_table() {
    let mut snapshot = Stats::new().snapshot();
    snapshot.cluster = Some(crate::snapshot::ClusterStatus {
        service: "shop".to_owned(),
        scope: "cluster".to_owned(),
        status: "ok".to_owned(),
        instances: vec![crate::snapshot::InstanceSummary {
            state: "live".to_owned(),
            requests_total: 7,
            requests_per_second: 0.5,
            requests_errored: 3,
            ..crate::snapshot::InstanceSummary::default()
        }],
        ..crate::snapshot::ClusterStatus::default()
    });
    let page = dashboard(&snapshot);
    let cluster = section(&page, "card cluster");
    assert!(
        cluster.contains(r#"<th class="num">Errors</th>"#),
        "{cluster}"
    );
    assert!(
        cluster.contains(r#"<td class="num">7</td><td class="num">0.50</td><td class="num">0</td><td class="num">3</td>"#),
        "{cluster}"
    );

    let formatting = Formatting::new()
        .hide("http", "requests_errored")
        .format_with("http", "requests_total", |v| format!("{v} in all"));
    let page = render(&snapshot, &DashboardOptions::new("stats"), &formatting);
    let cluster = section(&page, "card cluster");
    assert!(!cluster.contains("Errors"), "{cluster}");
    assert!(
        cluster.contains(r#"<td class="num">7 in all</td><td class="num">0.50</td><td class="num">0</td><td class="num">—</td>"#),
        "{cluster}"
    );
}
