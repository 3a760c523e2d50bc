//! A request's record: while it runs (in the in-flight table) and once it has finished (in
//! the slow list and the ring of recent requests).

use std::net::SocketAddr;
use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::Config;
use crate::store::uri_sets::UriSetEntry;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Still running.
    #[default]
    InFlight,
    /// The response body reached its end.
    Completed,
    /// The client went away: the response future or body was dropped before the end.
    Aborted,
    /// The inner service returned an error, or the response body failed.
    Error,
    /// A panic unwound through the layer.
    Panicked,
}

impl Outcome {
    /// The name used in JSON: `in_flight`, `completed`, `aborted`, `error` or `panicked`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Error => "error",
            Self::Panicked => "panicked",
        }
    }
}

/// A request that has started and not yet ended.
#[derive(Clone)]
pub(crate) struct InFlightRequest {
    pub(crate) method: Method,
    /// Path and query (kept whole; the query is only shown when enabled). Smaller than the
    /// whole `Uri`, which this record never needs.
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) uri_set: Arc<UriSetEntry>,
    pub(crate) start: Instant,
    pub(crate) status: Option<StatusCode>,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) stream: bool,
    /// Whether the request keeps a detailed record (sampled, and not `dont_record`).
    pub(crate) detailed: bool,
    /// What most requests do not have (a client address, a timeline): allocated only when
    /// needed, so that the record moved through the tables stays small.
    pub(crate) extras: Option<Box<RequestExtras>>,
}

/// The optional parts of a live request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestExtras {
    pub(crate) client: Option<SocketAddr>,
    /// Custom events of the timeline.
    pub(crate) events: Vec<TimelineEntry>,
    pub(crate) events_dropped: u32,
}

/// What a request's live record starts with; the rest starts empty.
pub(crate) struct NewRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) uri_set: Arc<UriSetEntry>,
    pub(crate) start: Instant,
    pub(crate) detailed: bool,
    pub(crate) extras: Option<Box<RequestExtras>>,
}

impl InFlightRequest {
    pub(crate) fn new(new: NewRequest<'_>) -> Self {
        Self {
            method: new.method.clone(),
            path: new.path,
            uri_set: new.uri_set,
            start: new.start,
            status: None,
            bytes_read: 0,
            bytes_written: 0,
            stream: false,
            detailed: new.detailed,
            extras: new.extras,
        }
    }

    /// Writes a new request's record over this one, field by field, in place.
    #[inline]
    pub(crate) fn restart(&mut self, new: NewRequest<'_>) {
        self.method.clone_from(new.method);
        self.path = new.path;
        self.uri_set = new.uri_set;
        self.start = new.start;
        self.status = None;
        self.bytes_read = 0;
        self.bytes_written = 0;
        self.stream = false;
        self.detailed = new.detailed;
        self.extras = new.extras;
    }

    /// The optional parts, created on first use.
    pub(crate) fn extras_mut(&mut self) -> &mut RequestExtras {
        self.extras.get_or_insert_with(Box::default)
    }
}

/// A custom event on a request's timeline.
#[derive(Debug, Clone)]
pub(crate) struct TimelineEntry {
    pub(crate) label: String,
    pub(crate) data: Option<String>,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

/// A finished request, kept whole so that its record is only built when someone reads it.
#[derive(Debug, Clone)]
pub(crate) struct FinishedRequest {
    pub(crate) id: u64,
    /// The live record, without its path (see `path`).
    pub(crate) live: InFlightRequest,
    /// The path as recorded, copied out of the request: a kept `PathAndQuery` would keep the
    /// server's whole read buffer alive, for as long as the request stays in the ring.
    pub(crate) path: StoredPath,
    pub(crate) end: Instant,
    pub(crate) outcome: Outcome,
}

impl FinishedRequest {
    /// Finishes `live`: copies its path out and lets go of the request's buffers.
    #[inline]
    pub(crate) fn new(
        id: u64,
        mut live: InFlightRequest,
        end: Instant,
        outcome: Outcome,
        config: &Config,
    ) -> Self {
        let path = StoredPath::new(raw_path(live.path.as_ref(), config));
        live.path = None;
        Self {
            id,
            live,
            path,
            end,
            outcome,
        }
    }

    /// Replaces this record with `live` finished, in place: the path is copied into the buffer
    /// already here, and the two live records swap places, so that `live` is left holding
    /// this record's old one (without a path) rather than anything being moved or dropped.
    #[inline]
    pub(crate) fn overwrite(
        &mut self,
        id: u64,
        live: &mut InFlightRequest,
        end: Instant,
        outcome: Outcome,
        config: &Config,
    ) {
        self.path.set(raw_path(live.path.as_ref(), config));
        live.path = None;
        std::mem::swap(&mut self.live, live);
        self.id = id;
        self.end = end;
        self.outcome = outcome;
    }
}

/// A path kept by value: inline up to 62 bytes (no allocation), on the heap beyond.
#[derive(Clone)]
pub(crate) enum StoredPath {
    Inline { len: u8, bytes: [u8; 62] },
    Heap(Box<str>),
}

impl StoredPath {
    #[inline]
    pub(crate) fn new(path: &str) -> Self {
        match u8::try_from(path.len()) {
            Ok(len) if path.len() <= 62 => {
                let mut bytes = [0u8; 62];
                bytes[..path.len()].copy_from_slice(path.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(path.into()),
        }
    }

    /// Replaces the path, reusing the inline buffer.
    #[inline]
    pub(crate) fn set(&mut self, path: &str) {
        match (self, u8::try_from(path.len())) {
            (Self::Inline { len, bytes }, Ok(n)) if path.len() <= bytes.len() => {
                if let Some(dst) = bytes.get_mut(..path.len()) {
                    dst.copy_from_slice(path.as_bytes());
                    *len = n;
                }
            }
            (this, _) => *this = Self::new(path),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Inline { len, bytes } => {
                std::str::from_utf8(bytes.get(..usize::from(*len)).unwrap_or_default())
                    .unwrap_or_default()
            }
            Self::Heap(path) => path,
        }
    }
}

impl std::fmt::Debug for StoredPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoredPath").field(&self.as_str()).finish()
    }
}

impl std::fmt::Debug for InFlightRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("uri_set", &self.uri_set.key)
            .field("status", &self.status)
            .field("detailed", &self.detailed)
            .field("extras", &self.extras)
            .finish_non_exhaustive()
    }
}

/// The path, with the query only when enabled, before cleaning.
#[inline]
pub(crate) fn raw_path<'a>(path: Option<&'a PathAndQuery>, config: &Config) -> &'a str {
    match (config.record_query, path) {
        (true, Some(pq)) => pq.as_str(),
        (false, Some(pq)) => pq.path(),
        (_, None) => "",
    }
}
