//! The event stream: a bounded log of what happened on this instance, newest first.
//!
//! Requests log `request_started` when they start and `request_finished` (or
//! `request_error`, `request_aborted`, `request_panicked`) with their status and duration
//! when they end; applications add their own with [`Stats::log_event`]. Only requests that
//! keep a detailed record (see [`StatsBuilder::record_fraction`] and
//! [`RequestStats::dont_record`]) are logged.
//!
//! The log keeps at most [`StatsBuilder::event_capacity`] events (the oldest dropped first)
//! and shows none older than [`StatsBuilder::event_max_age`]; its memory is allocated once.
//! Snapshots carry the stream ([`Snapshot::events`]); [`report::events`] renders it as text.
//!
//! [`Stats::log_event`]: crate::Stats::log_event
//! [`Snapshot::events`]: crate::Snapshot::events
//! [`report::events`]: crate::report::events
//! [`StatsBuilder::record_fraction`]: crate::StatsBuilder::record_fraction
//! [`StatsBuilder::event_capacity`]: crate::StatsBuilder::event_capacity
//! [`StatsBuilder::event_max_age`]: crate::StatsBuilder::event_max_age
//! [`RequestStats::dont_record`]: crate::RequestStats::dont_record

pub use crate::snapshot::StreamEvent;
