//! A request's record: while it runs (in the in-flight table) and once it has finished (in
//! the slow list and the ring of recent requests).

use std::borrow::Cow;
use std::net::SocketAddr;

use http::{Method, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::store::exemplars::TraceId;
use crate::store::uri_sets::UriSetRef;

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
    /// The path (with the query when enabled), copied out of the request and capped when the
    /// request starts: a reference into the request would keep the server's read buffer
    /// alive for as long as the request runs, and then for as long as its record is kept.
    pub(crate) path: StoredPath,
    pub(crate) uri_set: UriSetRef,
    pub(crate) start: Instant,
    pub(crate) status: Option<StatusCode>,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) stream: bool,
    /// Whether the request keeps a detailed record (sampled, and not `dont_record`).
    pub(crate) detailed: bool,
    /// The W3C trace id of a valid `traceparent` header, or none.
    pub(crate) trace_id: TraceId,
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
    pub(crate) path: CappedPath<'a>,
    pub(crate) uri_set: UriSetRef,
    pub(crate) start: Instant,
    pub(crate) detailed: bool,
    pub(crate) trace_id: TraceId,
    pub(crate) extras: Option<Box<RequestExtras>>,
}

impl InFlightRequest {
    pub(crate) fn new(new: &mut NewRequest<'_>) -> Self {
        Self {
            method: new.method.clone(),
            path: StoredPath::new(new.path),
            // A new slot (rare): `new` keeps its reference until the caller drops it.
            uri_set: std::sync::Arc::clone(&new.uri_set),
            start: new.start,
            status: None,
            bytes_read: 0,
            bytes_written: 0,
            stream: false,
            detailed: new.detailed,
            trace_id: new.trace_id,
            extras: new.extras.take(),
        }
    }

    /// Writes a new request's record over this one, field by field, in place.
    #[inline]
    pub(crate) fn restart(&mut self, new: &mut NewRequest<'_>) {
        self.method.clone_from(new.method);
        self.path.set(new.path);
        // The slot's previous set goes to `new`, which the caller drops.
        std::mem::swap(&mut self.uri_set, &mut new.uri_set);
        self.start = new.start;
        self.status = None;
        self.bytes_read = 0;
        self.bytes_written = 0;
        self.stream = false;
        self.detailed = new.detailed;
        self.trace_id = new.trace_id;
        self.extras = new.extras.take();
    }

    /// The optional parts, created on first use.
    pub(crate) fn extras_mut(&mut self) -> &mut RequestExtras {
        self.extras.get_or_insert_with(Box::default)
    }
}

/// An entry of a request's timeline.
#[derive(Debug, Clone)]
pub(crate) struct TimelineEntry {
    /// What the entry shows: a manual event's label, a span's name, an event's message.
    pub(crate) label: Cow<'static, str>,
    pub(crate) data: Option<String>,
    pub(crate) start: Instant,
    /// The end; a span still open has its start here until it closes.
    pub(crate) end: Instant,
    pub(crate) source: Source,
    /// The `tracing` target of a span or event; empty for a manual event.
    pub(crate) target: &'static str,
    /// The index of the entry it nests under (a span's parent span, an event's span).
    pub(crate) parent: Option<u32>,
    /// Whether it has a duration (a span, an event carrying its elapsed time, a manual event
    /// with a start) rather than being an instant: only timed entries are calls.
    pub(crate) timed: bool,
    /// A span that has not closed yet.
    pub(crate) open: bool,
}

impl TimelineEntry {
    /// The name the entry is totalled under: a span's name, an event's target, a manual
    /// event's label.
    pub(crate) fn call_name(&self) -> &str {
        match self.source {
            Source::Event => self.target,
            Source::Span | Source::Manual => &self.label,
        }
    }
}

/// Where a timeline entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// [`RequestStats`](crate::RequestStats)'s event API.
    Manual,
    /// A `tracing` span that was created while the request was current.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Span,
    /// A `tracing` event.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Event,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Span => "span",
            Self::Event => "event",
        }
    }
}

/// A finished request, kept whole so that its record is only built when someone reads it.
#[derive(Debug, Clone)]
pub(crate) struct FinishedRequest {
    pub(crate) id: u64,
    /// The live record, path included.
    pub(crate) live: InFlightRequest,
    pub(crate) end: Instant,
    pub(crate) outcome: Outcome,
}

impl FinishedRequest {
    #[inline]
    pub(crate) fn new(id: u64, live: InFlightRequest, end: Instant, outcome: Outcome) -> Self {
        Self {
            id,
            live,
            end,
            outcome,
        }
    }

    /// Replaces this record with `live` finished, in place: what owns memory (method, a path
    /// on the heap, URI set, optional parts) changes places with this record's, so that
    /// nothing is dropped here and `live`'s slot keeps the old parts until its next request
    /// writes over them; the rest is copied.
    #[inline]
    pub(crate) fn overwrite(
        &mut self,
        id: u64,
        live: &mut InFlightRequest,
        end: Instant,
        outcome: Outcome,
    ) {
        let old = &mut self.live;
        // What owns memory changes hands; the rest is copied (`live` is a free slot's from
        // here on, written over field by field when the slot is taken again).
        std::mem::swap(&mut old.method, &mut live.method);
        old.path.take_from(&mut live.path);
        std::mem::swap(&mut old.uri_set, &mut live.uri_set);
        std::mem::swap(&mut old.extras, &mut live.extras);
        old.start = live.start;
        old.status = live.status;
        old.bytes_read = live.bytes_read;
        old.bytes_written = live.bytes_written;
        old.stream = live.stream;
        old.detailed = live.detailed;
        old.trace_id = live.trace_id;
        self.id = id;
        self.end = end;
        self.outcome = outcome;
    }
}

/// A request's path as it is to be stored: at most `max_string_len` characters of it
/// (a slice of the request's own), and whether it was cut there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CappedPath<'a> {
    kept: &'a str,
    cut: bool,
}

impl<'a> CappedPath<'a> {
    /// The path of `uri`, with the query when `query`, capped at `max_chars` characters.
    #[inline]
    pub(crate) fn of(uri: &'a Uri, query: bool, max_chars: usize) -> Self {
        let path = match (query, uri.path_and_query()) {
            (true, Some(pq)) => pq.as_str(),
            _ => uri.path(),
        };
        Self::new(path, max_chars)
    }

    /// `path` capped at `max_chars` characters.
    #[inline]
    pub(crate) fn new(path: &'a str, max_chars: usize) -> Self {
        // No more bytes than the cap: no more characters either (the usual case).
        if path.len() <= max_chars {
            return Self {
                kept: path,
                cut: false,
            };
        }
        Self::cut(path, max_chars)
    }

    #[cold]
    fn cut(path: &'a str, max_chars: usize) -> Self {
        match path.char_indices().nth(max_chars) {
            Some((at, _)) => Self {
                kept: path.get(..at).unwrap_or_default(),
                cut: true,
            },
            None => Self {
                kept: path,
                cut: false,
            },
        }
    }

    /// Its length in bytes, once stored.
    #[inline]
    fn len(&self) -> usize {
        self.kept.len() + if self.cut { ELLIPSIS.len() } else { 0 }
    }
}

/// What ends a path that was cut, as [`crate::sanitize::clean`] ends a string it cuts: the
/// report shows a stored path as it was stored.
const ELLIPSIS: &str = "…";

/// A path kept by value: inline up to 62 bytes (no allocation), on the heap beyond.
#[derive(Clone)]
pub(crate) enum StoredPath {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

/// Bytes of a path kept inline.
const INLINE: usize = 62;

impl StoredPath {
    /// An empty path, inline.
    const EMPTY: Self = Self::Inline {
        len: 0,
        bytes: [0; INLINE],
    };

    #[inline]
    pub(crate) fn new(path: CappedPath<'_>) -> Self {
        let mut stored = Self::EMPTY;
        stored.set(path);
        stored
    }

    /// Replaces the path, reusing the inline buffer: one copy, no allocation up to
    /// [`INLINE`] bytes.
    #[inline]
    pub(crate) fn set(&mut self, path: CappedPath<'_>) {
        let total = path.len();
        match (&mut *self, u8::try_from(total)) {
            (Self::Inline { len, bytes }, Ok(n)) if total <= INLINE => {
                if let Some((kept, rest)) = bytes.split_at_mut_checked(path.kept.len()) {
                    kept.copy_from_slice(path.kept.as_bytes());
                    if path.cut {
                        if let Some(end) = rest.get_mut(..ELLIPSIS.len()) {
                            end.copy_from_slice(ELLIPSIS.as_bytes());
                        }
                    }
                    *len = n;
                }
            }
            (Self::Heap(_), Ok(_)) if total <= INLINE => {
                *self = Self::EMPTY;
                self.set(path);
            }
            _ => self.set_on_heap(path),
        }
    }

    #[cold]
    fn set_on_heap(&mut self, path: CappedPath<'_>) {
        let mut heap = String::with_capacity(path.len());
        heap.push_str(path.kept);
        if path.cut {
            heap.push_str(ELLIPSIS);
        }
        *self = Self::Heap(heap.into_boxed_str());
    }

    /// Takes `other`'s path: an inline path is copied (only its bytes), a path on the heap
    /// changes places with this one.
    #[inline]
    pub(crate) fn take_from(&mut self, other: &mut Self) {
        match (&mut *self, &*other) {
            (
                Self::Inline { len, bytes },
                Self::Inline {
                    len: other_len,
                    bytes: other_bytes,
                },
            ) => {
                let n = usize::from(*other_len);
                if let (Some(to), Some(from)) = (bytes.get_mut(..n), other_bytes.get(..n)) {
                    to.copy_from_slice(from);
                    *len = *other_len;
                }
            }
            _ => std::mem::swap(self, other),
        }
    }

    /// Lets go of a path kept on the heap (an inline one costs nothing to keep).
    #[inline]
    pub(crate) fn release(&mut self) {
        if matches!(self, Self::Heap(_)) {
            *self = Self::EMPTY;
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
            .field("uri_set", &self.uri_set.key())
            .field("status", &self.status)
            .field("detailed", &self.detailed)
            .field("extras", &self.extras)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(path: &str, max_chars: usize) -> StoredPath {
        StoredPath::new(CappedPath::new(path, max_chars))
    }

    #[test]
    fn a_path_up_to_the_inline_size_is_kept_inline() {
        let path = format!("/{}", "p".repeat(INLINE - 1));
        let kept = stored(&path, 256);
        assert!(matches!(kept, StoredPath::Inline { .. }), "{kept:?}");
        assert_eq!(kept.as_str(), path);
        let longer = format!("{path}q");
        let kept = stored(&longer, 256);
        assert!(matches!(kept, StoredPath::Heap(_)), "{kept:?}");
        assert_eq!(kept.as_str(), longer);
    }

    #[test]
    fn a_path_is_capped_on_a_character_boundary_when_stored() {
        assert_eq!(stored("/abcdef", 4).as_str(), "/abc…");
        assert_eq!(stored("/abc", 4).as_str(), "/abc");
        // Six bytes, four characters: within the cap.
        assert_eq!(stored("/ééa", 4).as_str(), "/ééa");
        assert_eq!(stored("/éééé", 4).as_str(), "/ééé…");
        let long = format!("/{}", "x".repeat(60_000));
        let kept = stored(&long, 256);
        assert_eq!(kept.as_str().chars().count(), 257);
        assert_eq!(kept.as_str(), format!("/{}…", "x".repeat(255)));
        // What the report then cleans is what was stored.
        assert_eq!(crate::sanitize::clean(kept.as_str(), 256), kept.as_str());
    }

    #[test]
    fn the_query_is_kept_only_when_asked_for() {
        let uri = Uri::from_static("/a/b?c=d");
        assert_eq!(CappedPath::of(&uri, false, 256).kept, "/a/b");
        assert_eq!(CappedPath::of(&uri, true, 256).kept, "/a/b?c=d");
        let uri = Uri::from_static("http://example.com");
        assert_eq!(CappedPath::of(&uri, true, 256).kept, "/");
    }

    #[test]
    fn setting_a_path_reuses_the_inline_buffer_and_lets_go_of_the_heap() {
        let mut kept = stored("/first/longer", 256);
        kept.set(CappedPath::new("/b", 256));
        assert_eq!(kept.as_str(), "/b");
        let long = format!("/{}", "y".repeat(100));
        kept.set(CappedPath::new(&long, 256));
        assert!(matches!(kept, StoredPath::Heap(_)));
        assert_eq!(kept.as_str(), long);
        kept.set(CappedPath::new("/short", 256));
        assert!(matches!(kept, StoredPath::Inline { .. }));
        assert_eq!(kept.as_str(), "/short");
        kept.set(CappedPath::new(&long, 256));
        kept.release();
        assert!(matches!(kept, StoredPath::Inline { len: 0, .. }));
        let mut inline = stored("/kept", 256);
        inline.release();
        assert_eq!(
            inline.as_str(),
            "/kept",
            "an inline path costs nothing to keep"
        );
    }

    #[test]
    fn setting_a_short_path_allocates_nothing() {
        let mut kept = stored("/", 256);
        let uri = Uri::from_static("/users/42?page=1");
        let info = allocation_counter::measure(|| {
            kept.set(CappedPath::of(&uri, true, 256));
        });
        assert_eq!(info.count_total, 0);
        assert_eq!(kept.as_str(), "/users/42?page=1");
    }
}
