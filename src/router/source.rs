//! Where the stats routes get what they render: one place, so that another source (the
//! merged snapshots of a cluster) can stand behind the same routes.

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

    /// A snapshot of this instance, taken now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// The snapshot a page shows for its query string: with a cluster configured (feature
    /// `redis`), every instance merged (`?scope=cluster`, the default), this instance
    /// (`?scope=local`) or one instance (`?instance=NAME`), each with the cluster's status,
    /// built off the async workers; without one, this instance. `None` for an instance that is
    /// not known.
    pub(crate) async fn snapshot_for(&self, query: Option<&str>) -> Option<Snapshot> {
        #[cfg(feature = "redis")]
        if self.stats.shared.cluster().is_some() {
            let scope = crate::cluster::Scope::from_query(query);
            let stats = self.stats.clone();
            let built = tokio::task::spawn_blocking(move || {
                let cluster = stats.shared.cluster()?;
                cluster.snapshot(&stats, &scope)
            })
            .await;
            return built.ok().flatten();
        }
        let _ = query;
        Some(self.stats.snapshot())
    }

    /// The status part of a snapshot, [`Snapshot::status`], read alone: `/status` is polled
    /// often by load balancers, so it does not collect the rest. The status is read once
    /// (a callback is called once), so the code and the body of the answer agree.
    pub(crate) fn status(&self) -> StatusSnapshot {
        collect::status(&self.stats.shared.status)
    }
}
