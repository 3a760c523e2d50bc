//! The guard that carries a request's record between phases and finalizes it exactly once.

use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;

use super::handle::PolledRequest;
use super::service::StoreRef;
use crate::store::in_flight::SlotKey;
use crate::store::lifecycle::Ending;
use crate::store::request::{CappedPath, NewRequest, Outcome, RequestExtras};
use crate::store::uri_sets::UriSetRef;

/// Owns a recorded request from `call` to the end of its response body.
///
/// Whichever phase ends the request (headers for bodyless responses, end of stream, body
/// error, inner error, drop) calls [`finish`](Self::finish); `Drop` finishes a request that
/// nobody finished as aborted, or as panicked when a poll of the inner service unwound.
#[derive(Debug)]
pub(crate) struct RecordGuard {
    /// The store, the request's id and its slot, and the request body bytes counted while
    /// polled. Moved into the thread-local slot while the inner future is polled (for
    /// `RequestStats::current`), and back when the poll returns or unwinds: present whenever
    /// a method below runs.
    pub(crate) current: Option<PolledRequest>,
    start: Instant,
    status: Option<StatusCode>,
    bytes_written: u64,
    stream: bool,
    /// Whether the status is already counted (a stream's is, at its head).
    counted: bool,
    /// True while the inner future or body is being polled: if the guard is dropped in that
    /// state, the poll never returned, so it panicked.
    pub(crate) polling: bool,
    done: bool,
}

impl RecordGuard {
    /// Where the request is kept in the in-flight table.
    #[inline]
    pub(crate) fn key(&self) -> SlotKey {
        self.current.as_ref().map_or(SlotKey::NONE, |c| c.key)
    }

    /// Counts the request as started and enters it in the in-flight table. `detailed` says
    /// whether it keeps a detailed record (timeline, slow list, recent requests, event stream).
    #[inline]
    // What the request's record starts with, each taken from the request by `call`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        shared: StoreRef,
        shard: usize,
        id: u64,
        method: &Method,
        uri: &http::Uri,
        uri_set: UriSetRef,
        client: Option<std::net::SocketAddr>,
        detailed: bool,
        trace_id: Option<std::num::NonZeroU128>,
    ) -> Self {
        let start = Instant::now();
        let config = &shared.config;
        let key = shared.http.start(
            shard,
            id,
            NewRequest {
                method,
                // Copied into the record: nothing of the request's buffers is kept.
                path: CappedPath::of(uri, config.record_query, config.max_string_len),
                uri_set,
                start,
                detailed,
                trace_id,
                extras: client.map(|client| {
                    Box::new(RequestExtras {
                        client: Some(client),
                        ..RequestExtras::default()
                    })
                }),
            },
        );
        Self {
            current: Some(PolledRequest {
                shared,
                id,
                key,
                unflushed_read: 0,
                detailed,
            }),
            start,
            status: None,
            bytes_written: 0,
            stream: false,
            counted: false,
            polling: false,
            done: false,
        }
    }

    /// Records the response head; `sized` says whether the body's exact length is known, and
    /// `at_end` whether the body is already at its end. Returns `true` when the response has
    /// no body to wait for (a response to `HEAD`, `101`, `204`, `304`, or a body at its end),
    /// in which case the request is finished, or when the request was withdrawn while it ran.
    ///
    /// The status of an ordinary response is published for the in-flight table without a
    /// lock and counted when the request ends; a stream's is counted right away, since a
    /// stream may stay open for hours.
    #[inline]
    pub(crate) fn on_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        head: bool,
        sized: bool,
        at_end: bool,
    ) -> bool {
        self.status = Some(status);
        // An event stream is a body of unknown length: one with an exact size is an ordinary
        // response whatever its type, and skipping the header lookup keeps it cheap.
        let stream =
            status == StatusCode::SWITCHING_PROTOCOLS || (!sized && is_event_stream(headers));
        self.stream = stream;
        let bodyless = head
            || at_end
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let Some(cur) = self.current.as_mut() else {
            return false;
        };
        if cur.withdrawn() {
            // Taken back out of the statistics while it ran (a request to the stats routes):
            // its body is passed on unwatched, so that none of its bytes are counted.
            self.done = true;
            return true;
        }
        let (id, key) = (cur.id, cur.key);
        let http = &cur.shared.http;
        if stream {
            let read = std::mem::take(&mut cur.unflushed_read);
            if !http.stream_head(key, id, status, read) {
                // Withdrawn while it ran (a request to the stats routes): nothing to record.
                self.done = true;
                return true;
            }
            self.counted = true;
        } else if !bodyless {
            let read = std::mem::take(&mut cur.unflushed_read);
            http.head(key, id, status, read);
        }
        if bodyless {
            self.finish(Outcome::Completed);
        }
        bodyless
    }

    /// Adds request body bytes read during a poll that did not finish the response to the
    /// live record, so that the in-flight table shows uploads as they progress.
    pub(crate) fn flush_read(&mut self) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let read = std::mem::take(&mut cur.unflushed_read);
        cur.shared.http.add_read(cur.key, cur.id, read);
    }

    /// Counts response body bytes the server polled. `last` says the body ends with them:
    /// the live record then needs no update, the request finishes right away.
    #[inline]
    pub(crate) fn on_data(&mut self, bytes: u64, last: bool) {
        if bytes == 0 {
            return;
        }
        self.bytes_written = self.bytes_written.saturating_add(bytes);
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        cur.shared.http.add_written(cur.key, cur.id, bytes, last);
    }

    /// Finalizes the request; later calls do nothing.
    #[inline]
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        // A request withdrawn while it ran has no slot any more: ending it records nothing.
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let end = Instant::now();
        if self.status.is_none() && outcome == Outcome::Aborted {
            // The client left before any status existed: nginx's 499.
            self.status = StatusCode::from_u16(499).ok();
        }
        let ending = Ending {
            outcome,
            status: self.status,
            status_counted: self.counted,
            stream: self.stream,
            unflushed_read: std::mem::take(&mut cur.unflushed_read),
            bytes_written: self.bytes_written,
            elapsed: end.saturating_duration_since(self.start),
            end,
        };
        let shared = &*cur.shared;
        shared.http.finish(cur.key, cur.id, ending, &shared.config);
    }
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        if !self.done {
            let outcome = if self.polling || std::thread::panicking() {
                Outcome::Panicked
            } else {
                Outcome::Aborted
            };
            self.finish(outcome);
        }
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/event-stream"))
}
