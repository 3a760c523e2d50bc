//! The snapshot the stats routes show with a cluster configured: the whole service merged,
//! this instance, or one other instance; each with the cluster's status and every instance.

use serde::Deserialize;

use crate::snapshot::{ClusterStatus, InstanceSummary};
use crate::{Snapshot, Stats};

use super::publisher::{Cluster, PublishState, Remote};

/// What a request asks to see: `?scope=cluster` (the default with a cluster), `?scope=local`,
/// or `?instance=NAME` (an instance name or boot id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Scope {
    /// Every instance, merged.
    #[default]
    Cluster,
    /// This instance only.
    Local,
    /// One instance, by name or boot id.
    Instance(String),
}

#[derive(Debug, Default, Deserialize)]
struct ScopeParams {
    scope: Option<String>,
    instance: Option<String>,
}

impl Scope {
    /// The scope a query string asks for; anything unknown is the default.
    pub(crate) fn from_query(query: Option<&str>) -> Self {
        let params: ScopeParams = query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        match (params.instance, params.scope.as_deref()) {
            (Some(name), _) if !name.is_empty() => Self::Instance(name),
            (_, Some("local")) => Self::Local,
            _ => Self::Cluster,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Local => "local",
            Self::Instance(_) => "instance",
        }
    }
}

impl Cluster {
    /// The snapshot for `scope`, taken now, with the cluster's status; `None` for an instance
    /// that is not known.
    pub(crate) fn snapshot(&self, stats: &Stats, scope: &Scope) -> Option<Snapshot> {
        let local = stats.snapshot();
        let (state, remotes) = self.view();
        let mut instances = vec![local_summary(&local, &state)];
        instances.extend(remotes.iter().map(remote_summary));
        instances.sort_by(|a, b| {
            (&a.server.instance, &a.server.boot_id).cmp(&(&b.server.instance, &b.server.boot_id))
        });
        let mut snapshot = match scope {
            Scope::Local => local,
            Scope::Instance(name) => {
                let wanted = |s: &Snapshot| &s.server.instance == name || &s.server.boot_id == name;
                if wanted(&local) {
                    local
                } else {
                    remotes
                        .iter()
                        .filter_map(|r| r.snapshot.as_ref())
                        .find(|s| wanted(s))?
                        .clone()
                }
            }
            Scope::Cluster => {
                let parts = std::iter::once((&local, true)).chain(
                    remotes
                        .iter()
                        .filter_map(|r| Some((r.snapshot.as_ref()?, r.state == "live"))),
                );
                let mut merged = Snapshot::merge_instances(parts);
                for summary in &mut merged.instances {
                    if let Some(known) = instances
                        .iter()
                        .find(|i| i.server.boot_id == summary.server.boot_id)
                    {
                        summary.state.clone_from(&known.state);
                        summary.last_seen = known.last_seen;
                        summary.clock_offset_seconds = known.clock_offset_seconds;
                        summary.local = known.local;
                    }
                }
                merged
            }
        };
        snapshot.cluster = Some(ClusterStatus {
            service: self.options.service.clone(),
            scope: scope.name().to_owned(),
            status: if state.ok { "ok" } else { "down" }.to_owned(),
            last_error: state.last_error,
            last_success: state.last_success,
            publishes: state.publishes,
            publish_failures: state.failures,
            publish_interval_seconds: self.options.publish_interval.as_secs_f64(),
            retention_seconds: self.options.retention.as_secs_f64(),
            instances,
        });
        Some(snapshot)
    }
}

fn summary_of(snapshot: &Snapshot) -> InstanceSummary {
    let mut summary = crate::snapshot::summary(snapshot, true);
    summary.values.clear();
    summary
}

fn local_summary(local: &Snapshot, state: &PublishState) -> InstanceSummary {
    InstanceSummary {
        state: "live".to_owned(),
        last_seen: state.last_seen,
        clock_offset_seconds: state.clock_offset,
        local: true,
        ..summary_of(local)
    }
}

fn remote_summary(remote: &Remote) -> InstanceSummary {
    let mut summary = remote.snapshot.as_ref().map(summary_of).unwrap_or_default();
    if remote.snapshot.is_none() {
        summary.server.boot_id.clone_from(&remote.boot_id);
    }
    summary.live = remote.state == "live";
    remote.state.clone_into(&mut summary.state);
    summary.last_seen = Some(remote.last_seen);
    summary.clock_offset_seconds = remote.clock_offset;
    summary.error.clone_from(&remote.error);
    summary
}
