//! The application events of the event stream, in a fixed ring.

use tokio::time::Instant;

use super::ring::RecordRing;

/// Application events, kept in a fixed ring. Request events are not stored here: they are
/// read from the recent requests and the in-flight table, so a request costs the stream
/// nothing when it is recorded.
#[derive(Debug)]
pub(crate) struct EventLog {
    ring: RecordRing<(Instant, String)>,
}

impl EventLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: RecordRing::new(capacity),
        }
    }

    /// Logs an application event.
    pub(crate) fn push(&self, at: Instant, message: String) {
        self.ring.push((at, message));
    }

    /// The application events, newest first.
    pub(crate) fn entries(&self) -> Vec<(Instant, String)> {
        self.ring.collect(|(at, m)| Some((*at, m.clone())))
    }
}
