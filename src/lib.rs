//! Live, exact, bounded request statistics for [tower] and [axum] services.
//!
//! Add one layer and mount one router, and see what the server is doing right now: a page at
//! `/stats`, JSON at `/stats/data`, Prometheus metrics at `/stats/metrics`, recent requests
//! with their timelines at `/stats/requests`, an event stream at `/stats/events`, and `POST`
//! control routes to pause, resume and reset recording.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_stats::Stats;
//!
//! let stats = Stats::new(); // the store; cheap to clone
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "a user" }))
//!     .merge(stats.router()) // /stats, /stats/data, control routes
//!     .layer(stats.layer()); // records every request, 404s included
//! # drop(app);
//! ```
//!
//! Where to read on:
//!
//! - what is recorded, and when: the [`record`] module (the layer), which writes into the
//!   store through a narrow API: atomics and short critical sections, never a wait on a
//!   reader;
//! - the read model: [`Snapshot`], plain data taken from the store without stopping
//!   recording, which every page, the JSON, the metrics and the event stream are rendered
//!   from, which [`Snapshot::merge`] combines across instances and [`Snapshot::from_json`]
//!   reads back; latency distributions and their error bound: the [`histogram`] module;
//! - application statistics: [`Stats::namespace`] and the [`registry`] module;
//! - a handler's own timeline: [`RequestStats`];
//! - which requests are recorded: the [`filter`] module and
//!   [`StatsBuilder::record_fraction`];
//! - the routes and their protections: the `router` module (feature `axum`); the renderers:
//!   the [`report`] module; the event stream: the [`events`] module.
//!
//! # Feature flags
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `axum` | [`Stats::router`]: the page, the JSON and the control routes; [`Stats::status_router`]: `/status` | Yes |
//! | `redis` | the [`cluster`] view: instances publish to Redis, the routes show every instance merged | No |
//! | `tracing` | [`Stats::tracing_layer`]: spans and events on request timelines, call statistics; an audit log of the stats routes: control actions and refused requests as `tracing` events on target `tower_stats`, with the client address | No |
//!
//! Without `axum`, the layer works with any tower HTTP service whose bodies carry `Bytes`
//! (the wrapped service receives an [`axum_core::body::Body`]), and [`Stats::snapshot`] gives
//! the same data.
//!
//! [tower]: https://docs.rs/tower
//! [axum]: https://docs.rs/axum

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(no_crate_inject, attr(deny(warnings, rust_2018_idioms))))]

mod builder;
mod clock;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod cluster;
mod config;
pub mod events;
pub mod filter;
pub mod histogram;
pub mod record;
pub mod registry;
pub mod report;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod router;
mod routes;
mod sanitize;
mod snapshot;
mod stats;
mod status;
mod store;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing;

pub use self::builder::{ConfigError, StatsBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::cluster::RedisOptions;
pub use self::filter::Filter;
pub use self::histogram::{Histogram, HistogramLayout};
pub use self::record::{CustomEvent, EventError, RequestStats, StatsLayer};
pub use self::registry::{Combine, Namespace, RegistryError};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::router::status::InvalidStatusPath;
pub use self::snapshot::{
    ApplicationEvent, CallSnapshot, CallTotal, CallUriSet, ClusterStatus, DurationSeries, Exemplar,
    HttpSnapshot, InstanceSummary, LatencyHistograms, Limits, NamespaceSnapshot, Outcome,
    PeriodHistogram, RequestRecord, ServerInfo, Snapshot, SnapshotError, StatusSnapshot,
    StreamEvent, TimelineEvent, UriSetSnapshot, WindowSnapshot, MAX_SNAPSHOT_BYTES, SCHEMA_VERSION,
};
pub use self::stats::{Stats, UnknownNamespace, HTTP_NAMESPACE};
pub use self::status::{AppStatus, Status, StatusReport};
pub use self::store::uri_sets::{UriSet, OTHER_METHOD, OVERFLOW, UNMATCHED};
