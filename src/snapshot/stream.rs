//! The event stream, derived from a snapshot: the application events, and the start and end
//! of every request with a detailed record (live ones from the in-flight table and open
//! streams, finished ones from the recent requests).

use std::cmp::Ordering;

use super::model::{Outcome, RequestRecord, Snapshot, StreamEvent};

/// What an entry of the stream comes from, before its text is written.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Application(usize),
    Started(&'a RequestRecord),
    Finished(&'a RequestRecord),
}

/// How entries at one instant are ordered: application events after requests, requests in the
/// order they started (by id), each one's start before its end.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Tie<'a> {
    application: bool,
    /// The part of the id before its number (a merged record's boot id), then the number.
    id: (&'a str, u64),
    finished: bool,
}

fn id_order(id: &str) -> (&str, u64) {
    let (prefix, number) = id.rsplit_once('-').unwrap_or(("", id));
    (prefix, number.parse().unwrap_or(u64::MAX))
}

impl Snapshot {
    /// The event stream, newest first: application events ([`Stats::log_event`]) and the
    /// start and end of every request with a detailed record, no older than
    /// [`StatsBuilder::event_max_age`] at the time of the snapshot, at most
    /// [`StatsBuilder::event_capacity`] of them.
    ///
    /// It is derived from the snapshot's records, so that a request costs the stream nothing
    /// when it is recorded and the snapshot carries each request once.
    ///
    /// [`Stats::log_event`]: crate::Stats::log_event
    /// [`StatsBuilder::event_max_age`]: crate::StatsBuilder::event_max_age
    /// [`StatsBuilder::event_capacity`]: crate::StatsBuilder::event_capacity
    #[must_use]
    pub fn events(&self) -> Vec<StreamEvent> {
        let now = self.generated_at;
        let max_age = self.limits.event_max_age_millis as f64 / 1e3;
        let fresh = |t: f64| now - t <= max_age;
        let http = &self.http;
        let mut entries: Vec<(f64, Tie<'_>, Entry<'_>)> = Vec::new();
        for (i, e) in self.application_events.iter().enumerate() {
            if fresh(e.time) {
                let tie = Tie {
                    application: true,
                    id: ("", 0),
                    finished: false,
                };
                entries.push((e.time, tie, Entry::Application(i)));
            }
        }
        let live = http.in_flight.iter().chain(&http.open_streams);
        for r in live.chain(&http.recent_requests).filter(|r| !r.no_details) {
            if fresh(r.start_time) {
                let tie = Tie {
                    application: false,
                    id: id_order(&r.id),
                    finished: false,
                };
                entries.push((r.start_time, tie, Entry::Started(r)));
            }
            if let Some(end) = r.end_time.filter(|end| fresh(*end)) {
                let tie = Tie {
                    application: false,
                    id: id_order(&r.id),
                    finished: true,
                };
                entries.push((end, tie, Entry::Finished(r)));
            }
        }
        // Newest first: the text is only written for the entries that are kept.
        entries.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(Ordering::Equal)
                .then_with(|| b.1.cmp(&a.1))
        });
        entries.truncate(self.limits.event_capacity);
        entries
            .into_iter()
            .map(|(time, _, entry)| self.event(time, entry))
            .collect()
    }

    fn event(&self, time: f64, entry: Entry<'_>) -> StreamEvent {
        let base = |instance: &str| StreamEvent {
            time,
            age_seconds: (self.generated_at - time).max(0.0),
            instance: instance.to_owned(),
            ..StreamEvent::default()
        };
        let instance = |r: &RequestRecord| {
            r.instance
                .clone()
                .unwrap_or_else(|| self.server.instance.clone())
        };
        match entry {
            Entry::Application(i) => {
                let e = &self.application_events[i];
                StreamEvent {
                    kind: "application".to_owned(),
                    message: e.message.clone(),
                    ..base(&e.instance)
                }
            }
            Entry::Started(r) => StreamEvent {
                kind: "request_started".to_owned(),
                request_id: Some(r.id.clone()),
                message: format!("Started {} {}", r.method, r.path),
                ..base(&instance(r))
            },
            Entry::Finished(r) => finished(r, base(&instance(r))),
        }
    }
}

fn finished(r: &RequestRecord, base: StreamEvent) -> StreamEvent {
    let seconds = r.processing_seconds;
    let what = format!("{} {}", r.method, r.path);
    let status_text = r
        .status
        .map_or_else(|| "no status".to_owned(), |s| s.to_string());
    let (kind, message) = match r.outcome {
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
        request_id: Some(r.id.clone()),
        message,
        status: r.status,
        duration_seconds: Some(seconds),
        ..base
    }
}
