//! Combining the snapshots of several instances into one.
//!
//! Rules, value by value:
//!
//! - counters, bytes, status counts, histogram buckets and [`Combine::Sum`] values add;
//! - [`Combine::Min`] and [`Combine::Max`] values take the smallest or largest over the
//!   instances that have the value;
//! - gauges (requests in flight, open streams, application gauges) come from live instances
//!   only;
//! - [`Combine::Instance`] values, texts and collections are not combined: they are kept per
//!   instance in [`Snapshot::instances`];
//! - quantiles and window figures are computed again from the merged histograms, so they keep
//!   the histogram's error bound (1/64); windows line up because their periods are wall-clock
//!   periods;
//! - call statistics add, and are capped like URI sets (see the `calls` module);
//! - URI sets are united; past the largest `max_uri_sets` of the inputs, the sets with the
//!   fewest requests are folded into `<overflow>` (ties broken by key);
//! - slow requests, recent requests and application events are merged by time and capped
//!   like one instance's (the event stream is derived from them); record ids are qualified by the instance's boot id so that they never
//!   collide.
//!
//! Merging is commutative, and associative as long as the united URI sets stay under the
//! cap.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::registry::{Combine, ValueKind};
use crate::status::AppStatus;
use crate::store::uri_sets::OVERFLOW;

use super::collect::{add_latency, VERSION};
use super::model::{
    ApplicationEvent, DurationSeries, Exemplar, HttpSnapshot, InstanceSummary, Limits,
    NamespaceSnapshot, RequestRecord, ServerInfo, Snapshot, StatusSnapshot, UriSetSnapshot,
    SCHEMA_VERSION,
};

impl Snapshot {
    /// Combines the snapshots of several instances, all of them live, into one view.
    ///
    /// See [`merge_instances`](Self::merge_instances) for the rules.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_stats::{Snapshot, Stats};
    ///
    /// let a = Stats::builder().instance("a").build().unwrap();
    /// let b = Stats::builder().instance("b").build().unwrap();
    /// let merged = Snapshot::merge([&a.snapshot(), &b.snapshot()]);
    /// assert_eq!(merged.instances.len(), 2);
    /// assert_eq!(merged.http.requests_total, 0);
    /// ```
    #[must_use]
    pub fn merge<'a>(snapshots: impl IntoIterator<Item = &'a Self>) -> Self {
        Self::merge_instances(snapshots.into_iter().map(|s| (s, true)))
    }

    /// Combines the snapshots of several instances into one view. `true` marks a live
    /// instance, whose gauges (requests in flight, open streams, application gauges) count;
    /// a stale or stopped instance contributes its totals only.
    ///
    /// Counters, bytes, statuses, histogram buckets and [`Combine::Sum`] values add;
    /// [`Combine::Min`] and [`Combine::Max`] take the smallest or largest over the instances
    /// that have the value; [`Combine::Instance`] values, texts and collections are only kept
    /// per instance, in [`Snapshot::instances`]. Quantiles are computed again from the merged
    /// histograms. A merged snapshot can itself be merged: its instances are carried over.
    #[must_use]
    pub fn merge_instances<'a>(parts: impl IntoIterator<Item = (&'a Self, bool)>) -> Self {
        let parts: Vec<(&Self, bool)> = parts.into_iter().collect();
        let mut instances: Vec<InstanceSummary> = Vec::new();
        for (snapshot, live) in &parts {
            if snapshot.instances.is_empty() {
                instances.push(summary(snapshot, *live));
            } else {
                instances.extend(snapshot.instances.iter().cloned().map(|mut i| {
                    if !*live && i.live {
                        i.live = false;
                        i.state = "stale".to_owned();
                    }
                    i
                }));
            }
        }
        instances.sort_by(|a, b| {
            (&a.server.instance, &a.server.boot_id).cmp(&(&b.server.instance, &b.server.boot_id))
        });

        let limits = if parts.is_empty() {
            Limits::default()
        } else {
            parts.iter().fold(Limits::ZERO, |l, (s, _)| Limits {
                max_uri_sets: l.max_uri_sets.max(s.limits.max_uri_sets),
                slow_capacity: l.slow_capacity.max(s.limits.slow_capacity),
                recent_capacity: l.recent_capacity.max(s.limits.recent_capacity),
                event_capacity: l.event_capacity.max(s.limits.event_capacity),
                event_max_age_millis: l.event_max_age_millis.max(s.limits.event_max_age_millis),
                max_call_names: l.max_call_names.max(s.limits.max_call_names),
            })
        };

        let mut merged = Self {
            schema_version: SCHEMA_VERSION,
            generated_at: parts
                .iter()
                .map(|(s, _)| s.generated_at)
                .fold(0.0, f64::max),
            server: server(&parts, instances.len()),
            limits,
            http: http(&parts, &limits),
            namespaces: namespaces(&parts),
            application_events: application_events(&parts, limits.event_capacity),
            status: status(&parts),
            instances,
            cluster: None,
        };
        merged.derive();
        merged
    }
}

impl Limits {
    const ZERO: Self = Self {
        max_uri_sets: 0,
        slow_capacity: 0,
        recent_capacity: 0,
        event_capacity: 0,
        event_max_age_millis: 0,
        max_call_names: 0,
    };
}

/// The qualified id of a record from `server`: `<boot id>-<id>`, unless already qualified.
fn qualify(record: &RequestRecord, server: &ServerInfo, merged: bool) -> RequestRecord {
    let mut record = record.clone();
    if !merged && record.instance.is_none() {
        record.id = format!("{}-{}", server.boot_id, record.id);
        record.instance = Some(server.instance.clone());
    }
    record
}

/// The summary of one instance's snapshot, as a merge lists it.
pub(crate) fn summary(snapshot: &Snapshot, live: bool) -> InstanceSummary {
    let mut values = BTreeMap::new();
    for (name, ns) in &snapshot.namespaces {
        let kept: serde_json::Map<String, Value> = ns
            .values
            .iter()
            .filter(|(key, _)| rule_of(ns, key).is_none())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !kept.is_empty() {
            values.insert(name.clone(), kept);
        }
    }
    InstanceSummary {
        server: snapshot.server.clone(),
        generated_at: snapshot.generated_at,
        live,
        state: if live { "live" } else { "stale" }.to_owned(),
        requests_total: snapshot.http.requests_total,
        requests_per_second: snapshot.http.requests_per_second,
        requests_in_flight: snapshot.http.requests_in_flight,
        requests_errored: snapshot.http.requests_errored,
        p99_seconds: snapshot.http.p99_seconds,
        status: snapshot.status.status.clone(),
        values,
        ..InstanceSummary::default()
    }
}

fn server(parts: &[(&Snapshot, bool)], instances: usize) -> ServerInfo {
    let mut versions: Vec<&str> = parts
        .iter()
        .map(|(s, _)| s.server.version.as_str())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let version = match versions.as_slice() {
        [one] => (*one).to_owned(),
        [] => VERSION.to_owned(),
        _ => versions.join(", "),
    };
    ServerInfo {
        version,
        instance: format!(
            "{instances} instance{}",
            if instances == 1 { "" } else { "s" }
        ),
        boot_id: String::new(),
        start_time: parts
            .iter()
            .map(|(s, _)| s.server.start_time)
            .reduce(f64::min)
            .unwrap_or(0.0),
        uptime_seconds: 0.0,
    }
}

fn http(parts: &[(&Snapshot, bool)], limits: &Limits) -> HttpSnapshot {
    let mut out = HttpSnapshot {
        enabled: parts.iter().any(|(s, live)| *live && s.http.enabled)
            || (!parts.iter().any(|(_, live)| *live) && parts.iter().any(|(s, _)| s.http.enabled)),
        reset_time: parts
            .iter()
            .map(|(s, _)| s.http.reset_time)
            .reduce(f64::min)
            .unwrap_or(0.0),
        ..HttpSnapshot::default()
    };
    let same_buckets = parts
        .windows(2)
        .all(|w| w[0].0.http.duration_buckets == w[1].0.http.duration_buckets);
    out.duration_buckets = match (same_buckets, parts.first()) {
        (true, Some((s, _))) => s.http.duration_buckets.clone(),
        _ => Vec::new(),
    };
    let mut slow = Vec::new();
    let mut recent = Vec::new();
    for (s, live) in parts {
        let h = &s.http;
        let merged = !s.instances.is_empty();
        out.requests_total = out.requests_total.saturating_add(h.requests_total);
        out.requests_aborted = out.requests_aborted.saturating_add(h.requests_aborted);
        out.requests_errored = out.requests_errored.saturating_add(h.requests_errored);
        out.requests_panicked = out.requests_panicked.saturating_add(h.requests_panicked);
        out.bytes_read_total = out.bytes_read_total.saturating_add(h.bytes_read_total);
        out.bytes_written_total = out
            .bytes_written_total
            .saturating_add(h.bytes_written_total);
        out.status_1xx = out.status_1xx.saturating_add(h.status_1xx);
        out.status_2xx = out.status_2xx.saturating_add(h.status_2xx);
        out.status_3xx = out.status_3xx.saturating_add(h.status_3xx);
        out.status_4xx = out.status_4xx.saturating_add(h.status_4xx);
        out.status_5xx = out.status_5xx.saturating_add(h.status_5xx);
        for (code, n) in &h.status_codes {
            let total = out.status_codes.entry(code.clone()).or_default();
            *total = total.saturating_add(*n);
        }
        out.uri_sets_overflowed = out
            .uri_sets_overflowed
            .saturating_add(h.uri_sets_overflowed);
        out.streams_total = out.streams_total.saturating_add(h.streams_total);
        add_latency(&mut out.latency, &h.latency);
        if *live {
            out.in_flight
                .extend(h.in_flight.iter().map(|r| qualify(r, &s.server, merged)));
            out.open_streams
                .extend(h.open_streams.iter().map(|r| qualify(r, &s.server, merged)));
        }
        slow.extend(
            h.slow_requests
                .iter()
                .map(|r| qualify(r, &s.server, merged)),
        );
        recent.extend(
            h.recent_requests
                .iter()
                .map(|r| qualify(r, &s.server, merged)),
        );
        for (key, set) in &h.uri_sets {
            let into = out
                .uri_sets
                .entry(key.clone())
                .or_insert_with(|| UriSetSnapshot {
                    method: set.method.clone(),
                    route: set.route.clone(),
                    ..UriSetSnapshot::default()
                });
            let qualifier = (!merged).then_some(s.server.boot_id.as_str());
            add_uri_set(into, set, same_buckets, qualifier);
        }
    }
    let by_start = |a: &RequestRecord, b: &RequestRecord| {
        a.start_time
            .total_cmp(&b.start_time)
            .then_with(|| a.id.cmp(&b.id))
    };
    out.in_flight.sort_by(by_start);
    out.open_streams.sort_by(by_start);
    // Slow requests oldest first, recent requests newest first, each capped.
    let by_end = |a: &RequestRecord, b: &RequestRecord| {
        a.end_time
            .unwrap_or(0.0)
            .total_cmp(&b.end_time.unwrap_or(0.0))
            .then_with(|| by_start(a, b))
    };
    slow.sort_by(by_end);
    let excess = slow.len().saturating_sub(limits.slow_capacity);
    slow.drain(..excess);
    out.slow_requests = slow;
    recent.sort_by(|a, b| by_end(b, a));
    recent.truncate(limits.recent_capacity);
    out.recent_requests = recent;
    cap_uri_sets(&mut out, limits.max_uri_sets);
    out.calls = super::calls::merge(parts, limits.max_call_names);
    out
}

fn add_uri_set(
    into: &mut UriSetSnapshot,
    set: &UriSetSnapshot,
    same_buckets: bool,
    qualifier: Option<&str>,
) {
    into.streams = into.streams.saturating_add(set.streams);
    into.bytes_read = into.bytes_read.saturating_add(set.bytes_read);
    into.bytes_written = into.bytes_written.saturating_add(set.bytes_written);
    into.errors = into.errors.saturating_add(set.errors);
    into.status_1xx = into.status_1xx.saturating_add(set.status_1xx);
    into.status_2xx = into.status_2xx.saturating_add(set.status_2xx);
    into.status_3xx = into.status_3xx.saturating_add(set.status_3xx);
    into.status_4xx = into.status_4xx.saturating_add(set.status_4xx);
    into.status_5xx = into.status_5xx.saturating_add(set.status_5xx);
    add_latency(&mut into.latency, &set.latency);
    if !same_buckets {
        into.durations.clear();
        return;
    }
    for series in &set.durations {
        let exemplars = series.exemplars.iter().map(|e| Exemplar {
            request_id: match qualifier {
                Some(boot_id) => format!("{boot_id}-{}", e.request_id),
                None => e.request_id.clone(),
            },
            ..e.clone()
        });
        match into
            .durations
            .iter_mut()
            .find(|d| d.status_code == series.status_code && d.error_type == series.error_type)
        {
            Some(d) if d.cumulative.len() == series.cumulative.len() => {
                for (a, b) in d.cumulative.iter_mut().zip(&series.cumulative) {
                    *a = a.saturating_add(*b);
                }
                d.sum_nanos = d.sum_nanos.wrapping_add(series.sum_nanos);
                // The newest exemplar of each bucket.
                for e in exemplars {
                    match d.exemplars.iter_mut().find(|x| x.bucket == e.bucket) {
                        Some(x) if x.time >= e.time => {}
                        Some(x) => *x = e,
                        None => d.exemplars.push(e),
                    }
                }
                d.exemplars.sort_by_key(|e| e.bucket);
            }
            Some(_) => {}
            None => into.durations.push(DurationSeries {
                exemplars: exemplars.collect(),
                ..series.clone()
            }),
        }
    }
    into.durations
        .sort_by(|a, b| series_order(a).cmp(&series_order(b)));
}

/// Status codes in order (the fallback `_OTHER` after them, no status first), then error types.
pub(super) fn series_order(series: &DurationSeries) -> (bool, &str, &str) {
    (
        series.status_code == crate::store::durations::OTHER_CODE,
        &series.status_code,
        &series.error_type,
    )
}

/// Folds the sets with the fewest requests into `<overflow>` while there are more than `cap`.
fn cap_uri_sets(http: &mut HttpSnapshot, cap: usize) {
    let requests = |s: &UriSetSnapshot| s.latency.total.count().saturating_add(s.streams);
    let mut keys: Vec<(u64, String)> = http
        .uri_sets
        .iter()
        .filter(|(k, _)| k.as_str() != OVERFLOW)
        .map(|(k, s)| (requests(s), k.clone()))
        .collect();
    if keys.len() <= cap {
        return;
    }
    // Most requests first, then by key; the tail is folded.
    keys.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let folded: Vec<String> = keys.split_off(cap).into_iter().map(|(_, k)| k).collect();
    for key in folded {
        let Some(set) = http.uri_sets.remove(&key) else {
            continue;
        };
        http.uri_sets_overflowed = http.uri_sets_overflowed.saturating_add(requests(&set));
        let overflow = http
            .uri_sets
            .entry(OVERFLOW.to_owned())
            .or_insert_with(|| UriSetSnapshot {
                route: OVERFLOW.to_owned(),
                ..UriSetSnapshot::default()
            });
        add_uri_set(overflow, &set, true, None);
    }
}

/// The rule a value combines by, `None` when it is kept per instance only.
fn rule_of(ns: &NamespaceSnapshot, key: &str) -> Option<(ValueKind, Combine)> {
    let kind = *ns.kinds.get(key)?;
    let combine = *ns.combine.get(key)?;
    match (kind, combine) {
        (_, Combine::Instance) | (ValueKind::Text | ValueKind::Collection, _) => None,
        _ => Some((kind, combine)),
    }
}

fn namespaces(parts: &[(&Snapshot, bool)]) -> BTreeMap<String, NamespaceSnapshot> {
    let mut names: Vec<&String> = parts
        .iter()
        .flat_map(|(s, _)| s.namespaces.keys())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let inputs: Vec<(&NamespaceSnapshot, bool)> = parts
                .iter()
                .filter_map(|(s, live)| s.namespaces.get(name).map(|ns| (ns, *live)))
                .collect();
            (name.clone(), namespace(&inputs))
        })
        .collect()
}

fn namespace(inputs: &[(&NamespaceSnapshot, bool)]) -> NamespaceSnapshot {
    let mut out = NamespaceSnapshot {
        enabled: inputs.iter().any(|(ns, _)| ns.enabled),
        ..NamespaceSnapshot::default()
    };
    let mut keys: Vec<&String> = inputs.iter().flat_map(|(ns, _)| ns.kinds.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let rules: Vec<Option<(ValueKind, Combine)>> =
            inputs.iter().map(|(ns, _)| rule_of(ns, key)).collect();
        let (kind, combine) = match rules.first() {
            Some(Some(rule)) if rules.iter().all(|r| r.as_ref() == Some(rule)) => *rule,
            _ => continue,
        };
        let values: Vec<&Value> = inputs
            .iter()
            .filter(|(_, live)| kind != ValueKind::Gauge || *live)
            .filter_map(|(ns, _)| ns.values.get(key.as_str()))
            .collect();
        out.kinds.insert(key.clone(), kind);
        out.combine.insert(key.clone(), combine);
        if let Some(value) = combine_values(&values, combine) {
            out.values.insert(key.clone(), value);
        }
    }
    out
}

/// Combines numbers by `combine`; integers stay integers while they fit. Values that are not
/// numbers are left out; `None` when no instance had a number.
fn combine_values(values: &[&Value], combine: Combine) -> Option<Value> {
    let numbers: Vec<&serde_json::Number> = values
        .iter()
        .filter_map(|v| match v {
            Value::Number(n) => Some(n),
            _ => None,
        })
        .collect();
    if numbers.is_empty() {
        return None;
    }
    let integers: Option<Vec<u64>> = numbers.iter().map(|n| n.as_u64()).collect();
    if let Some(ints) = integers {
        let value = match combine {
            Combine::Sum => ints.iter().fold(0u64, |a, b| a.saturating_add(*b)),
            Combine::Min => ints.iter().copied().min()?,
            Combine::Max => ints.iter().copied().max()?,
            Combine::Instance => return None,
        };
        return Some(Value::from(value));
    }
    let floats = numbers.iter().filter_map(|n| n.as_f64());
    let value = match combine {
        Combine::Sum => floats.sum(),
        Combine::Min => floats.reduce(f64::min)?,
        Combine::Max => floats.reduce(f64::max)?,
        Combine::Instance => return None,
    };
    Some(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
}

fn application_events(parts: &[(&Snapshot, bool)], cap: usize) -> Vec<ApplicationEvent> {
    let mut events: Vec<ApplicationEvent> = parts
        .iter()
        .flat_map(|(s, _)| s.application_events.iter().cloned())
        .collect();
    // Newest first; at one instant, by instance, then by message.
    events.sort_by(|a, b| {
        b.time
            .total_cmp(&a.time)
            .then_with(|| a.instance.cmp(&b.instance))
            .then_with(|| a.message.cmp(&b.message))
    });
    events.truncate(cap);
    events
}

fn status(parts: &[(&Snapshot, bool)]) -> StatusSnapshot {
    let live: Vec<&StatusSnapshot> = parts
        .iter()
        .filter(|(_, live)| *live)
        .map(|(s, _)| &s.status)
        .collect();
    let same = |f: fn(&StatusSnapshot) -> &String| {
        let mut all: Vec<&String> = live.iter().map(|s| f(s)).collect();
        all.sort_unstable();
        all.dedup();
        match all.as_slice() {
            [one] => (*one).clone(),
            [] => "unknown".to_owned(),
            _ => all
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    };
    // The worst status of a live instance: another status, then maintenance, then ok.
    let mut others: Vec<&AppStatus> = live
        .iter()
        .map(|s| &s.status)
        .filter(|s| !matches!(s, AppStatus::Ok | AppStatus::Maintenance))
        .collect();
    others.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let status = match others.first() {
        Some(other) => (*other).clone(),
        None if live.iter().any(|s| s.status == AppStatus::Maintenance) => AppStatus::Maintenance,
        None => AppStatus::Ok,
    };
    StatusSnapshot {
        application: same(|s| &s.application),
        version: same(|s| &s.version),
        status,
        maintenance: live.iter().any(|s| s.maintenance),
    }
}
