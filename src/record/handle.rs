use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use tokio::time::Instant;

use super::service::StoreRef;
use crate::sanitize;
use crate::store::in_flight::SlotKey;
use crate::store::request::{Source, TimelineEntry};
#[cfg(feature = "tracing")]
use crate::store::Store;

/// The current request's record, for handlers.
///
/// Inside a recorded request's future, [`RequestStats::current`] returns it, and with the
/// `axum` feature it is an extractor; with [`StatsBuilder::request_extension`] the layer also
/// puts it in the request extensions. When the request is not recorded (recording
/// paused, or the request filtered out) every method does nothing, so a handler never fails
/// because of statistics.
///
/// [`StatsBuilder::request_extension`]: crate::StatsBuilder::request_extension
///
/// # Example
///
/// ```
/// use axum::{routing::get, Router};
/// use tower::ServiceExt;
/// use tower_stats::{RequestStats, Stats};
///
/// async fn show_user(stats: RequestStats) -> &'static str {
///     stats.set_uri_set("users");
///     let lookup = stats.start_event("db.lookup");
///     // … query the database …
///     lookup.finish_with(&serde_json::json!({ "rows": 1 }));
///     stats.event("rendered").ok();
///     "a user"
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let stats = Stats::new();
/// let app: Router = Router::new().route("/users/{id}", get(show_user)).layer(stats.layer());
/// let response = app
///     .oneshot(http::Request::get("/users/7").body(axum::body::Body::empty()).unwrap())
///     .await
///     .unwrap();
/// # use http_body_util::BodyExt;
/// response.into_body().collect().await.unwrap();
///
/// let recent = stats.recent_requests();
/// assert_eq!(recent[0].uri_set, "GET users");
/// assert_eq!(recent[0].events[0].label, "db.lookup");
/// # }
/// ```
#[derive(Clone, Default)]
pub struct RequestStats {
    inner: Option<(StoreRef, u64, SlotKey)>,
}

impl fmt::Debug for RequestStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestStats")
            .field("id", &self.id())
            .finish()
    }
}

/// Why a custom event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// An end was given without a start.
    EndWithoutStart,
    /// The end is before the start.
    EndBeforeStart,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EndWithoutStart => "a custom event with an end needs a start",
            Self::EndBeforeStart => "a custom event cannot end before it starts",
        })
    }
}

impl std::error::Error for EventError {}

/// A timed custom event for a request's timeline (appstats' `record_custom_event`).
///
/// Without a start and an end, the event is an instant at the moment it is recorded; with
/// only a start, it ends when it is recorded. An end without a start is an error.
#[derive(Debug, Clone)]
#[must_use]
pub struct CustomEvent {
    label: String,
    data: Option<String>,
    start: Option<Instant>,
    end: Option<Instant>,
}

impl CustomEvent {
    /// An event named `label`.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            data: None,
            start: None,
            end: None,
        }
    }

    /// Attaches data, rendered as compact JSON and capped in length. Data that fails to
    /// serialize is shown as `null`.
    pub fn data(mut self, data: &impl Serialize) -> Self {
        self.data = Some(serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned()));
        self
    }

    /// When the event started (tokio's clock; a `std::time::Instant` converts).
    pub fn start(mut self, at: impl Into<Instant>) -> Self {
        self.start = Some(at.into());
        self
    }

    /// When the event ended.
    pub fn end(mut self, at: impl Into<Instant>) -> Self {
        self.end = Some(at.into());
        self
    }
}

/// A custom event in progress, from [`RequestStats::start_event`]; finish it to record it.
#[derive(Debug)]
#[must_use = "the event is recorded when it is finished"]
pub struct EventTimer {
    stats: RequestStats,
    event: CustomEvent,
}

impl EventTimer {
    /// Ends the event now and records it.
    pub fn finish(self) {
        let event = self.event.end(Instant::now());
        // Start and end are both set, and end is not before start.
        let _ = self.stats.record_event(event);
    }

    /// Ends the event now with `data` and records it.
    pub fn finish_with(self, data: &impl Serialize) {
        let event = self.event.data(data).end(Instant::now());
        let _ = self.stats.record_event(event);
    }
}

/// What the thread-local slot holds for the request being polled.
#[derive(Debug)]
pub(crate) struct PolledRequest {
    pub(crate) shared: StoreRef,
    pub(crate) id: u64,
    /// Where the request is kept in the in-flight table; [`SlotKey::NONE`] once it was taken
    /// back out of the statistics while it ran (a request to the stats routes), after which
    /// nothing more of it is counted, its bytes included.
    pub(crate) key: SlotKey,
    /// Request body bytes read while polled, not yet added to the live record.
    pub(crate) unflushed_read: u64,
    /// Whether the request keeps a detailed record (its timeline): cleared by
    /// [`RequestStats::dont_record`] while the request is polled.
    pub(crate) detailed: bool,
}

impl PolledRequest {
    /// Whether the request was withdrawn while it ran.
    #[inline]
    pub(crate) fn withdrawn(&self) -> bool {
        self.key == SlotKey::NONE
    }
}

thread_local! {
    /// The request whose inner future (or body) is being polled on this thread.
    static CURRENT: Cell<Option<PolledRequest>> = const { Cell::new(None) };
}

/// Makes a request the current one while its inner future or body is polled, and restores
/// the previous one when dropped (also when a poll unwinds).
///
/// The request's entry and the thread's slot trade places, and trade back: while the request
/// is current, its guard holds whatever was current before (usually nothing).
pub(crate) struct PollScope<'a> {
    token: &'a Cell<Option<PolledRequest>>,
}

impl<'a> PollScope<'a> {
    /// Swaps `token` into the thread's current slot; no reference count changes hands.
    #[inline]
    pub(crate) fn enter(token: &'a mut Option<PolledRequest>) -> Self {
        let token = Cell::from_mut(token);
        CURRENT.with(|c| c.swap(token));
        Self { token }
    }
}

impl Drop for PollScope<'_> {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.swap(self.token));
    }
}

/// Counts `n` request body bytes of request `id` in the thread-local slot, if that request
/// is the one being polled (then no lock is needed): `Some(true)` when counted there,
/// `Some(false)` when the request was withdrawn (the bytes count nowhere), `None` when the
/// request is not the one being polled.
#[inline]
pub(crate) fn count_read_locally(id: u64, n: u64) -> Option<bool> {
    CURRENT.with(|c| {
        let mut current = c.take();
        let hit = match current.as_mut() {
            Some(cur) if cur.id == id => {
                let withdrawn = cur.withdrawn();
                if !withdrawn {
                    cur.unflushed_read = cur.unflushed_read.saturating_add(n);
                }
                Some(!withdrawn)
            }
            _ => None,
        };
        c.set(current);
        hit
    })
}

/// The request being polled on this thread, if it belongs to `shared` and keeps a detailed
/// record: its id and slot. What the `tracing` layer links a new span or event to.
#[cfg(feature = "tracing")]
#[inline]
pub(crate) fn current_detailed(shared: &Arc<Store>) -> Option<(u64, SlotKey)> {
    CURRENT.with(|c| {
        let current = c.take();
        let found = match &current {
            Some(cur)
                if cur.detailed
                    && !cur.withdrawn()
                    && std::ptr::eq::<Store>(&***cur.shared, &**shared) =>
            {
                Some((cur.id, cur.key))
            }
            _ => None,
        };
        c.set(current);
        found
    })
}

impl RequestStats {
    pub(crate) fn new(shared: StoreRef, id: u64, key: SlotKey) -> Self {
        Self {
            inner: Some((shared, id, key)),
        }
    }

    /// The request being served on this thread: inside the future (or response body) of a
    /// recorded request, the handle to it; elsewhere a handle that does nothing.
    ///
    /// Handlers usually take [`RequestStats`] as an axum extractor, which calls this. Take the
    /// handle at the start of the handler and keep it: a task spawned by the handler runs
    /// outside the request's future.
    #[must_use]
    pub fn current() -> Self {
        CURRENT.with(|c| {
            let current = c.take();
            let handle = current
                .as_ref()
                .map(|cur| Self::new(Arc::clone(&cur.shared), cur.id, cur.key))
                .unwrap_or_default();
            c.set(current);
            handle
        })
    }

    /// The request's id, or `None` when the request is not recorded. Unique within the
    /// [`Stats`](crate::Stats) value; increasing along the requests one thread starts, not
    /// across threads.
    #[must_use]
    pub fn id(&self) -> Option<u64> {
        self.inner.as_ref().map(|(_, id, _)| *id)
    }

    /// Whether the request is recorded.
    #[must_use]
    pub fn is_recording(&self) -> bool {
        self.inner.is_some()
    }

    /// Records an instant event named `label`.
    pub fn event(&self, label: impl Into<String>) -> Result<(), EventError> {
        self.record_event(CustomEvent::new(label))
    }

    /// Starts a timed event; it is recorded when the returned timer is finished.
    pub fn start_event(&self, label: impl Into<String>) -> EventTimer {
        EventTimer {
            stats: self.clone(),
            event: CustomEvent::new(label).start(Instant::now()),
        }
    }

    /// Adds a custom event to the request's timeline. Events beyond the per-request limit,
    /// and events of requests without a detailed record, are dropped (and `Ok`).
    pub fn record_event(&self, event: CustomEvent) -> Result<(), EventError> {
        let now = Instant::now();
        let (start, end) = match (event.start, event.end) {
            (None, Some(_)) => return Err(EventError::EndWithoutStart),
            (None, None) => (now, now),
            (Some(start), None) => (start, now.max(start)),
            (Some(start), Some(end)) if end < start => return Err(EventError::EndBeforeStart),
            (Some(start), Some(end)) => (start, end),
        };
        let Some((shared, id, key)) = &self.inner else {
            return Ok(());
        };
        let cap = shared.config.max_string_len;
        let entry = TimelineEntry {
            label: sanitize::clean(&event.label, cap).into(),
            data: event.data.map(|d| sanitize::clean(&d, cap)),
            start,
            end,
            source: Source::Manual,
            target: "",
            parent: None,
            timed: event.start.is_some(),
            open: false,
        };
        shared
            .http
            .add_timeline_entry(*key, *id, entry, shared.config.max_events_per_request);
        Ok(())
    }

    /// Counts the request in the URI set `label` (with the request's method) instead of the
    /// one chosen when it started. Takes effect for everything recorded when it ends.
    pub fn set_uri_set(&self, label: impl Into<Cow<'static, str>>) {
        let Some((shared, id, key)) = &self.inner else {
            return;
        };
        let label = label.into();
        let label = sanitize::clean(&label, shared.config.max_string_len);
        shared.http.move_to_uri_set(*key, *id, &label);
    }

    /// Leaves the request out of the detailed records: no timeline, no slow-list entry, no
    /// recent-requests entry and no event-stream entries. Counters and histograms still count
    /// it, because it did happen; to leave a route out of everything, use the filters.
    pub fn dont_record(&self) {
        let Some((shared, id, key)) = &self.inner else {
            return;
        };
        // The request being polled (the usual case) links no more spans from now on.
        CURRENT.with(|c| {
            let mut current = c.take();
            let this = |cur: &&mut PolledRequest| cur.id == *id && Arc::ptr_eq(&cur.shared, shared);
            if let Some(cur) = current.as_mut().filter(this) {
                cur.detailed = false;
            }
            c.set(current);
        });
        shared.http.drop_details(*key, *id);
    }
}

impl RequestStats {
    #[cfg(feature = "axum")]
    /// Takes the request back out of every statistic, as if it had never been recorded: used
    /// for requests to the stats routes themselves.
    pub(crate) fn withdraw(&self) {
        let Some((shared, id, key)) = &self.inner else {
            return;
        };
        // The request being polled (the usual case) is marked, so that its guard counts
        // nothing more of it: its response body's bytes, the request body bytes still to read.
        let unflushed = CURRENT.with(|c| {
            let mut current = c.take();
            let n = match current.as_mut() {
                Some(cur) if cur.id == *id => {
                    cur.key = SlotKey::NONE;
                    std::mem::take(&mut cur.unflushed_read)
                }
                _ => 0,
            };
            c.set(current);
            n
        });
        shared.http.withdraw(*key, *id, unflushed);
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestStats {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Self>()
            .cloned()
            .unwrap_or_else(Self::current))
    }
}
