//! Taking a snapshot of the store: the raw data is copied out while recording goes on, then
//! the derived values are computed from it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use crate::clock::{nanos_to_secs, Clock};
use crate::config::Config;
use crate::status::Status;
use crate::store::durations::merged_series;
use crate::store::http::{HttpShard, HttpStore};
use crate::store::request::{FinishedRequest, InFlightRequest};
use crate::store::uri_sets::UriSetEntry;
use crate::store::windows::{PeriodData, WindowData};
use crate::store::Store;

use super::model::{
    ApplicationEvent, CallSnapshot, CallUriSet, DurationSeries, Exemplar, HttpSnapshot,
    LatencyHistograms, Limits, NamespaceSnapshot, Outcome, PeriodHistogram, RequestRecord,
    ServerInfo, Snapshot, StatusSnapshot, TimelineEvent, UriSetSnapshot, SCHEMA_VERSION,
};

/// The version string of this crate, as snapshots report it.
pub(crate) const VERSION: &str = concat!("tower-stats ", env!("CARGO_PKG_VERSION"));

/// Takes a snapshot of every part of the store.
pub(crate) fn snapshot(shared: &Store) -> Snapshot {
    let now = Instant::now();
    let clock = &shared.clock;
    let config = &shared.config;
    let mut snapshot = Snapshot {
        schema_version: SCHEMA_VERSION,
        generated_at: clock.epoch_of(now),
        server: ServerInfo {
            version: VERSION.to_owned(),
            instance: config.instance.clone(),
            boot_id: shared.boot_id.clone(),
            start_time: clock.base_epoch,
            uptime_seconds: 0.0,
        },
        limits: Limits {
            max_uri_sets: config.max_uri_sets,
            slow_capacity: config.slow_capacity,
            recent_capacity: config.recent_capacity,
            event_capacity: config.event_capacity,
            event_max_age_millis: u64::try_from(config.event_max_age.as_millis())
                .unwrap_or(u64::MAX),
            max_call_names: config.max_call_names,
        },
        http: http(&shared.http, shared, now),
        namespaces: shared
            .app_namespaces()
            .into_iter()
            .map(|(name, ns)| {
                let read = ns.read(config.max_string_len);
                let ns = NamespaceSnapshot {
                    enabled: read.enabled,
                    values: read.values,
                    combine: read.combine,
                    kinds: read.kinds,
                };
                (name, ns)
            })
            .collect(),
        application_events: shared
            .http
            .events
            .entries()
            .into_iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= config.event_max_age)
            .map(|(at, message)| ApplicationEvent {
                time: clock.epoch_of(at),
                instance: config.instance.clone(),
                message,
            })
            .collect(),
        status: status(&shared.status),
        instances: Vec::new(),
        cluster: None,
    };
    snapshot.derive();
    snapshot
}

/// The status part of a snapshot: one reading of the status (a callback given to
/// [`Status::status_with`] is called once), and the maintenance switch.
pub(crate) fn status(status: &Status) -> StatusSnapshot {
    let report = status.report();
    StatusSnapshot {
        application: report.application,
        version: report.version,
        status: report.status,
        maintenance: status.is_maintenance(),
    }
}

/// The raw `http` namespace. Each live record is copied under its shard's lock, so no record
/// is torn; counters are read one by one while recording goes on.
fn http(ns: &HttpStore, shared: &Store, now: Instant) -> HttpSnapshot {
    let clock = &shared.clock;
    let config = &shared.config;
    let mut in_flight = Vec::new();
    let mut open_streams = Vec::new();
    ns.in_flight.collect(|id, live| {
        let record = record_of(id, live, clock, now, None, config);
        if live.stream {
            open_streams.push(record);
        } else {
            in_flight.push(record);
        }
    });
    let by_start = |a: &RequestRecord, b: &RequestRecord| {
        a.start_time
            .total_cmp(&b.start_time)
            .then_with(|| a.id.len().cmp(&b.id.len()))
            .then_with(|| a.id.cmp(&b.id))
    };
    in_flight.sort_by(by_start);
    open_streams.sort_by(by_start);

    let slow_requests: Vec<RequestRecord> = ns
        .slow
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .iter()
        .map(|f| finished_record(f, clock, config))
        .collect();
    let recent_requests = ns.collect_recent(|f| Some(finished_record(f, clock, config)));

    // The namespace's histograms are the merge of every URI set's (merging is exact):
    // recording a request touches one set's histograms, not two.
    let mut latency = LatencyHistograms::default();
    let uri_sets: BTreeMap<String, UriSetSnapshot> = ns
        .uri_sets
        .entries()
        .into_iter()
        .map(|e| {
            let set = uri_set(&e, now, clock);
            add_latency(&mut latency, &set.latency);
            (e.key().to_owned(), set)
        })
        .collect();

    // Every counter is the sum of the shards' (each read while recording goes on).
    let sum = |counter: fn(&HttpShard) -> &AtomicU64| ns.sum(counter);
    let class = |i: usize| {
        ns.shards.iter().fold(0u64, |n, shard| {
            n.wrapping_add(shard.status_classes[i].load(Ordering::Relaxed))
        })
    };
    HttpSnapshot {
        enabled: ns.enabled.load(Ordering::Relaxed),
        requests_total: sum(|s| &s.requests_total),
        requests_aborted: sum(|s| &s.requests_aborted),
        requests_errored: sum(|s| &s.requests_errored),
        requests_panicked: sum(|s| &s.requests_panicked),
        bytes_read_total: sum(|s| &s.bytes_read_total),
        bytes_written_total: sum(|s| &s.bytes_written_total),
        status_1xx: class(0),
        status_2xx: class(1),
        status_3xx: class(2),
        status_4xx: class(3),
        status_5xx: class(4),
        status_codes: ns
            .tracked_codes
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let n = ns.shards.iter().fold(0u64, |n, shard| {
                    let count = shard
                        .tracked
                        .get(i)
                        .map_or(0, |c| c.load(Ordering::Relaxed));
                    n.wrapping_add(count)
                });
                (code.to_string(), n)
            })
            .collect(),
        grpc_status_codes: ns.grpc.collect(),
        uri_sets_overflowed: ns.uri_sets.overflowed.load(Ordering::Relaxed),
        reset_time: nanos_to_secs(ns.latency.reset_time_nanos()),
        streams_total: sum(|s| &s.streams_total),
        in_flight,
        open_streams,
        slow_requests,
        uri_sets,
        duration_buckets: config.duration_buckets.clone(),
        recent_requests,
        latency,
        calls: calls(ns),
        ..HttpSnapshot::default()
    }
}

/// Adds one set's histograms into the namespace's.
pub(crate) fn add_latency(into: &mut LatencyHistograms, from: &LatencyHistograms) {
    into.total.merge(&from.total);
    into.total_errors = into.total_errors.wrapping_add(from.total_errors);
    add_periods(&mut into.quarters, &from.quarters);
    add_periods(&mut into.minutes, &from.minutes);
}

/// Adds periods into a list sorted by period, merging equal periods.
pub(crate) fn add_periods(into: &mut Vec<PeriodHistogram>, from: &[PeriodHistogram]) {
    for p in from {
        match into.binary_search_by_key(&p.period, |q| q.period) {
            Ok(at) => {
                if let Some(q) = into.get_mut(at) {
                    q.errors = q.errors.wrapping_add(p.errors);
                    q.histogram.merge(&p.histogram);
                }
            }
            Err(at) => into.insert(at, p.clone()),
        }
    }
}

pub(crate) fn latency(data: WindowData) -> LatencyHistograms {
    let periods = |list: Vec<PeriodData>| {
        list.into_iter()
            .map(|p| PeriodHistogram {
                period: p.period,
                errors: p.errors,
                histogram: p.histogram,
            })
            .collect()
    };
    LatencyHistograms {
        total: data.total,
        total_errors: data.total_errors,
        quarters: periods(data.quarters),
        minutes: periods(data.minutes),
    }
}

/// The raw figures of one URI set: the sum of its shards' parts.
fn uri_set(e: &UriSetEntry, now: Instant, clock: &Clock) -> UriSetSnapshot {
    let mut status = [0u64; 5];
    let (mut streams, mut bytes_read, mut bytes_written, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut latency_sum: Option<LatencyHistograms> = None;
    let add = |into: &mut u64, c: &AtomicU64| *into = into.wrapping_add(c.load(Ordering::Relaxed));
    for part in e.shards() {
        for (into, c) in status.iter_mut().zip(&part.status) {
            add(into, c);
        }
        add(&mut streams, &part.streams);
        add(&mut bytes_read, &part.bytes_read);
        add(&mut bytes_written, &part.bytes_written);
        add(&mut errors, &part.errors);
        let part = latency(part.latency.data(now));
        match latency_sum.as_mut() {
            Some(sum) => add_latency(sum, &part),
            None => latency_sum = Some(part),
        }
    }
    let mut durations = merged_series(e.shards().map(|part| &part.durations))
        .into_iter()
        .map(|series| {
            let mut running = 0u64;
            DurationSeries {
                status_code: series.status_code,
                error_type: series.error_type.to_owned(),
                cumulative: series
                    .counts
                    .iter()
                    .map(|n| {
                        running = running.wrapping_add(*n);
                        running
                    })
                    .collect(),
                sum_seconds: 0.0,
                sum_nanos: series.sum_nanos,
                exemplars: series
                    .exemplars
                    .into_iter()
                    .map(|(bucket, read)| Exemplar {
                        bucket,
                        request_id: read.id.to_string(),
                        trace_id: (read.trace_id != 0).then(|| format!("{:032x}", read.trace_id)),
                        value_seconds: nanos_to_secs(read.nanos),
                        time: clock.base_epoch + nanos_to_secs(read.at),
                    })
                    .collect(),
            }
        })
        .collect::<Vec<_>>();
    // In the order of a merged snapshot's.
    durations.sort_by(|a, b| super::merge::series_order(a).cmp(&super::merge::series_order(b)));
    let key = e.key();
    let (method, route) = match key.split_once(' ') {
        Some((m, r)) => (m.to_owned(), r.to_owned()),
        None => (String::new(), key.to_owned()),
    };
    UriSetSnapshot {
        method,
        route,
        streams,
        bytes_read,
        bytes_written,
        errors,
        status_1xx: status[0],
        status_2xx: status[1],
        status_3xx: status[2],
        status_4xx: status[3],
        status_5xx: status[4],
        durations,
        latency: latency_sum.unwrap_or_default(),
        ..UriSetSnapshot::default()
    }
}

/// The record of a finished request.
pub(crate) fn finished_record(
    f: &FinishedRequest,
    clock: &Clock,
    config: &Config,
) -> RequestRecord {
    record_of(f.id, &f.live, clock, f.end, Some(f.outcome), config)
}

/// Builds the record of a live request or, with `end`, of a finished one.
pub(crate) fn record_of(
    id: u64,
    live: &InFlightRequest,
    clock: &Clock,
    end: Instant,
    finished: Option<Outcome>,
    config: &Config,
) -> RequestRecord {
    let mut record = RequestRecord {
        id: id.to_string(),
        method: crate::sanitize::clean(live.method.as_str(), config.max_string_len),
        path: crate::sanitize::clean(live.path.as_str(), config.max_string_len),
        uri_set: live.uri_set.key().to_owned(),
        start_time: clock.epoch_of(live.start),
        end_time: finished.map(|_| clock.epoch_of(end)),
        processing_seconds: end.saturating_duration_since(live.start).as_secs_f64(),
        status: live.status.map(|s| s.as_u16()),
        bytes_read: live.bytes_read,
        bytes_written: live.bytes_written,
        outcome: finished.unwrap_or(Outcome::InFlight),
        client: live
            .extras
            .as_ref()
            .and_then(|x| x.client)
            .map(|a| a.to_string()),
        trace_id: live
            .trace_id
            .to_option()
            .filter(|_| live.detailed)
            .map(|t| format!("{t:032x}")),
        stream: live.stream,
        events: timeline(live, end),
        events_dropped: live.extras.as_ref().map_or(0, |x| x.events_dropped),
        call_totals: Vec::new(),
        instance: None,
        no_details: !live.detailed,
    };
    record.call_totals = super::derive::call_totals(&record.events);
    record
}

/// A live record's timeline; a span still open runs to `end`.
fn timeline(live: &InFlightRequest, end: Instant) -> Vec<TimelineEvent> {
    live.extras
        .iter()
        .flat_map(|x| &x.events)
        .map(|e| {
            let e_end = if e.open { end } else { e.end };
            TimelineEvent {
                label: e.label.to_string(),
                data: e.data.clone(),
                offset_seconds: e.start.saturating_duration_since(live.start).as_secs_f64(),
                duration_seconds: e_end.saturating_duration_since(e.start).as_secs_f64(),
                source: e.source.as_str().to_owned(),
                target: (!e.target.is_empty()).then(|| e.target.to_owned()),
                parent: e.parent.map(|p| p as usize),
                timed: e.timed,
                call: e.call_name().to_owned(),
                open: e.open,
            }
        })
        .collect()
}

/// The call statistics, raw: the derived figures are computed by [`Snapshot::derive`].
fn calls(ns: &HttpStore) -> BTreeMap<String, CallSnapshot> {
    ns.calls
        .snapshot()
        .into_iter()
        .map(|(name, stats)| {
            let uri_sets = stats
                .uri_sets
                .iter()
                .map(|(key, (count, requests))| {
                    let set = CallUriSet {
                        count: *count,
                        requests: *requests,
                        ..CallUriSet::default()
                    };
                    (key.to_string(), set)
                })
                .collect();
            let call = CallSnapshot {
                requests: stats.requests,
                uri_sets,
                latency: stats.latency,
                ..CallSnapshot::default()
            };
            (name, call)
        })
        .collect()
}
