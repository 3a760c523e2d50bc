//! The stats router's routes, relative to its prefix: the one table that the router serves
//! (feature `axum`) and that the recording uses to leave requests to them out of the
//! statistics (unless `record_stats_routes`), wherever the router is nested.

/// What a route of the stats router serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `GET {prefix}`: the dashboard.
    Dashboard,
    /// `GET {prefix}/style.css`: the pages' stylesheet.
    Stylesheet,
    /// `GET {prefix}/data`: the snapshot as JSON.
    Data,
    /// `GET {prefix}/metrics`: Prometheus or OpenMetrics text.
    Metrics,
    /// `GET {prefix}/requests`: the recent requests.
    Requests,
    /// `GET {prefix}/requests/{id}`: one request.
    Request,
    /// `GET {prefix}/events`: the event stream.
    Events,
    /// `POST {prefix}/pause`.
    Pause,
    /// `POST {prefix}/resume`.
    Resume,
    /// `POST {prefix}/reset`.
    Reset,
    /// `POST {prefix}/maintenance`.
    Maintenance,
}

#[cfg_attr(
    not(feature = "axum"),
    allow(
        dead_code,
        reason = "only the router, which needs the `axum` feature, asks"
    )
)]
impl Endpoint {
    /// Whether the route changes state: control routes are left out in read-only mode.
    pub(crate) fn is_control(self) -> bool {
        matches!(
            self,
            Self::Pause | Self::Resume | Self::Reset | Self::Maintenance
        )
    }
}

/// Every route of the stats router: its template relative to the prefix (axum's syntax), and
/// what it serves.
pub(crate) const STATS_ROUTES: [(&str, Endpoint); 11] = [
    ("", Endpoint::Dashboard),
    ("/style.css", Endpoint::Stylesheet),
    ("/data", Endpoint::Data),
    ("/metrics", Endpoint::Metrics),
    ("/pause", Endpoint::Pause),
    ("/resume", Endpoint::Resume),
    ("/reset", Endpoint::Reset),
    ("/maintenance", Endpoint::Maintenance),
    ("/requests", Endpoint::Requests),
    ("/requests/{id}", Endpoint::Request),
    ("/events", Endpoint::Events),
];

/// The route templates of a stats router served under `prefix`.
pub(crate) fn stats_routes(prefix: &str) -> Vec<String> {
    STATS_ROUTES
        .iter()
        .map(|(sub, _)| format!("{prefix}{sub}"))
        .collect()
}

/// Whether `path` can be a route path of its own: it starts with `/`, does not end with `/` or
/// contain `//`, and uses only ASCII letters, digits and `-._~!$&'()+,;=:@/` (no
/// percent-encoding, no `{`, `}`, `*`, `?` or `#`, which axum would read as patterns).
pub(crate) fn is_plain_route_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() >= 2
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()+,;=:@/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once() {
        for (i, (path, endpoint)) in STATS_ROUTES.iter().enumerate() {
            for (other_path, other) in &STATS_ROUTES[i + 1..] {
                assert_ne!(path, other_path);
                assert_ne!(endpoint, other);
            }
            assert!(path.is_empty() || path.starts_with('/'), "{path}");
        }
        assert_eq!(stats_routes("/a")[..2], ["/a", "/a/style.css"]);
    }
}
