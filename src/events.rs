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

use tokio::time::Instant;

use crate::config::Config;
use crate::registry::http::{raw_path, Clock, Finished, HttpNamespace, Live};
use crate::registry::ring::Ring;
use crate::snapshot::Outcome;
pub use crate::snapshot::StreamEvent;

/// Application events, kept in a fixed ring. Request events are not stored here: they are
/// read from the recent requests and the in-flight table, so a request costs the stream
/// nothing when it is recorded.
#[derive(Debug)]
pub(crate) struct EventLog {
    ring: Ring<(Instant, String)>,
}

impl EventLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: Ring::new(capacity),
        }
    }

    /// Logs an application event.
    pub(crate) fn push(&self, at: Instant, message: String) {
        self.ring.push((at, message));
    }

    /// The stream: application events, and the start and end of every request with a
    /// detailed record (finished ones from the recent requests, live ones from the in-flight
    /// table), no older than the configured age, newest first, at most the configured count.
    pub(crate) fn read(
        &self,
        http: &HttpNamespace,
        clock: &Clock,
        now: Instant,
        instance: &str,
        config: &Config,
    ) -> Vec<StreamEvent> {
        let max_age = config.event_max_age;
        let fresh = |at: Instant| now.saturating_duration_since(at) <= max_age;
        let event = |at: Instant| StreamEvent {
            time: clock.epoch_of(at),
            age_seconds: now.saturating_duration_since(at).as_secs_f64(),
            instance: instance.to_owned(),
            kind: "application".to_owned(),
            request_id: None,
            message: String::new(),
            status: None,
            duration_seconds: None,
        };
        // Sorted by instant; at the same instant application events come last, and requests
        // in the order they started (by id), each one's start before its end.
        let mut events: Vec<(Instant, (u8, u64, u8), StreamEvent)> = Vec::new();
        for (at, message) in self
            .ring
            .collect(|(at, m)| fresh(*at).then(|| (*at, m.clone())))
        {
            events.push((
                at,
                (1, 0, 0),
                StreamEvent {
                    message,
                    ..event(at)
                },
            ));
        }
        let started = |id: u64, live: &Live, path: &str| StreamEvent {
            kind: "request_started".to_owned(),
            request_id: Some(id.to_string()),
            message: format!(
                "Started {} {}",
                clean(live.method.as_str(), config),
                clean(path, config)
            ),
            ..event(live.start)
        };
        http.in_flight.collect(|id, live| {
            if live.detailed && fresh(live.start) {
                let path = raw_path(live.path.as_ref(), config);
                events.push((live.start, (0, id, 0), started(id, live, path)));
            }
        });
        for (id, start, finish) in http.recent.collect(|f| {
            let start = fresh(f.live.start)
                .then(|| (f.live.start, started(f.id, &f.live, f.path.as_str())));
            let finish = fresh(f.end).then(|| (f.end, finished(f, config, event(f.end))));
            Some((f.id, start, finish))
        }) {
            events.extend(start.map(|(at, e)| (at, (0, id, 0), e)));
            events.extend(finish.map(|(at, e)| (at, (0, id, 1), e)));
        }
        // Newest first.
        events.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        events.truncate(config.event_capacity);
        events.into_iter().map(|(_, _, e)| e).collect()
    }
}

fn finished(f: &Finished, config: &Config, base: StreamEvent) -> StreamEvent {
    let seconds = f.end.saturating_duration_since(f.live.start).as_secs_f64();
    let what = format!(
        "{} {}",
        clean(f.live.method.as_str(), config),
        crate::sanitize::clean(f.path.as_str(), config.max_string_len)
    );
    let status = f.live.status;
    let status_text = status.map_or_else(|| "no status".to_owned(), |s| s.as_u16().to_string());
    let (kind, message) = match f.outcome {
        Outcome::Error => (
            "request_error",
            format!("Error: {what} ({status_text}) after {seconds:.3} seconds"),
        ),
        Outcome::Aborted => (
            "request_aborted",
            format!("Aborted {what} ({status_text}) after {seconds:.3} seconds"),
        ),
        Outcome::Panicked => (
            "request_panicked",
            format!("Panicked: {what} after {seconds:.3} seconds"),
        ),
        _ => (
            "request_finished",
            format!("Finished {what} {status_text} in {seconds:.3} seconds"),
        ),
    };
    StreamEvent {
        kind: kind.to_owned(),
        request_id: Some(f.id.to_string()),
        message,
        status: status.map(|s| s.as_u16()),
        duration_seconds: Some(seconds),
        ..base
    }
}

fn clean(s: &str, config: &Config) -> String {
    crate::sanitize::clean(s, config.max_string_len)
}
