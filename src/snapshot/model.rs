//! The types of the read model: plain data, serializable both ways.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::histogram::{Histogram, HistogramLayout};
use crate::registry::{Combine, ValueKind};
use crate::status::AppStatus;
pub use crate::store::request::Outcome;

/// Version of the `/stats/data` JSON schema. Keys are only ever added within a version.
///
/// Version 2 keeps every key of version 1 and adds the raw, mergeable data: latency
/// histograms with their wall-clock periods, the instance's identity with a boot id, the
/// recent requests, the event stream, the application status and the value rules of
/// application namespaces.
pub const SCHEMA_VERSION: u32 = 2;

/// A consistent copy of every namespace, taken without stopping recording: the one read
/// model that every page, the JSON, the metrics and the event stream are rendered from.
///
/// It holds raw, mergeable data (counters, latency histograms keyed by wall-clock periods,
/// records, events, the application status, application values with their [`Combine`] rule)
/// and the values derived from it (rates, averages, quantiles, window figures), which are
/// always computed from the raw data in one place. [`Snapshot::merge`] combines the snapshots
/// of several instances; [`Snapshot::from_json`] reads one back, checking it.
///
/// Serializes to the `/stats/data` document: `schema_version`, `generated_at`, `server`,
/// `histogram_layout`, `limits`, `namespaces` holding `http` and every application namespace
/// sorted by name, `rules`, `application_events`, `status`, and `instances` for a merged
/// snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the snapshot was taken, in Unix epoch seconds.
    pub generated_at: f64,
    /// Version, instance name, boot id, start time and uptime of this server.
    pub server: ServerInfo,
    /// The caps the snapshot was taken under, which a merge keeps to.
    pub limits: Limits,
    /// The built-in `http` namespace.
    pub http: HttpSnapshot,
    /// Application namespaces by name.
    pub namespaces: BTreeMap<String, NamespaceSnapshot>,
    /// The application events ([`Stats::log_event`](crate::Stats::log_event)), newest first;
    /// [`events`](Self::events) derives the whole event stream.
    pub application_events: Vec<ApplicationEvent>,
    /// The application's status, as `/status` reports it.
    pub status: StatusSnapshot,
    /// For a merged snapshot: each instance that went into it; empty otherwise.
    pub instances: Vec<InstanceSummary>,
    /// With a cluster configured (feature `redis`): the publishing status and every instance
    /// known, merged or not.
    pub cluster: Option<ClusterStatus>,
}

/// The state of the cluster view: this instance's publishing, and every instance of the
/// service it knows of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClusterStatus {
    /// The service whose instances share the view.
    pub service: String,
    /// What the snapshot shows: `cluster` (every instance merged), `local` (this instance),
    /// or `instance` (one other instance).
    pub scope: String,
    /// `ok` when the last publish succeeded, `down` otherwise.
    pub status: String,
    /// The last error talking to Redis.
    pub last_error: Option<String>,
    /// When a publish last succeeded, in Unix epoch seconds.
    pub last_success: Option<f64>,
    /// Publishes that succeeded.
    pub publishes: u64,
    /// Publishes that failed or missed their deadline (and were skipped).
    pub publish_failures: u64,
    /// Seconds between publishes.
    pub publish_interval_seconds: f64,
    /// Seconds an instance's data stays in Redis after its last publish.
    pub retention_seconds: f64,
    /// Every instance of the service that Redis knows of, this one included.
    pub instances: Vec<InstanceSummary>,
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
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("schema_version", &self.schema_version)?;
        map.serialize_entry("generated_at", &self.generated_at)?;
        map.serialize_entry("server", &self.server)?;
        map.serialize_entry("histogram_layout", &HistogramLayout::CURRENT)?;
        map.serialize_entry("limits", &self.limits)?;
        map.serialize_entry("namespaces", &Namespaces(self))?;
        map.serialize_entry("rules", &super::wire::Rules(self))?;
        map.serialize_entry("application_events", &self.application_events)?;
        map.serialize_entry("status", &self.status)?;
        if !self.instances.is_empty() {
            map.serialize_entry("instances", &self.instances)?;
        }
        if let Some(cluster) = &self.cluster {
            map.serialize_entry("cluster", cluster)?;
        }
        map.end()
    }
}

/// Facts about the server the statistics come from: its identity.
///
/// An instance is its name plus a random boot id, so a restarted process under the same name
/// is a new instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServerInfo {
    /// `tower-stats <version>`.
    pub version: String,
    /// Instance name, `host:pid` unless configured.
    pub instance: String,
    /// A random id chosen when the [`Stats`](crate::Stats) value was created: 16 hex digits.
    pub boot_id: String,
    /// When the [`Stats`](crate::Stats) value was created, in Unix epoch seconds.
    pub start_time: f64,
    /// Seconds since `start_time` (derived).
    pub uptime_seconds: f64,
}

/// The caps a snapshot was taken under (see [`StatsBuilder`](crate::StatsBuilder)); a merge
/// keeps to the largest of its inputs'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Limits {
    /// [`StatsBuilder::max_uri_sets`](crate::StatsBuilder::max_uri_sets).
    pub max_uri_sets: usize,
    /// [`StatsBuilder::slow_capacity`](crate::StatsBuilder::slow_capacity).
    pub slow_capacity: usize,
    /// [`StatsBuilder::recent_capacity`](crate::StatsBuilder::recent_capacity).
    pub recent_capacity: usize,
    /// [`StatsBuilder::event_capacity`](crate::StatsBuilder::event_capacity).
    pub event_capacity: usize,
    /// [`StatsBuilder::event_max_age`](crate::StatsBuilder::event_max_age), in milliseconds.
    pub event_max_age_millis: u64,
    /// [`StatsBuilder::max_call_names`](crate::StatsBuilder::max_call_names).
    pub max_call_names: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_uri_sets: 256,
            slow_capacity: 100,
            recent_capacity: 1000,
            event_capacity: 1000,
            event_max_age_millis: 3_600_000,
            max_call_names: 256,
        }
    }
}

/// The application's status in a snapshot: what `/status` serves, and the maintenance switch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StatusSnapshot {
    /// The application name, `unknown` until set.
    pub application: String,
    /// The application version, `unknown` until set.
    pub version: String,
    /// `ok`, `maintenance`, or what the application reported.
    pub status: AppStatus,
    /// Whether the maintenance switch is on.
    pub maintenance: bool,
}

/// One instance of a merged snapshot: its identity, whether it was live, its headline
/// figures, and the values that are only shown per instance ([`Combine::Instance`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InstanceSummary {
    /// The instance's identity (its keys appear at the top level of the summary).
    #[serde(flatten)]
    pub server: ServerInfo,
    /// When the instance's snapshot was taken, in Unix epoch seconds.
    pub generated_at: f64,
    /// Whether its gauges (in flight, open streams, application gauges) were counted.
    pub live: bool,
    /// `live`, `stale` (no publish for three intervals), `stopped` (shut down gracefully) or
    /// `incompatible` (its snapshot could not be read or merged; see `error`).
    pub state: String,
    /// When it last published, by the Redis server's clock, in Unix epoch seconds.
    pub last_seen: Option<f64>,
    /// Its clock minus the Redis server's, in seconds, as measured when it last published.
    pub clock_offset_seconds: Option<f64>,
    /// Whether it is the instance that served this snapshot.
    pub local: bool,
    /// Why its snapshot was not merged, for an `incompatible` instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its `requests_total`.
    pub requests_total: u64,
    /// Its `requests_per_second`.
    pub requests_per_second: f64,
    /// Its `requests_in_flight`.
    pub requests_in_flight: u64,
    /// Its `requests_errored`.
    pub requests_errored: u64,
    /// Its 99th percentile processing time in seconds.
    pub p99_seconds: Option<f64>,
    /// Its application status.
    pub status: AppStatus,
    /// Its values that are not combined across instances, by namespace.
    pub values: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// The built-in `http` namespace.
///
/// Raw fields are counters, records and [`latency`](Self::latency); the others are derived
/// from them whenever the snapshot is built, merged or read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Responses of gRPC calls by `grpc-status`, under the code's name (`"OK"`,
    /// `"NOT_FOUND"`, …; `"OTHER"` for a code outside gRPC's table); codes never seen are left
    /// out, so the map is empty for a service that serves no gRPC. A call's code other than
    /// `OK` also counts it in `requests_errored`.
    #[serde(default)]
    pub grpc_status_codes: BTreeMap<String, u64>,
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
    #[serde(
        serialize_with = "records_by_id",
        deserialize_with = "super::wire::records_from_map"
    )]
    pub in_flight: Vec<RequestRecord>,
    /// Open streams by id, oldest first.
    #[serde(
        serialize_with = "records_by_id",
        deserialize_with = "super::wire::records_from_map"
    )]
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
    pub duration_buckets: Vec<f64>,
    /// The most recent finished requests with a detailed record, newest first.
    pub recent_requests: Vec<RequestRecord>,
    /// The latency histograms of every URI set together (raw).
    pub latency: LatencyHistograms,
    /// Call statistics across requests, by call name: the timed entries of finished requests'
    /// timelines (spans, events carrying their elapsed time, timed custom events). At most
    /// [`StatsBuilder::max_call_names`](crate::StatsBuilder::max_call_names) names, then
    /// `<overflow>`.
    pub calls: BTreeMap<String, CallSnapshot>,
}

impl HttpSnapshot {
    /// Every request record the snapshot holds: in flight, open streams, slow and recent.
    pub(crate) fn records_mut(&mut self) -> impl Iterator<Item = &mut RequestRecord> {
        self.in_flight
            .iter_mut()
            .chain(&mut self.open_streams)
            .chain(&mut self.slow_requests)
            .chain(&mut self.recent_requests)
    }
}

/// The statistics of one call name across requests (appstats' "RPC Stats"), with the URI
/// sets that make it ("Path Stats").
///
/// Raw fields are [`requests`](Self::requests), [`latency`](Self::latency) and the counts
/// of [`uri_sets`](Self::uri_sets); the others are derived from them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CallSnapshot {
    /// Calls made.
    pub count: u64,
    /// Requests that made the call at least once.
    pub requests: u64,
    /// `count / requests`: calls per request, among the requests that made it.
    pub per_request: f64,
    /// Time spent in the calls, in seconds.
    pub total_seconds: f64,
    /// `total_seconds / count`.
    pub avg_seconds: f64,
    /// Median duration of a call, in seconds.
    pub p50_seconds: Option<f64>,
    /// 99th percentile duration of a call, in seconds.
    pub p99_seconds: Option<f64>,
    /// Per URI set key that made the call: its calls and requests (at most 64 sets, then
    /// `<overflow>`).
    pub uri_sets: BTreeMap<String, CallUriSet>,
    /// The durations of the calls (raw).
    pub latency: Histogram,
}

/// How one URI set makes one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CallUriSet {
    /// Calls made by requests of the set.
    pub count: u64,
    /// Requests of the set that made the call.
    pub requests: u64,
    /// `count / requests`.
    pub per_request: f64,
}

/// One call name's total on one request's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CallTotal {
    /// The call name: a span's name, an event's target, a custom event's label.
    pub name: String,
    /// Calls on the timeline.
    pub count: u64,
    /// Their time added up, in seconds.
    pub total_seconds: f64,
}

/// Latency histograms since start or the last reset, and per wall-clock period (raw).
///
/// Periods are numbered from the Unix epoch, so two instances' periods line up: a quarter is
/// `floor(unix_seconds / 15)` and a minute `floor(unix_seconds / 60)`. The `"1m"` window is
/// made of the last five quarters and `"15m"` of the last sixteen minutes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LatencyHistograms {
    /// Every finished request since start or the last reset (streams excluded).
    pub total: Histogram,
    /// Requests since start or the last reset that ended in an error or a panic.
    pub total_errors: u64,
    /// The 15-second periods that hold data, by ascending period.
    pub quarters: Vec<PeriodHistogram>,
    /// The one-minute periods that hold data, by ascending period.
    pub minutes: Vec<PeriodHistogram>,
}

/// The latencies and errors of one wall-clock period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PeriodHistogram {
    /// The period's number: Unix seconds divided by the period's length, rounded down.
    pub period: u64,
    /// Requests in the period that ended in an error or a panic.
    pub errors: u64,
    /// Their processing times.
    pub histogram: Histogram,
}

/// Latency and rate figures over one time window.
///
/// Quantiles come from a log-linear histogram and are within
/// [`RELATIVE_ERROR`](crate::histogram::RELATIVE_ERROR) (1/64) of the exact value between
/// 1 µs and 60 s. `"1m"` covers the last 60 to 75 seconds and `"15m"` the last 15 to 16
/// minutes, in 15-second and one-minute steps; `covered_seconds` says exactly how long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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

/// Prometheus duration buckets of one URI set, for one status code and error type (raw).
///
/// A URI set has at most 8 series of its own codes; requests with further codes are counted
/// in fallback series whose `status_code` is `_OTHER`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DurationSeries {
    /// The response's status code (`"404"`; `"499"` when the client went away first),
    /// `"_OTHER"` for the fallback series, or empty for requests that ended without one (a
    /// panic).
    pub status_code: String,
    /// `aborted`, `error` or `panicked` for requests that ended so; empty otherwise.
    pub error_type: String,
    /// Cumulative counts for each bound of [`HttpSnapshot::duration_buckets`], then `+Inf`.
    pub cumulative: Vec<u64>,
    /// Sum of processing times in seconds (derived).
    pub sum_seconds: f64,
    /// Sum of processing times in nanoseconds (raw; `sum_seconds` is derived from it).
    pub sum_nanos: u64,
    /// A recent request of each bucket that has one, for OpenMetrics exemplars.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exemplars: Vec<Exemplar>,
}

/// A recent request that fell in a duration bucket: an OpenMetrics exemplar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Exemplar {
    /// Index of the bucket in [`DurationSeries::cumulative`].
    pub bucket: usize,
    /// The request's id, as in `/stats/requests/{id}`.
    pub request_id: String,
    /// The W3C trace id (32 lowercase hex digits) of the request's `traceparent` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The request's processing time in seconds.
    pub value_seconds: f64,
    /// When the request ended, in Unix epoch seconds.
    pub time: f64,
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

/// One request, live or finished.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RequestRecord {
    /// Unique id within this [`Stats`](crate::Stats) value; in a merged snapshot, qualified
    /// by the instance's boot id (`<boot id>-<id>`), so that ids never collide. Ids increase
    /// along the requests a thread starts (each write shard hands out its own blocks of ids),
    /// not across threads: order requests by `start_time`.
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
    /// The W3C trace id of the request's valid `traceparent` header (32 lowercase hex
    /// digits), when it had one and keeps a detailed record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Whether the response is a stream (`101` or `text/event-stream`).
    pub stream: bool,
    /// The request's timeline, in the order the entries began: custom events, and with the
    /// `tracing` layer the spans and events that happened while it ran.
    pub events: Vec<TimelineEvent>,
    /// Timeline entries dropped because the timeline was full.
    pub events_dropped: u32,
    /// The timed entries of the timeline totalled by call name (appstats' "RPC totals"):
    /// most frequent first, then by name. Entries dropped from a full timeline are not in it.
    pub call_totals: Vec<CallTotal>,
    /// In a merged snapshot, the instance the request ran on; `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Whether the request keeps no detailed record (sampled out, or
    /// [`dont_record`](crate::RequestStats::dont_record)): such a request is in flight but
    /// not in the event stream. Serialized only when `true`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_details: bool,
}

/// An event the application logged ([`Stats::log_event`](crate::Stats::log_event)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ApplicationEvent {
    /// When it was logged, in Unix epoch seconds.
    pub time: f64,
    /// The instance it was logged on.
    pub instance: String,
    /// What the application said, capped and cleaned.
    pub message: String,
}

/// An entry on a request's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TimelineEvent {
    /// What happened: a custom event's label, a span's name, an event's message (or sqlx's
    /// query summary).
    pub label: String,
    /// Optional data, capped: a custom event's compact JSON, a span's or an event's fields
    /// as `name=value` pairs.
    pub data: Option<String>,
    /// Start of the event, in seconds after the start of the request.
    pub offset_seconds: f64,
    /// How long the event lasted, in seconds (0 for an instant).
    pub duration_seconds: f64,
    /// Where it came from: `manual` ([`RequestStats`](crate::RequestStats)), `span` or
    /// `event` (`tracing`).
    pub source: String,
    /// The `tracing` target of a span or an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The index in the timeline of the span it happened in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// Whether it has a duration (an instant has none).
    pub timed: bool,
    /// The name it is totalled under in [`RequestRecord::call_totals`] and the call
    /// statistics, for a timed entry: a span's name, an event's target, a custom event's label.
    pub call: String,
    /// A span that had not closed when the record was taken: its duration runs to then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

/// Timings and counters of one URI set.
///
/// Raw fields are the counters, [`durations`](Self::durations) and
/// [`latency`](Self::latency); the timings are derived from `latency`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Duration buckets per status code and error type that has seen requests, for
    /// Prometheus.
    pub durations: Vec<DurationSeries>,
    /// The set's latency histograms (raw).
    pub latency: LatencyHistograms,
}

/// An application namespace: its state and its values, computed ones already evaluated.
///
/// Serializes as one object: `enabled` and every value by name. Each value's kind and
/// [`Combine`] rule go in the document's `rules`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

/// One entry of the event stream, as `/stats/events?format=json` serves it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StreamEvent {
    /// When it happened, in Unix epoch seconds.
    pub time: f64,
    /// Seconds between the event and the moment the snapshot was taken (derived).
    pub age_seconds: f64,
    /// The instance it happened on.
    pub instance: String,
    /// `request_started`, `request_finished`, `request_error`, `request_aborted`,
    /// `request_panicked` or `application`.
    pub kind: String,
    /// The request's id, for request events.
    pub request_id: Option<String>,
    /// A one-line description, such as `Finished GET /users/7 200 in 0.004 seconds`.
    pub message: String,
    /// The response status of a finished request, when it had one.
    pub status: Option<u16>,
    /// The processing time of a finished request, in seconds.
    pub duration_seconds: Option<f64>,
}
