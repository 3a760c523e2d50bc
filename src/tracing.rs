//! Request timelines from `tracing` (feature `tracing`): [`StatsTracingLayer`], a
//! [`tracing_subscriber::Layer`] that puts the spans and events of each recorded request on
//! its timeline, as appstats put every RPC of a request on its.
//!
//! # What lands on a timeline
//!
//! - A **span** created while a recorded request is being polled (a handler's
//!   `#[instrument]`ed function, a database or HTTP client's own spans) takes a slot on that
//!   request's timeline when it is created, and gets its duration when it closes: its name,
//!   target and fields (as `name=value`, capped like every string), its offset from the
//!   request's start, and the span it was created in as its parent, so the waterfall nests.
//!   A span created inside one of these spans belongs to the same request wherever it is
//!   created, so work in a `tokio::spawn`ed task counts for the request when the task runs
//!   in a span created inside it (`.instrument(span)`, `.in_current_span()`).
//! - An **event** is an instant, labelled with its message (or sqlx's `summary`), its other
//!   fields as data. An event that carries its elapsed time is a timed entry ending when it
//!   was emitted: a numeric `elapsed_secs` (sqlx's query log has it), `elapsed_ms`,
//!   `elapsed_us` or `elapsed_ns` field (or `_seconds`, `_millis`, `_micros`, `_nanos`).
//!
//! Each timed entry is a call: the request's page totals them by name (a span's name, an
//! event's target such as `sqlx::query`), and the call statistics count them across
//! requests when the request finishes. A span that has not closed by then (a spawned task
//! still running, or a clone of the span still held elsewhere: sqlx's SQLite thread keeps the
//! span a query was issued in until just after the query) stays on the timeline as `open`,
//! running to the request's end, and is not counted as a call.
//!
//! Requests that are not recorded (recording paused, filtered out, sampled out,
//! [`dont_record`](crate::RequestStats::dont_record)) get nothing and cost no more than a
//! thread-local look-up and a look-up of the parent span's link per span or event (and of
//! the span's own link when it closes); spans and events outside any request cost the same.
//! A request that opens no span and emits no event costs nothing more with the layer
//! installed. A request's timeline keeps at most
//! [`max_events_per_request`](crate::StatsBuilder::max_events_per_request) entries and
//! counts the ones it drops.
//!
//! A span linked to a request allocates nothing beyond its timeline slot (and its fields'
//! text, when it has fields): the layer keeps the links in a table of 4,096 entries (128 KiB)
//! allocated when the layer is created, written and read without a lock. Only when more
//! linked spans are open at once than its entries hold (or when a span's few candidate
//! entries are all taken) does a link go to the subscriber's span extensions, which costs
//! one small allocation for that span; nothing is lost. A clone of the layer has a table of
//! its own, since each subscriber numbers its spans itself.
//!
//! The layer never filters: `enabled` and `register_callsite` stay at their defaults, so the
//! other layers of the subscriber see everything they saw before. Which spans and events it
//! is given is the subscriber's choice; with per-layer filters it can be given more than the
//! console shows (sqlx logs its queries at `DEBUG`).
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//! use tower_stats::Stats;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! #[tracing::instrument]
//! async fn load_user(id: u32) -> &'static str {
//!     tracing::info!(rows = 1, "loaded");
//!     "a user"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let stats = Stats::new();
//! let subscriber = tracing_subscriber::registry().with(stats.tracing_layer());
//! let _guard = tracing::subscriber::set_default(subscriber);
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| load_user(7)))
//!     .layer(stats.layer());
//! let response = app
//!     .oneshot(http::Request::get("/users/7").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! # use http_body_util::BodyExt;
//! response.into_body().collect().await.unwrap();
//!
//! let request = &stats.recent_requests()[0];
//! assert_eq!(request.events[0].label, "load_user");
//! assert_eq!(request.events[0].source, "span");
//! assert_eq!(request.events[0].data.as_deref(), Some("id=7"));
//! assert_eq!(request.events[1].label, "loaded");
//! assert_eq!(request.events[1].parent, Some(0));
//! assert_eq!(stats.snapshot().http.calls["load_user"].count, 1);
//! # }
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event, Subscriber};
use tokio::time::Instant;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

use crate::record::current_detailed;
use crate::sanitize::is_hidden;
use crate::store::request::{Source, TimelineEntry};
use crate::store::Store;

use links::{SpanLink, SpanLinks};

mod links;

/// A [`tracing_subscriber::Layer`] that puts the spans and events of each recorded request on
/// its timeline; from [`Stats::tracing_layer`](crate::Stats::tracing_layer).
///
/// See the [module docs](self) for what it records. A clone records into the same
/// statistics with a table of span links of its own (128 KiB), for another subscriber.
pub struct StatsTracingLayer {
    shared: Arc<Store>,
    /// The request each linked span belongs to, by span id.
    links: SpanLinks,
}

impl Clone for StatsTracingLayer {
    fn clone(&self) -> Self {
        // Span ids are the subscriber's: another subscriber's spans need another table.
        Self::new(Arc::clone(&self.shared))
    }
}

impl fmt::Debug for StatsTracingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsTracingLayer").finish_non_exhaustive()
    }
}

impl StatsTracingLayer {
    pub(crate) fn new(shared: Arc<Store>) -> Self {
        Self {
            shared,
            links: SpanLinks::new(),
        }
    }

    /// The link of span `id`: in the table, or else in its extensions when some link is
    /// kept there.
    #[inline]
    fn link<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<SpanLink>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.links.get(id.into_u64()).or_else(|| {
            if !self.links.spilled() {
                return None;
            }
            ctx.span(id)
                .and_then(|s| s.extensions().get::<SpanLink>().copied())
        })
    }

    /// The link of `span`, as [`link`](Self::link) finds it.
    #[inline]
    fn link_of<S>(&self, span: &SpanRef<'_, S>) -> Option<SpanLink>
    where
        S: for<'a> LookupSpan<'a>,
    {
        self.links.get(span.id().into_u64()).or_else(|| {
            if !self.links.spilled() {
                return None;
            }
            span.extensions().get::<SpanLink>().copied()
        })
    }

    /// The request a new span or event belongs to, and the timeline slot it nests under: the
    /// request being polled on this thread, or else the request of the span it happens in.
    fn request_of<S>(&self, parent: Option<SpanRef<'_, S>>) -> Option<SpanLink>
    where
        S: for<'a> LookupSpan<'a>,
    {
        let polled = current_detailed(&self.shared);
        let link = parent.and_then(|p| self.link_of(&p));
        match (polled, link) {
            (Some((id, key)), Some(link)) if link.id == id && link.key == key => Some(link),
            (Some((id, key)), _) => Some(SpanLink {
                id,
                key,
                index: u32::MAX,
            }),
            (None, link) => link,
        }
    }
}

impl<S> Layer<S> for StatsTracingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = if attrs.is_contextual() {
            ctx.lookup_current()
        } else {
            attrs.parent().and_then(|p| ctx.span(p))
        };
        let Some(request) = self.request_of(parent) else {
            return;
        };
        let meta = attrs.metadata();
        let config = &self.shared.config;
        let data = if attrs.fields().is_empty() {
            None
        } else {
            let mut fields = Fields::new(config.max_string_len);
            attrs.record(&mut fields);
            fields.finish()
        };
        let now = Instant::now();
        let entry = TimelineEntry {
            label: Cow::Borrowed(meta.name()),
            data,
            start: now,
            end: now,
            source: Source::Span,
            target: meta.target(),
            parent: (request.index != u32::MAX).then_some(request.index),
            timed: true,
            open: true,
        };
        let Some(index) = self.shared.http.push_timeline_entry(
            request.key,
            request.id,
            entry,
            config.max_events_per_request,
        ) else {
            return;
        };
        let link = SpanLink { index, ..request };
        if self.links.insert(id.into_u64(), link) {
            return;
        }
        // More linked spans open than the table holds: the span keeps its link itself.
        if let Some(span) = ctx.span(id) {
            self.links.spill();
            span.extensions_mut().insert(link);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(link) = self.link(id, &ctx) else {
            return;
        };
        let cap = self.shared.config.max_string_len;
        let mut fields = Fields::new(cap);
        values.record(&mut fields);
        if let Some(text) = fields.finish() {
            self.shared
                .http
                .add_timeline_fields(link.key, link.id, link.index, &text, cap);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(request) = self.request_of(ctx.event_span(event)) else {
            return;
        };
        let meta = event.metadata();
        let config = &self.shared.config;
        let mut fields = EventFields {
            message: None,
            summary: None,
            elapsed: None,
            elapsed_text: None,
            numeric_elapsed: meta
                .fields()
                .iter()
                .any(|f| ELAPSED_FIELDS.iter().any(|(name, _)| f.name() == *name)),
            rest: Fields::new(config.max_string_len),
            cap: config.max_string_len,
        };
        event.record(&mut fields);
        if let (None, Some(text)) = (fields.elapsed, fields.elapsed_text.take()) {
            let field = meta.fields().field("elapsed");
            if let Some(field) = field {
                fields.rest.record_str(&field, &text);
            }
        }
        let label = match fields.message.or(fields.summary) {
            Some(label) => Cow::Owned(label),
            None => Cow::Borrowed(meta.target()),
        };
        let now = Instant::now();
        let start = fields
            .elapsed
            .and_then(|elapsed| now.checked_sub(elapsed))
            .unwrap_or(now);
        let entry = TimelineEntry {
            label,
            data: fields.rest.finish(),
            start,
            end: now,
            source: Source::Event,
            target: meta.target(),
            parent: (request.index != u32::MAX).then_some(request.index),
            timed: fields.elapsed.is_some(),
            open: false,
        };
        let _ = self.shared.http.push_timeline_entry(
            request.key,
            request.id,
            entry,
            config.max_events_per_request,
        );
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let link = self.links.remove(id.into_u64()).or_else(|| {
            if !self.links.spilled() {
                return None;
            }
            let link = ctx.span(&id)?.extensions_mut().remove::<SpanLink>()?;
            self.links.unspill();
            Some(link)
        });
        let Some(link) = link else {
            return;
        };
        self.shared
            .http
            .close_timeline_entry(link.key, link.id, link.index, Instant::now());
    }
}

/// Fields as `name=value` pairs separated by spaces, cleaned and capped as they are written:
/// a long value is never copied whole.
struct Fields {
    text: String,
    left: usize,
    cut: bool,
}

impl Fields {
    fn new(cap: usize) -> Self {
        Self {
            text: String::new(),
            left: cap,
            cut: false,
        }
    }

    /// Writes `name=` and then the value with `value`.
    fn add(&mut self, field: &Field, value: impl FnOnce(&mut Self) -> fmt::Result) {
        if self.cut {
            return;
        }
        if !self.text.is_empty() {
            let _ = self.write_char(' ');
        }
        let _ = self.write_str(field.name());
        let _ = self.write_char('=');
        let _ = value(self);
    }

    fn finish(mut self) -> Option<String> {
        if self.text.is_empty() {
            return None;
        }
        if self.cut {
            self.text.push('…');
        }
        Some(self.text)
    }
}

impl fmt::Write for Fields {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.left == 0 {
                self.cut = true;
                // Stops the formatting of this value.
                return Err(fmt::Error);
            }
            self.left -= 1;
            self.text.push(match c {
                // Multi-line values (an SQL statement) stay on one line.
                '\n' | '\r' | '\t' => ' ',
                c if is_hidden(c) => '\u{FFFD}',
                c => c,
            });
        }
        Ok(())
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.add(field, |f| write!(f, "{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, |f| f.write_str(value.trim()));
    }
}

/// The fields that give an event's elapsed time as a number, with their units per second.
const ELAPSED_FIELDS: [(&str, f64); 8] = [
    ("elapsed_secs", 1.0),
    ("elapsed_seconds", 1.0),
    ("elapsed_ms", 1e3),
    ("elapsed_millis", 1e3),
    ("elapsed_us", 1e6),
    ("elapsed_micros", 1e6),
    ("elapsed_ns", 1e9),
    ("elapsed_nanos", 1e9),
];

/// An event's fields: its message and sqlx's `summary` (for the label), an elapsed time,
/// and the others as data.
struct EventFields {
    message: Option<String>,
    summary: Option<String>,
    elapsed: Option<Duration>,
    /// A non-numeric `elapsed` field (sqlx's human-readable one): shown as data only when no
    /// numeric elapsed time came with it.
    elapsed_text: Option<String>,
    /// Whether the event has a field that may carry the elapsed time as a number.
    numeric_elapsed: bool,
    rest: Fields,
    cap: usize,
}

impl EventFields {
    /// `true` when the field gives the elapsed time.
    fn elapsed(&mut self, field: &Field, value: f64) -> bool {
        let Some((_, per_second)) = ELAPSED_FIELDS
            .iter()
            .find(|(name, _)| field.name() == *name)
        else {
            return false;
        };
        if let Ok(elapsed) = Duration::try_from_secs_f64(value / per_second) {
            self.elapsed = Some(elapsed);
        }
        true
    }

    fn label(&mut self, field: &Field, value: fmt::Arguments<'_>) -> bool {
        let slot = match field.name() {
            "message" => &mut self.message,
            "summary" => &mut self.summary,
            _ => return false,
        };
        let mut text = Fields::new(self.cap);
        let _ = text.write_fmt(value);
        *slot = text.finish();
        true
    }
}

impl Visit for EventFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.elapsed(field, value) {
            self.rest.record_debug(field, &value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.elapsed(field, value as f64) {
            self.rest.record_debug(field, &value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !self.elapsed(field, value as f64) {
            self.rest.record_debug(field, &value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let value = value.trim();
        if !self.label(field, format_args!("{value}")) && !value.is_empty() {
            self.rest.record_str(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "elapsed" {
            // sqlx's human-readable duration; `elapsed_secs` carries it as a number.
            if self.numeric_elapsed {
                return;
            }
            let mut text = Fields::new(self.cap);
            let _ = write!(text, "{value:?}");
            self.elapsed_text = text.finish();
            return;
        }
        if !self.label(field, format_args!("{value:?}")) {
            self.rest.record_debug(field, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_capped_and_cleaned_as_they_are_written() {
        let mut fields = Fields::new(8);
        assert!(fields.write_str("ab\u{202E}c").is_ok());
        assert_eq!(fields.text, "ab\u{FFFD}c");
        assert!(fields.write_str("defghij").is_err());
        assert!(fields.cut);
        assert_eq!(fields.finish().as_deref(), Some("ab\u{FFFD}cdefg…"));
        assert_eq!(Fields::new(8).finish(), None);
    }
}
