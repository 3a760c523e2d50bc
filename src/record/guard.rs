//! The guard that carries a request's record between phases and finalizes it exactly once.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;

use super::handle::Current;
use crate::clock::duration_nanos;
use crate::snapshot::Outcome;
use crate::store::http::status_class_index;
use crate::store::in_flight::SlotKey;
use crate::store::request::{FinishedRequest, NewRequest, RequestExtras};
use crate::store::uri_sets::{UriSetEntry, STATUS_CLASSES};
use crate::store::Store;

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
    pub(crate) current: Option<Current>,
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
    pub(crate) fn start(
        shared: Arc<Store>,
        id: u64,
        method: &Method,
        uri: &http::Uri,
        uri_set: Arc<UriSetEntry>,
        client: Option<std::net::SocketAddr>,
        detailed: bool,
    ) -> Self {
        let http = &shared.http;
        let start = Instant::now();
        http.requests_total.fetch_add(1, Ordering::Relaxed);
        let key = http.in_flight.insert(
            id,
            NewRequest {
                method,
                path: uri
                    .path_and_query()
                    .cloned()
                    .or_else(|| http::uri::PathAndQuery::try_from(uri.path()).ok()),
                uri_set,
                start,
                detailed,
                extra: client.map(|client| {
                    Box::new(RequestExtras {
                        client: Some(client),
                        ..RequestExtras::default()
                    })
                }),
            },
        );
        Self {
            current: Some(Current {
                shared,
                id,
                key,
                unflushed_read: 0,
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
    /// in which case the request is finished.
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
        let (id, key) = (cur.id, cur.key);
        let http = &cur.shared.http;
        if stream {
            let read = std::mem::take(&mut cur.unflushed_read);
            let found = http.in_flight.update(key, id, |live| {
                live.status = Some(status);
                live.stream = true;
                live.bytes_read = live.bytes_read.saturating_add(read);
                // Counted under the shard's lock, so the set needs no reference of its own.
                live.uri_set.mark_used();
                http.count_status(status.as_u16(), &live.uri_set);
                live.uri_set.streams.fetch_add(1, Ordering::Relaxed);
            });
            if found.is_none() {
                // Withdrawn while it ran (a request to the stats routes): nothing to record.
                self.done = true;
                return true;
            }
            self.counted = true;
            http.streams_total.fetch_add(1, Ordering::Relaxed);
        } else if !bodyless && (cur.unflushed_read > 0 || !http.in_flight.set_head(key, id, status))
        {
            let read = std::mem::take(&mut cur.unflushed_read);
            http.in_flight.update(key, id, |live| {
                live.status = Some(status);
                live.bytes_read = live.bytes_read.saturating_add(read);
            });
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
        if read > 0 {
            cur.shared.http.in_flight.update(cur.key, cur.id, |live| {
                live.bytes_read = live.bytes_read.saturating_add(read);
            });
        }
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
        let http = &cur.shared.http;
        http.bytes_written_total.fetch_add(bytes, Ordering::Relaxed);
        if !last {
            http.in_flight.update(cur.key, cur.id, |live| {
                live.bytes_written = live.bytes_written.saturating_add(bytes);
            });
        }
    }

    /// Finalizes the request; later calls do nothing.
    #[inline]
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let read = std::mem::take(&mut cur.unflushed_read);
        let id = cur.id;
        let shared = &*cur.shared;
        let http = &shared.http;
        let config = &shared.config;
        let end = Instant::now();
        if self.status.is_none() && outcome == Outcome::Aborted {
            // The client left before any status existed: nginx's 499.
            self.status = StatusCode::from_u16(499).ok();
        }
        let (status, counted, stream, bytes_written) =
            (self.status, self.counted, self.stream, self.bytes_written);
        let elapsed = end.saturating_duration_since(self.start);
        // Recorded under the shard's lock, so that the record is read and written in place;
        // withdrawn while it ran, the request leaves no trace.
        let _ = http.in_flight.remove_with(cur.key, id, |live| {
            live.bytes_read = live.bytes_read.saturating_add(read);
            let uri_set = &*live.uri_set;
            let code = status.map(|s| s.as_u16());
            let class = code.and_then(status_class_index);
            if let (false, Some(code)) = (counted, code) {
                // Marked used below, with the timing (a stream's was at its head).
                http.count_status_in(code, class, uri_set);
            }

            if live.bytes_read > 0 {
                uri_set
                    .bytes_read
                    .fetch_add(live.bytes_read, Ordering::Relaxed);
            }
            if bytes_written > 0 {
                uri_set
                    .bytes_written
                    .fetch_add(bytes_written, Ordering::Relaxed);
            }

            let errored = matches!(outcome, Outcome::Error | Outcome::Panicked);
            match outcome {
                Outcome::Aborted => {
                    http.requests_aborted.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Error | Outcome::Panicked => {
                    http.requests_errored.fetch_add(1, Ordering::Relaxed);
                    uri_set.errors.fetch_add(1, Ordering::Relaxed);
                    if outcome == Outcome::Panicked {
                        http.requests_panicked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }

            if !stream {
                // Without a status, or outside 1xx-5xx: the "none" class.
                let class = class.unwrap_or(STATUS_CLASSES.len() - 1);
                uri_set.record_timing(end, duration_nanos(elapsed), class, errored);
            }

            if !live.detailed {
                return;
            }
            live.status = status;
            live.bytes_written = bytes_written;
            let threshold = config.slow_threshold;
            if !stream && !threshold.is_zero() && elapsed > threshold && config.slow_capacity > 0 {
                let slow = FinishedRequest::new(id, live.clone(), end, outcome, config);
                http.push_slow(slow, config.slow_capacity);
            }
            // Swapped with the oldest record, which the free slot keeps.
            http.recent.push_with(live, |old, live| match old {
                Some(old) => {
                    old.overwrite(id, live, end, outcome, config);
                    None
                }
                None => Some(FinishedRequest::new(id, live.clone(), end, outcome, config)),
            });
        });
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
