//! The guard that carries a request's record between phases and finalizes it exactly once.

use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;

use super::grpc::{self, MessageCounter};
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
    status: Option<StatusCode>,
    bytes_written: u64,
    stream: bool,
    /// Whether the status is already counted (a stream's is, at its head).
    counted: bool,
    /// True while the inner future or body is being polled: if the guard is dropped in that
    /// state, the poll never returned, so it panicked.
    pub(crate) polling: bool,
    done: bool,
    /// Whether the request is followed as a gRPC call, and its `grpc-status` once seen (0 to
    /// 16, [`OTHER_CODE`] for any other code, [`NO_STATUS`] before one is seen): two bytes,
    /// so that the guard other requests move around keeps its size.
    grpc: bool,
    grpc_status: u8,
}

/// [`RecordGuard::grpc_status`] for a code outside gRPC's table (0 to 16).
const OTHER_CODE: u8 = 17;
/// [`RecordGuard::grpc_status`] before a `grpc-status` is seen.
const NO_STATUS: u8 = u8::MAX;

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
        trace_id: crate::store::exemplars::TraceId,
    ) -> Self {
        let start = Instant::now();
        let config = &shared.config;
        let key = shared.http.start(
            shard,
            id,
            &mut NewRequest {
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
            status: None,
            bytes_written: 0,
            stream: false,
            counted: false,
            polling: false,
            done: false,
            grpc: false,
            grpc_status: NO_STATUS,
        }
    }

    /// Follows the request as a gRPC call: its `grpc-status` and the messages of its
    /// response.
    pub(crate) fn watch_grpc(&mut self) {
        self.grpc = true;
    }

    /// Whether the request is followed as a gRPC call.
    #[inline]
    pub(crate) fn is_grpc(&self) -> bool {
        self.grpc
    }

    fn set_grpc_status(&mut self, code: Option<u32>) {
        if let Some(code) = code {
            self.grpc_status = u8::try_from(code)
                .ok()
                .filter(|c| *c < OTHER_CODE)
                .unwrap_or(OTHER_CODE);
        }
    }

    /// Follows a data frame of a gRPC call's response: once a second message starts, the
    /// call streams, and from then on is counted as a stream (its status counted now, its
    /// lifetime kept out of the latency statistics and the slow list).
    #[cold]
    #[inline(never)]
    pub(crate) fn on_grpc_data<D: bytes::Buf>(&mut self, messages: &mut MessageCounter, data: &D) {
        if !self.grpc || self.stream || messages.on_data(data) < 2 {
            return;
        }
        let (Some(status), Some(cur)) = (self.status, self.current.as_mut()) else {
            return;
        };
        let read = std::mem::take(&mut cur.unflushed_read);
        if cur.shared.http.stream_head(cur.key, cur.id, status, read) {
            self.stream = true;
            self.counted = true;
        }
    }

    /// Reads a gRPC call's `grpc-status` from its response's trailers.
    #[cold]
    #[inline(never)]
    pub(crate) fn on_trailers(&mut self, trailers: &HeaderMap) {
        if self.grpc {
            self.set_grpc_status(grpc::grpc_status(trailers));
        }
    }

    /// Reads a trailers-only gRPC response's `grpc-status` from its headers.
    #[cold]
    #[inline(never)]
    fn on_grpc_head(&mut self, headers: &HeaderMap) {
        self.set_grpc_status(grpc::grpc_status(headers));
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
        if self.grpc {
            // A response without a body (trailers-only) carries its status in its headers.
            self.on_grpc_head(headers);
        }
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
    pub(crate) fn finish(&mut self, mut outcome: Outcome) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        // A request withdrawn while it ran has no slot any more: ending it records nothing.
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if self.grpc {
            outcome = finish_grpc(self.grpc_status, cur, outcome);
        }
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

/// Counts a finished gRPC call's status; returns the outcome to record: a status other
/// than `OK` makes a completed call an error.
#[cold]
#[inline(never)]
fn finish_grpc(code: u8, cur: &PolledRequest, outcome: Outcome) -> Outcome {
    if code == NO_STATUS {
        return outcome;
    }
    if !cur.withdrawn() {
        cur.shared.http.grpc.count(u32::from(code));
    }
    // A gRPC call that failed, whatever its HTTP status said.
    if code != 0 && outcome == Outcome::Completed {
        Outcome::Error
    } else {
        outcome
    }
}
