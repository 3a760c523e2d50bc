//! The shell of every page (the document head with the stylesheet, and the header with the
//! version, instance and time), and the relative links between pages.

use maud::{html, Markup, DOCTYPE};

use super::cells::text;
use crate::report::format;
use crate::Snapshot;

/// What every page is drawn with: the prefix's last segment, this server's version and
/// instance, and the time now (Unix epoch seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageContext<'a> {
    /// Last segment of the router prefix, as [`DashboardOptions::base`](super::DashboardOptions::base).
    pub(crate) base: &'a str,
    /// Version of this server, as [`ServerInfo::version`](crate::ServerInfo::version).
    pub(crate) version: &'a str,
    /// Instance name.
    pub(crate) instance: &'a str,
    /// Now, in Unix epoch seconds.
    pub(crate) now: f64,
}

impl<'a> PageContext<'a> {
    /// The context of a page under `base`, with the version, instance and time of `snapshot`.
    pub(crate) fn new(base: &'a str, snapshot: &'a Snapshot) -> Self {
        Self {
            base,
            version: &snapshot.server.version,
            instance: &snapshot.server.instance,
            now: snapshot.generated_at,
        }
    }
}

/// What one page shows inside the shell that [`render_page`] draws around it.
#[derive(Debug)]
pub(super) struct Page<'a> {
    /// Title of the page and its heading.
    pub(super) title: &'a str,
    /// The page's level (see [`link`]).
    pub(super) level: usize,
    /// Auto-refresh interval in seconds; `None` for no refresh.
    pub(super) refresh: Option<u32>,
    /// The server's uptime, shown in the header with the page's age (the dashboard shows
    /// them; the other pages do not).
    pub(super) uptime_seconds: Option<f64>,
    /// The right of the header: the dashboard's status and refresh links, or a page's
    /// navigation.
    pub(super) header_side: Markup,
    /// The page's sections.
    pub(super) main: Markup,
    /// The footer's content, if the page has one.
    pub(super) footer: Option<Markup>,
}

/// The page shell shared by every page: the document head with the stylesheet, the header
/// (title, version, instance and when the page was generated), then the page's own parts.
pub(super) fn render_page(context: &PageContext<'_>, page: &Page<'_>) -> String {
    let now = context.now;
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(n) = page.refresh {
                    meta http-equiv="refresh" content=(n);
                }
                title { (page.title) " · " (text(context.instance)) }
                link rel="stylesheet" href=(link(context.base, page.level, "style.css"));
            }
            body {
                header.top {
                    div.title {
                        h1 { (page.title) }
                        p.meta {
                            span { (text(context.version)) }
                            " on " strong { (text(context.instance)) }
                            @if let Some(uptime) = page.uptime_seconds {
                                " · up " (format::duration(uptime))
                            }
                            " · generated "
                            time datetime=(format::iso_time(now)) { (format::iso_time(now)) }
                            @if page.uptime_seconds.is_some() {
                                " (" (format::ago(0.0)) ")"
                            }
                        }
                    }
                    (page.header_side)
                }
                main { (page.main) }
                @if let Some(footer) = &page.footer {
                    footer { (footer) }
                }
            }
        }
    };
    markup.into_string()
}

/// A relative link from a page `level` directories below the directory holding the router
/// prefix (the dashboard `{prefix}` is at level 0, `{prefix}/requests` at 1,
/// `{prefix}/requests/{id}` at 2) to `path` under the prefix, or to the dashboard itself when
/// `path` is empty. Every link starts with `./`, so no segment can read as a URL scheme, and
/// none depends on where the router is nested.
pub(super) fn link(base: &str, level: usize, path: &str) -> String {
    match (level, path.is_empty()) {
        (0, true) => format!("./{base}"),
        (0, false) => format!("./{base}/{path}"),
        (n, true) => format!("./{}{base}", "../".repeat(n)),
        (n, false) => format!("./{}{path}", "../".repeat(n - 1)),
    }
}

/// Longest request id that gets a link to its page.
const MAX_LINKED_ID: usize = 128;

/// A relative link (see [`link`]) to the page of the request `id`, when the id can stand in
/// a path as it is: 1 to 128 ASCII letters, digits, `-` and `_`. Local ids are numbers and
/// the ids of a merged snapshot `<boot id>-<n>`; any other id (the snapshots of other
/// instances are untrusted input) gets no link.
pub(super) fn request_link(base: &str, level: usize, id: &str) -> Option<String> {
    let plain = !id.is_empty()
        && id.len() <= MAX_LINKED_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then(|| link(base, level, &format!("requests/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_at_every_level() {
        // The dashboard `/stats`, its list `/stats/requests`, a request `/stats/requests/7`.
        assert_eq!(link("stats", 0, ""), "./stats");
        assert_eq!(link("stats", 0, "requests/7"), "./stats/requests/7");
        assert_eq!(link("stats", 1, ""), "./../stats");
        assert_eq!(link("stats", 1, "requests/7"), "./requests/7");
        assert_eq!(link("stats", 1, "style.css"), "./style.css");
        assert_eq!(link("stats", 2, ""), "./../../stats");
        assert_eq!(link("stats", 2, "requests"), "./../requests");
        assert_eq!(link("a:b", 2, ""), "./../../a:b");
    }

    #[test]
    fn only_plain_request_ids_are_linked() {
        assert_eq!(
            request_link("stats", 0, "7").as_deref(),
            Some("./stats/requests/7")
        );
        assert_eq!(
            request_link("stats", 1, "0123456789abcdef-42").as_deref(),
            Some("./requests/0123456789abcdef-42")
        );
        for id in ["", "..", "a/b", "a?b", "a b", "<a>", "é", &"1".repeat(129)] {
            assert_eq!(request_link("stats", 1, id), None, "{id}");
        }
    }

    #[test]
    fn the_shell_shows_what_it_is_given() {
        let context = PageContext {
            base: "stats",
            version: "tower-stats 9.9.9",
            instance: "web-1",
            now: 0.0,
        };
        let page = render_page(
            &context,
            &Page {
                title: "Recent requests",
                level: 1,
                refresh: None,
                uptime_seconds: None,
                header_side: html! { nav { "pages" } },
                main: html! { p { "body" } },
                footer: None,
            },
        );
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(
            page.contains("<title>Recent requests · web-1</title>"),
            "{page}"
        );
        assert!(
            page.contains(r#"<link rel="stylesheet" href="./style.css">"#),
            "{page}"
        );
        assert!(
            page.contains(
                "<span>tower-stats 9.9.9</span> on <strong>web-1</strong> · generated <time"
            ),
            "{page}"
        );
        assert!(
            page.contains("<nav>pages</nav></header><main><p>body</p></main></body>"),
            "{page}"
        );
        assert!(
            !page.contains("http-equiv") && !page.contains(" · up ") && !page.contains("<footer>"),
            "{page}"
        );

        let dashboard = render_page(
            &context,
            &Page {
                title: "Statistics",
                level: 0,
                refresh: Some(5),
                uptime_seconds: Some(90.0),
                header_side: html! {},
                main: html! {},
                footer: Some(html! { "end" }),
            },
        );
        assert!(
            dashboard.contains(r#"<meta http-equiv="refresh" content="5">"#),
            "{dashboard}"
        );
        assert!(
            dashboard.contains(r#"<link rel="stylesheet" href="./stats/style.css">"#),
            "{dashboard}"
        );
        assert!(dashboard.contains("</strong> · up "), "{dashboard}");
        assert!(dashboard.contains("<footer>end</footer>"), "{dashboard}");
    }
}
