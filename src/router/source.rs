//! Where the stats routes get what they render: one place, so that another source (the
//! merged snapshots of a cluster) can stand behind the same routes.

use axum::http::StatusCode;
use axum::response::Response;

use super::protection::json_error;
use crate::snapshot::collect;
use crate::{Snapshot, Stats, StatusSnapshot};

/// The source of the snapshots the stats routes render: the local store.
///
/// Every route that shows statistics asks it once per request, and renders what it gets and
/// nothing else.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotSource {
    stats: Stats,
}

impl SnapshotSource {
    /// The snapshots of `stats`.
    pub(crate) fn local(stats: Stats) -> Self {
        Self { stats }
    }

    /// Builds the snapshot a page shows for its query string, and renders it with `render`,
    /// off the async workers (`spawn_blocking`), so that a big document never stalls the
    /// application's requests on the same worker.
    ///
    /// With a cluster configured (feature `redis`) the snapshot is every instance merged
    /// (`?scope=cluster`, the default), this instance (`?scope=local`) or one instance
    /// (`?instance=NAME`), each with the cluster's status; without one, this instance. An
    /// instance that is not known gets `404`.
    pub(crate) async fn render<F>(&self, query: Option<String>, render: F) -> Response
    where
        F: FnOnce(&Snapshot) -> Response + Send + 'static,
    {
        let stats = self.stats.clone();
        let built = tokio::task::spawn_blocking(move || {
            let snapshot = snapshot_for(&stats, query.as_deref())?;
            Some(render(&snapshot))
        })
        .await;
        match built {
            Ok(Some(response)) => response,
            Ok(None) => json_error(
                StatusCode::NOT_FOUND,
                "no such instance: give an instance name or boot id the cluster view lists",
            ),
            Err(_) => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering the statistics failed",
            ),
        }
    }

    /// The status part of a snapshot, [`Snapshot::status`], read alone: `/status` is polled
    /// often by load balancers, so it does not collect the rest. The status is read once
    /// (a callback is called once), so the code and the body of the answer agree.
    pub(crate) fn status(&self) -> StatusSnapshot {
        collect::status(&self.stats.shared.status)
    }
}

/// The snapshot for a query string (see [`SnapshotSource::render`]).
fn snapshot_for(stats: &Stats, query: Option<&str>) -> Option<Snapshot> {
    #[cfg(feature = "redis")]
    if let Some(cluster) = stats.shared.cluster() {
        let scope = crate::cluster::Scope::from_query(query);
        return cluster.snapshot(stats, &scope);
    }
    let _ = query;
    Some(stats.snapshot())
}
