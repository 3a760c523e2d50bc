//! The read model: a [`Snapshot`] of the statistics as plain data that serializes both ways,
//! merges across instances and is the one input of every renderer.
//!
//! - the types: [`Snapshot`] and its parts;
//! - taking one from the store, then computing the derived values (rates, averages,
//!   quantiles, window figures) from its raw data in one place;
//! - [`Snapshot::merge`]: several instances' snapshots as one;
//! - [`Snapshot::from_json`]: a `/stats/data` document read back as untrusted input.

mod calls;
pub(crate) mod collect;
pub(crate) mod derive;
mod merge;
mod model;
mod stream;
#[cfg(all(test, feature = "axum"))]
mod tests;
mod wire;

#[cfg(feature = "redis")]
pub(crate) use self::merge::summary;
pub use self::model::{
    ApplicationEvent, CallSnapshot, CallTotal, CallUriSet, ClusterStatus, DurationSeries, Exemplar,
    HttpSnapshot, InstanceSummary, LatencyHistograms, Limits, NamespaceSnapshot, Outcome,
    PeriodHistogram, RequestRecord, ServerInfo, Snapshot, StatusSnapshot, StreamEvent,
    TimelineEvent, UriSetSnapshot, WindowSnapshot, SCHEMA_VERSION,
};
pub use self::wire::{SnapshotError, MAX_SNAPSHOT_BYTES};
