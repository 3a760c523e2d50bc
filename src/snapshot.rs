//! The plain-data read model of the statistics: what [`Stats::snapshot`] returns and what every
//! report format (JSON, HTML) is rendered from.
//!
//! [`Stats::snapshot`]: crate::Stats::snapshot

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::registry::{Combine, ValueKind};

/// Version of the `/stats/data` JSON schema. Keys are only ever added within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// A consistent copy of every namespace, taken without stopping recording.
///
/// Serializes to the `/stats/data` document: `schema_version`, `generated_at`, `server`, and
/// `namespaces` holding `http` and every application namespace, sorted by name.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Snapshot {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the snapshot was taken, in Unix epoch seconds.
    pub generated_at: f64,
    /// Version, instance name, start time and uptime of this server.
    pub server: ServerInfo,
    /// The built-in `http` namespace.
    pub http: HttpSnapshot,
    /// Application namespaces by name.
    pub namespaces: BTreeMap<String, NamespaceSnapshot>,
}

impl Snapshot {
    /// Every namespace, `http` included, as generic JSON objects in name order.
    ///
    /// This is the view the renderers use: each value is a scalar or a collection.
    #[must_use]
    pub fn namespace_values(
        &self,
    ) -> Vec<(String, bool, serde_json::Map<String, serde_json::Value>)> {
        let mut out = Vec::with_capacity(self.namespaces.len() + 1);
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&self.http) {
            out.push(("http".to_owned(), self.http.enabled, map));
        }
        for (name, ns) in &self.namespaces {
            out.push((name.clone(), ns.enabled, ns.values.clone()));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Namespaces<'a>(&'a Snapshot);
        impl Serialize for Namespaces<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.namespaces.len() + 1))?;
                let mut http_done = false;
                for (name, ns) in &self.0.namespaces {
                    if !http_done && name.as_str() > "http" {
                        map.serialize_entry("http", &self.0.http)?;
                        http_done = true;
                    }
                    map.serialize_entry(name, ns)?;
                }
                if !http_done {
                    map.serialize_entry("http", &self.0.http)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("schema_version", &self.schema_version)?;
        map.serialize_entry("generated_at", &self.generated_at)?;
        map.serialize_entry("server", &self.server)?;
        map.serialize_entry("namespaces", &Namespaces(self))?;
        map.end()
    }
}

/// Facts about the server the statistics come from.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct ServerInfo {
    /// `tower-stats <version>`.
    pub version: String,
    /// Instance name, `host:pid` unless configured.
    pub instance: String,
    /// When the [`Stats`](crate::Stats) value was created, in Unix epoch seconds.
    pub start_time: f64,
    /// Seconds since `start_time`.
    pub uptime_seconds: f64,
}

/// The built-in `http` namespace.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct HttpSnapshot {
    /// Whether new requests are being recorded (false while paused).
    pub enabled: bool,
    /// Requests started and recorded since start or the last reset (counted at start).
    pub requests_total: u64,
    /// Requests whose response has not ended yet, open streams excluded.
    pub requests_in_flight: u64,
    /// Requests the client went away from before the response ended.
    pub requests_aborted: u64,
    /// Requests that ended in an error of the inner service or of a body, or a panic.
    pub requests_errored: u64,
    /// Requests during which a panic unwound through the layer (also counted as errored).
    pub requests_panicked: u64,
    /// `requests_total` divided by the seconds since start or the last reset.
    pub requests_per_second: f64,
    /// Sum of the processing times of finished requests (streams excluded), in seconds.
    pub processing_seconds_total: f64,
    /// Request body bytes the service actually read.
    pub bytes_read_total: u64,
    /// Response body bytes the server actually polled.
    pub bytes_written_total: u64,
    /// `bytes_read_total` per second since start or the last reset.
    pub bytes_read_per_second: f64,
    /// `bytes_written_total` per second since start or the last reset.
    pub bytes_written_per_second: f64,
    /// `bytes_read_total / requests_total`, 0 when there were no requests.
    pub bytes_read_per_request: f64,
    /// `bytes_written_total / requests_total`, 0 when there were no requests.
    pub bytes_written_per_request: f64,
    /// Responses with a 1xx status.
    pub status_1xx: u64,
    /// Responses with a 2xx status.
    pub status_2xx: u64,
    /// Responses with a 3xx status.
    pub status_3xx: u64,
    /// Responses with a 4xx status (including 499 for clients that left before a status).
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
    /// Counts of each tracked status code, zeros included.
    pub status_codes: BTreeMap<String, u64>,
    /// Requests counted in the `<overflow>` URI set because `max_uri_sets` keys existed.
    pub uri_sets_overflowed: u64,
    /// Seconds since the statistics started.
    pub uptime_seconds: f64,
    /// When counting restarted (start or last reset), in Unix epoch seconds.
    pub reset_time: f64,
    /// Streams (`101 Switching Protocols`, `text/event-stream`) whose body is still open.
    pub streams_open: u64,
    /// Streams started since start or the last reset.
    pub streams_total: u64,
    /// Live requests by id, oldest first.
    #[serde(serialize_with = "records_by_id")]
    pub in_flight: Vec<RequestRecord>,
    /// Open streams by id, oldest first.
    #[serde(serialize_with = "records_by_id")]
    pub open_streams: Vec<RequestRecord>,
    /// Finished requests slower than the threshold, oldest first.
    pub slow_requests: Vec<RequestRecord>,
    /// Timings per URI set, keyed `"<METHOD> <route>"`.
    pub uri_sets: BTreeMap<String, UriSetSnapshot>,
    /// Median processing time since start or the last reset, in seconds (streams excluded).
    pub p50_seconds: Option<f64>,
    /// 90th percentile processing time, in seconds.
    pub p90_seconds: Option<f64>,
    /// 99th percentile processing time, in seconds.
    pub p99_seconds: Option<f64>,
    /// 99.9th percentile processing time, in seconds.
    pub p999_seconds: Option<f64>,
    /// The same figures over the last minute (`"1m"`), the last 15 minutes (`"15m"`) and since
    /// start or the last reset (`"total"`).
    pub windows: BTreeMap<String, WindowSnapshot>,
    /// Finished requests in each of the last 16 minutes, oldest first; the last entry is the
    /// current, partial minute.
    pub requests_per_minute: Vec<u64>,
    /// Upper bounds of the Prometheus duration buckets, in seconds.
    #[serde(skip)]
    pub duration_buckets: Vec<f64>,
}

/// Latency and rate figures over one time window.
///
/// Quantiles come from a log-linear histogram and are within
/// [`RELATIVE_ERROR`](crate::histogram::RELATIVE_ERROR) (1/64) of the exact value between
/// 1 µs and 60 s. `"1m"` covers the last 60 to 75 seconds and `"15m"` the last 15 to 16
/// minutes, in 15-second and one-minute steps; `covered_seconds` says exactly how long.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct WindowSnapshot {
    /// Finished requests in the window (streams excluded).
    pub count: u64,
    /// `count` divided by `covered_seconds`.
    pub requests_per_second: f64,
    /// Requests in the window that ended in an error or a panic.
    pub errors: u64,
    /// Seconds the window covers (shorter just after start or a reset).
    pub covered_seconds: f64,
    /// Mean processing time in seconds.
    pub avg_seconds: Option<f64>,
    /// Shortest processing time in seconds.
    pub min_seconds: Option<f64>,
    /// Longest processing time in seconds.
    pub max_seconds: Option<f64>,
    /// Median processing time in seconds.
    pub p50_seconds: Option<f64>,
    /// 90th percentile processing time in seconds.
    pub p90_seconds: Option<f64>,
    /// 99th percentile processing time in seconds.
    pub p99_seconds: Option<f64>,
    /// 99.9th percentile processing time in seconds.
    pub p999_seconds: Option<f64>,
}

/// Prometheus duration buckets of one URI set and status class.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StatusClassDurations {
    /// `1xx` … `5xx`, or `none` for requests that ended without a status.
    pub status_class: &'static str,
    /// Cumulative counts for each bound of [`HttpSnapshot::duration_buckets`], then `+Inf`.
    pub cumulative: Vec<u64>,
    /// Sum of processing times in seconds.
    pub sum_seconds: f64,
}

fn records_by_id<S: Serializer>(
    records: &[RequestRecord],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(records.len()))?;
    for record in records {
        map.serialize_entry(&record.id, record)?;
    }
    map.end()
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
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

/// One request, live or finished.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// Unique id within this [`Stats`](crate::Stats) value.
    pub id: String,
    /// Request method.
    pub method: String,
    /// Request path; the query string only when enabled. Capped and cleaned.
    pub path: String,
    /// The URI set key the request is counted in.
    pub uri_set: String,
    /// Start, in Unix epoch seconds.
    pub start_time: f64,
    /// End, in Unix epoch seconds; `None` while in flight.
    pub end_time: Option<f64>,
    /// Processing time in seconds; for a live request, the time elapsed so far.
    pub processing_seconds: f64,
    /// Response status; `None` until known.
    pub status: Option<u16>,
    /// Request body bytes read so far.
    pub bytes_read: u64,
    /// Response body bytes written so far.
    pub bytes_written: u64,
    /// How the request ended.
    pub outcome: Outcome,
    /// Client address, `None` unless client addresses are recorded.
    pub client: Option<String>,
    /// Whether the response is a stream (`101` or `text/event-stream`).
    pub stream: bool,
    /// The custom events the handler added, in the order added: its timeline.
    pub events: Vec<TimelineEvent>,
    /// Custom events dropped because the timeline was full.
    pub events_dropped: u32,
}

/// A custom event on a request's timeline.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct TimelineEvent {
    /// What happened, as the handler named it.
    pub label: String,
    /// Optional data, as compact JSON, capped.
    pub data: Option<String>,
    /// Start of the event, in seconds after the start of the request.
    pub offset_seconds: f64,
    /// How long the event lasted, in seconds (0 for an instant).
    pub duration_seconds: f64,
}

/// Timings and counters of one URI set.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct UriSetSnapshot {
    /// The method part of the key (`_OTHER` for non-standard methods; empty for `<overflow>`).
    pub method: String,
    /// The route part of the key.
    pub route: String,
    /// Finished requests with a timing (streams excluded).
    pub count: u64,
    /// Streams counted in this set (kept out of the timings).
    pub streams: u64,
    /// Shortest processing time in seconds; `None` before the first request.
    pub min_seconds: Option<f64>,
    /// Longest processing time in seconds; `None` before the first request.
    pub max_seconds: Option<f64>,
    /// Sum of processing times in seconds.
    pub sum_seconds: f64,
    /// `sum_seconds / count`, 0 when `count` is 0.
    pub avg_seconds: f64,
    /// Request body bytes read.
    pub bytes_read: u64,
    /// Response body bytes written.
    pub bytes_written: u64,
    /// Requests that ended in an error or a panic.
    pub errors: u64,
    /// Responses with a 1xx status.
    pub status_1xx: u64,
    /// Responses with a 2xx status.
    pub status_2xx: u64,
    /// Responses with a 3xx status.
    pub status_3xx: u64,
    /// Responses with a 4xx status.
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
    /// Median processing time since start or the last reset, in seconds.
    pub p50_seconds: Option<f64>,
    /// 90th percentile processing time, in seconds.
    pub p90_seconds: Option<f64>,
    /// 99th percentile processing time, in seconds.
    pub p99_seconds: Option<f64>,
    /// 99.9th percentile processing time, in seconds.
    pub p999_seconds: Option<f64>,
    /// The figures over `"1m"`, `"15m"` and `"total"`.
    pub windows: BTreeMap<String, WindowSnapshot>,
    /// Duration buckets per status class that has seen requests, for Prometheus.
    #[serde(skip)]
    pub durations: Vec<StatusClassDurations>,
}

/// An application namespace: its state and its values, computed ones already evaluated.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct NamespaceSnapshot {
    /// Whether the namespace is recording (false while paused).
    pub enabled: bool,
    /// Values by name: scalars, and collections as arrays or objects of records.
    #[serde(flatten)]
    pub values: serde_json::Map<String, serde_json::Value>,
    /// How each value combines across instances.
    #[serde(skip)]
    pub combine: BTreeMap<String, Combine>,
    /// The kind of each value.
    #[serde(skip)]
    pub kinds: BTreeMap<String, ValueKind>,
}
