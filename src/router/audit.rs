//! The audit log of the stats routes: control actions and refused requests.
//!
//! Each handler or protection that acts or refuses says so in an [`Audit`] extension of its
//! response. With the `tracing` feature, [`log`] wraps every stats route, reads that
//! extension once the response is ready and emits one `tracing` event on target
//! `tower_stats`, with the client address when the server gives it (axum's
//! `ConnectInfo<SocketAddr>`):
//!
//! | What | Level | Message | Fields |
//! |---|---|---|---|
//! | pause, resume, reset | `INFO` | `stats control action` | `action`, `namespace` (when one was named), `scope`, `path`, `client` |
//! | maintenance on or off | `INFO` | `stats control action` | `action` = `maintenance`, `on`, `path`, `client` |
//! | a refused request | `WARN` | `stats request refused` | `reason` (`cross_origin`, `cross_site`, `host_not_allowed`, `malformed_host`, `bad_token`), `status`, `method`, `path`, `host` (for host refusals), `client` |
//!
//! Every request-derived string is capped and cleaned before it is logged.

use axum::response::Response;

/// What a stats route did that belongs in the audit log; kept in the response's extensions.
// Read by the audit log, which only the `tracing` feature builds.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
#[derive(Debug, Clone)]
pub(crate) enum Audit {
    /// A control action was applied.
    Action {
        action: &'static str,
        namespace: Option<String>,
        scope: &'static str,
    },
    /// The maintenance switch was set.
    Maintenance { on: bool },
    /// The request was refused.
    Refused {
        reason: &'static str,
        /// The host named by the request, for host refusals.
        host: Option<String>,
    },
}

impl Audit {
    /// Puts `self` in `response`'s extensions.
    pub(crate) fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Logs what a stats route did (see the [module docs](self)).
#[cfg(feature = "tracing")]
pub(super) async fn log(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use std::net::SocketAddr;

    use tracing::field::display;

    const CAP: usize = 256;
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
        .or_else(|| request.extensions().get::<SocketAddr>().copied());
    let method = request.method().clone();
    let path = crate::sanitize::clean(request.uri().path(), CAP);
    let response = next.run(request).await;
    let Some(audit) = response.extensions().get::<Audit>() else {
        return response;
    };
    let client = client.map(display);
    match audit {
        Audit::Action {
            action,
            namespace,
            scope,
        } => {
            let namespace = namespace.as_deref().map(|n| crate::sanitize::clean(n, CAP));
            tracing::info!(
                target: "tower_stats",
                action = *action,
                namespace = namespace.as_deref(),
                scope = *scope,
                path = %path,
                client,
                "stats control action"
            );
        }
        Audit::Maintenance { on } => {
            tracing::info!(
                target: "tower_stats",
                action = "maintenance",
                on = *on,
                path = %path,
                client,
                "stats control action"
            );
        }
        Audit::Refused { reason, host } => {
            let host = host.as_deref().map(|h| crate::sanitize::clean(h, CAP));
            tracing::warn!(
                target: "tower_stats",
                reason = *reason,
                status = response.status().as_u16(),
                method = %crate::sanitize::clean(method.as_str(), 32),
                path = %path,
                host = host.as_deref(),
                client,
                "stats request refused"
            );
        }
    }
    response
}
