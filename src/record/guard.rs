//! The guard that carries a request's record between phases and finalizes it exactly once.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;

use crate::events::LogKind;
use crate::registry::http::{duration_nanos, Finished, Live};
use crate::snapshot::Outcome;
use crate::stats::Shared;
use crate::uri_set::{UriSetEntry, STATUS_CLASSES};

/// Owns a recorded request from `call` to the end of its response body.
///
/// Whichever phase ends the request (headers for bodyless responses, end of stream, body
/// error, inner error, drop) calls [`finish`](Self::finish); `Drop` finishes a request that
/// nobody finished as aborted, or as panicked when a poll of the inner service unwound.
#[derive(Debug)]
pub(crate) struct RecordGuard {
    shared: Arc<Shared>,
    id: u64,
    start: Instant,
    status: Option<StatusCode>,
    bytes_written: u64,
    stream: bool,
    /// True while the inner future or body is being polled: if the guard is dropped in that
    /// state, the poll never returned, so it panicked.
    pub(crate) polling: bool,
    /// The request's entry for `RequestStats::current`, moved into the thread-local slot
    /// while the inner future or body is polled.
    pub(crate) current: Option<(Arc<Shared>, u64)>,
    done: bool,
}

impl RecordGuard {
    /// Counts the request as started and enters it in the in-flight table. `detailed` says
    /// whether it keeps a detailed record (timeline, slow list, recent requests, event stream).
    pub(crate) fn start(
        shared: Arc<Shared>,
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
        let started_event = detailed.then(|| {
            http.events.push(
                start,
                LogKind::Started {
                    id,
                    method: method.clone(),
                    uri: uri.clone(),
                },
            )
        });
        http.in_flight.insert(
            id,
            Live {
                method: method.clone(),
                uri: uri.clone(),
                uri_set,
                start,
                status: None,
                bytes_read: 0,
                bytes_written: 0,
                client,
                stream: false,
                detailed,
                started_event,
                events: Vec::new(),
                events_dropped: 0,
            },
        );
        Self {
            id,
            start,
            status: None,
            bytes_written: 0,
            stream: false,
            polling: false,
            current: Some((Arc::clone(&shared), id)),
            done: false,
            shared,
        }
    }

    /// Records the response head. Returns `true` when the response has no body to wait for
    /// (a response to `HEAD`, `101`, `204`, `304`), in which case the request is finished.
    pub(crate) fn on_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        head: bool,
    ) -> bool {
        let http = &self.shared.http;
        self.status = Some(status);
        self.stream = status == StatusCode::SWITCHING_PROTOCOLS || is_event_stream(headers);
        let stream = self.stream;
        let named = http.in_flight.update(self.id, |live| {
            live.status = Some(status);
            live.stream = stream;
            Arc::clone(&live.uri_set)
        });
        let Some(named) = named else {
            // Withdrawn while it ran (a request to the stats routes): nothing more to record.
            self.done = true;
            return true;
        };
        let uri_set = named;
        http.count_status(status.as_u16(), &uri_set);
        if self.stream {
            http.streams_total.fetch_add(1, Ordering::Relaxed);
            uri_set.streams.fetch_add(1, Ordering::Relaxed);
        }
        let bodyless = head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        if bodyless {
            self.finish(Outcome::Completed);
        }
        bodyless
    }

    /// Counts response body bytes the server polled.
    pub(crate) fn on_data(&mut self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.bytes_written = self.bytes_written.saturating_add(bytes);
        let http = &self.shared.http;
        http.bytes_written_total.fetch_add(bytes, Ordering::Relaxed);
        http.in_flight.update(self.id, |live| {
            live.bytes_written = live.bytes_written.saturating_add(bytes);
        });
    }

    /// Finalizes the request; later calls do nothing.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let shared = &*self.shared;
        let http = &shared.http;
        let config = &shared.config;
        let end = Instant::now();
        let Some(live) = http.in_flight.remove(self.id) else {
            // Withdrawn while it ran: it leaves no trace.
            return;
        };
        let uri_set = Arc::clone(&live.uri_set);

        if self.status.is_none() && outcome == Outcome::Aborted {
            // The client left before any status existed: nginx's 499.
            self.status = StatusCode::from_u16(499).ok();
            http.count_status(499, &uri_set);
        }

        uri_set
            .bytes_read
            .fetch_add(live.bytes_read, Ordering::Relaxed);
        uri_set
            .bytes_written
            .fetch_add(self.bytes_written, Ordering::Relaxed);

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

        let elapsed = end.saturating_duration_since(self.start);
        let nanos = duration_nanos(elapsed);
        if !self.stream {
            let class = self.status.map_or(STATUS_CLASSES.len() - 1, |s| {
                usize::from(s.as_u16() / 100).saturating_sub(1)
            });
            http.latency.record_outcome(end, nanos, errored);
            uri_set.record_timing(end, nanos, class, errored);
        }

        if !live.detailed {
            return;
        }
        let mut live = live;
        http.events.push(
            end,
            LogKind::Finished {
                id: self.id,
                method: live.method.clone(),
                uri: live.uri.clone(),
                status: self.status,
                nanos,
                outcome,
            },
        );
        live.status = self.status;
        live.bytes_written = self.bytes_written;
        live.uri_set = uri_set;
        let finished = Finished {
            id: self.id,
            live,
            end,
            outcome,
        };
        let threshold = config.slow_threshold;
        if !self.stream && !threshold.is_zero() && elapsed > threshold && config.slow_capacity > 0 {
            http.push_slow(finished.clone(), config.slow_capacity);
        }
        http.recent.push(finished);
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
