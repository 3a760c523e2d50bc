//! The derived values of a snapshot (rates, averages, quantiles, window figures), computed
//! from its raw data in this one place.

use std::collections::BTreeMap;

use crate::clock::nanos_to_secs as secs;
use crate::histogram::Histogram;

use super::model::{
    CallSnapshot, CallTotal, HttpSnapshot, LatencyHistograms, PeriodHistogram, Snapshot,
    TimelineEvent, UriSetSnapshot, WindowSnapshot,
};

/// Length of a quarter period in seconds; the `"1m"` window is made of these.
pub(crate) const QUARTER_SECONDS: u64 = 15;
/// Quarters in the `"1m"` window: four complete ones and the current one.
pub(crate) const QUARTERS: u64 = 5;
/// Length of a minute period in seconds; the `"15m"` window is made of these.
pub(crate) const MINUTE_SECONDS: u64 = 60;
/// Minutes in the `"15m"` window: fifteen complete ones and the current one.
pub(crate) const MINUTES: u64 = 16;

impl Snapshot {
    /// Computes every derived value from the raw data, as of `generated_at`.
    pub(crate) fn derive(&mut self) {
        let now = self.generated_at;
        self.server.uptime_seconds = (now - self.server.start_time).max(0.0);
        derive_http(&mut self.http, now);
        self.http.uptime_seconds = self.server.uptime_seconds;
        for instance in &mut self.instances {
            instance.server.uptime_seconds =
                (instance.generated_at - instance.server.start_time).max(0.0);
        }
    }
}

fn derive_http(http: &mut HttpSnapshot, now: f64) {
    let reset = http.reset_time;
    let counting = (now - reset).max(0.0);
    let per_second = |n: u64| {
        if counting > 0.0 {
            n as f64 / counting
        } else {
            0.0
        }
    };
    let requests_total = http.requests_total;
    let per_request = |n: u64| {
        if requests_total > 0 {
            n as f64 / requests_total as f64
        } else {
            0.0
        }
    };
    http.requests_in_flight = http.in_flight.len() as u64;
    http.streams_open = http.open_streams.len() as u64;
    http.requests_per_second = per_second(requests_total);
    http.bytes_read_per_second = per_second(http.bytes_read_total);
    http.bytes_written_per_second = per_second(http.bytes_written_total);
    http.bytes_read_per_request = per_request(http.bytes_read_total);
    http.bytes_written_per_request = per_request(http.bytes_written_total);
    let total = &http.latency.total;
    http.processing_seconds_total = total.sum_secs();
    http.p50_seconds = total.quantile_secs(0.5);
    http.p90_seconds = total.quantile_secs(0.9);
    http.p99_seconds = total.quantile_secs(0.99);
    http.p999_seconds = total.quantile_secs(0.999);
    http.windows = windows(&http.latency, now, reset);
    http.requests_per_minute = minute_counts(&http.latency.minutes, now, reset);
    for set in http.uri_sets.values_mut() {
        derive_uri_set(set, now, reset);
    }
    for call in http.calls.values_mut() {
        derive_call(call);
    }
    for record in http.records_mut() {
        record.call_totals = call_totals(&record.events);
    }
}

fn ratio(n: u64, of: u64) -> f64 {
    if of > 0 {
        n as f64 / of as f64
    } else {
        0.0
    }
}

fn derive_call(call: &mut CallSnapshot) {
    let latency = &call.latency;
    call.count = latency.count();
    call.total_seconds = latency.sum_secs();
    call.avg_seconds = latency.mean_secs().unwrap_or(0.0);
    call.p50_seconds = latency.quantile_secs(0.5);
    call.p99_seconds = latency.quantile_secs(0.99);
    call.per_request = ratio(call.count, call.requests);
    for set in call.uri_sets.values_mut() {
        set.per_request = ratio(set.count, set.requests);
    }
}

/// A timeline's timed entries totalled by call name, most frequent first, then by name.
pub(crate) fn call_totals(events: &[TimelineEvent]) -> Vec<CallTotal> {
    let mut totals: Vec<CallTotal> = Vec::new();
    for e in events.iter().filter(|e| e.timed && !e.open) {
        match totals.iter_mut().find(|t| t.name == e.call) {
            Some(t) => {
                t.count += 1;
                t.total_seconds += e.duration_seconds;
            }
            None => totals.push(CallTotal {
                name: e.call.clone(),
                count: 1,
                total_seconds: e.duration_seconds,
            }),
        }
    }
    totals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    totals
}

fn derive_uri_set(set: &mut UriSetSnapshot, now: f64, reset: f64) {
    let total = &set.latency.total;
    let count = total.count();
    let sum = total.sum_secs();
    set.count = count;
    set.min_seconds = total.min().map(secs);
    set.max_seconds = total.max().map(secs);
    set.sum_seconds = sum;
    set.avg_seconds = if count == 0 { 0.0 } else { sum / count as f64 };
    set.p50_seconds = total.quantile_secs(0.5);
    set.p90_seconds = total.quantile_secs(0.9);
    set.p99_seconds = total.quantile_secs(0.99);
    set.p999_seconds = total.quantile_secs(0.999);
    set.windows = windows(&set.latency, now, reset);
    for class in &mut set.durations {
        class.sum_seconds = secs(class.sum_nanos);
    }
}

/// The period that holds `at` (Unix seconds), for periods of `length` seconds.
fn period_of(at: f64, length: u64) -> u64 {
    // `as` saturates: a negative or NaN time is period 0.
    (at / length as f64).floor() as u64
}

/// The periods of a window of `len` periods of `length` seconds ending now, not before the
/// reset: `(first period, covered seconds)`. The current period is the one holding `now`, or
/// a later one that holds data (a clock a little ahead).
fn window_span(
    periods: &[PeriodHistogram],
    len: u64,
    length: u64,
    now: f64,
    reset: f64,
) -> (u64, u64, f64) {
    let latest = periods.iter().map(|p| p.period).max().unwrap_or(0);
    let current = period_of(now, length).max(latest);
    let first = current
        .saturating_sub(len.saturating_sub(1))
        .max(period_of(reset, length));
    let start = (first as f64 * length as f64).max(reset);
    (first, current, (now - start).max(0.0))
}

/// The latencies, errors and covered seconds of the window of the last `len` periods of
/// `length` seconds at `now` (Unix seconds), not reaching before `reset`.
pub(crate) fn window_histogram(
    periods: &[PeriodHistogram],
    len: u64,
    length: u64,
    now: f64,
    reset: f64,
) -> (Histogram, u64, f64) {
    let (first, current, covered) = window_span(periods, len, length, now, reset);
    let mut histogram = Histogram::new();
    let mut errors = 0u64;
    for p in periods
        .iter()
        .filter(|p| (first..=current).contains(&p.period))
    {
        histogram.merge(&p.histogram);
        errors = errors.wrapping_add(p.errors);
    }
    (histogram, errors, covered)
}

fn window_of(
    periods: &[PeriodHistogram],
    len: u64,
    length: u64,
    now: f64,
    reset: f64,
) -> WindowSnapshot {
    let (histogram, errors, covered) = window_histogram(periods, len, length, now, reset);
    window_figures(&histogram, errors, covered)
}

fn window_figures(h: &Histogram, errors: u64, covered: f64) -> WindowSnapshot {
    WindowSnapshot {
        count: h.count(),
        requests_per_second: if covered > 0.0 {
            h.count() as f64 / covered
        } else {
            0.0
        },
        errors,
        covered_seconds: covered,
        avg_seconds: h.mean_secs(),
        min_seconds: h.min().map(secs),
        max_seconds: h.max().map(secs),
        p50_seconds: h.quantile_secs(0.5),
        p90_seconds: h.quantile_secs(0.9),
        p99_seconds: h.quantile_secs(0.99),
        p999_seconds: h.quantile_secs(0.999),
    }
}

/// The `"1m"`, `"15m"` and `"total"` figures of a set of latency histograms.
fn windows(latency: &LatencyHistograms, now: f64, reset: f64) -> BTreeMap<String, WindowSnapshot> {
    BTreeMap::from([
        (
            "1m".to_owned(),
            window_of(&latency.quarters, QUARTERS, QUARTER_SECONDS, now, reset),
        ),
        (
            "15m".to_owned(),
            window_of(&latency.minutes, MINUTES, MINUTE_SECONDS, now, reset),
        ),
        (
            "total".to_owned(),
            window_figures(&latency.total, latency.total_errors, (now - reset).max(0.0)),
        ),
    ])
}

/// Finished requests in each of the last sixteen minutes, oldest first, the last being the
/// current minute; minutes before the reset count 0.
pub(crate) fn minute_counts(minutes: &[PeriodHistogram], now: f64, reset: f64) -> Vec<u64> {
    let (first, current, _) = window_span(minutes, MINUTES, MINUTE_SECONDS, now, reset);
    (0..MINUTES)
        .rev()
        .map(|back| {
            let Some(period) = current.checked_sub(back) else {
                return 0;
            };
            if period < first {
                return 0;
            }
            minutes
                .iter()
                .filter(|m| m.period == period)
                .map(|m| m.histogram.count())
                .fold(0u64, u64::wrapping_add)
        })
        .collect()
}
