//! Call statistics across requests (appstats' "RPC Stats" and "Path Stats"): for each call
//! name, how often it was called, by how many requests, how long it took, and from which URI
//! sets.
//!
//! A request's calls are the timed entries of its timeline (spans, events carrying their
//! elapsed time, timed manual events), counted once when the request finishes, under one
//! short critical section; a request that made no call never comes here. Bounded: at most
//! `max_call_names` names, then the `<overflow>` entry, and per name at most
//! [`MAX_URI_SETS_PER_CALL`] URI sets, then `<overflow>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::clock::duration_nanos;
use crate::histogram::Histogram;

use super::request::TimelineEntry;
use super::uri_sets::OVERFLOW;

/// URI sets kept per call name; later ones are counted under `<overflow>`.
pub(crate) const MAX_URI_SETS_PER_CALL: usize = 64;

/// The call statistics of one store.
#[derive(Debug)]
pub(crate) struct CallTable {
    max_names: usize,
    calls: Mutex<Calls>,
}

#[derive(Debug, Default)]
struct Calls {
    /// Each name's index in `stats`.
    by_name: HashMap<Box<str>, usize>,
    stats: Vec<CallStats>,
    overflow: CallStats,
}

/// What is kept for one call name.
#[derive(Debug, Default, Clone)]
pub(crate) struct CallStats {
    /// Requests that made the call at least once.
    pub(crate) requests: u64,
    /// One value per call: its duration.
    pub(crate) latency: Histogram,
    /// Per URI set key: calls, and requests that made the call.
    pub(crate) uri_sets: BTreeMap<Box<str>, (u64, u64)>,
}

impl CallStats {
    fn is_empty(&self) -> bool {
        self.requests == 0 && self.latency.is_empty()
    }

    /// Adds `calls` calls by `requests` requests of URI set `uri_set`.
    fn count_in(&mut self, uri_set: &str, calls: u64, requests: u64) {
        let key =
            if self.uri_sets.contains_key(uri_set) || self.uri_sets.len() < MAX_URI_SETS_PER_CALL {
                uri_set
            } else {
                OVERFLOW
            };
        let counts = match self.uri_sets.get_mut(key) {
            Some(counts) => counts,
            None => self.uri_sets.entry(key.into()).or_default(),
        };
        counts.0 = counts.0.saturating_add(calls);
        counts.1 = counts.1.saturating_add(requests);
    }
}

impl CallTable {
    pub(crate) fn new(max_names: usize) -> Self {
        Self {
            max_names,
            calls: Mutex::new(Calls::default()),
        }
    }

    /// Counts the calls of one finished request of URI set `uri_set`: every timed, closed
    /// entry of its timeline. Each name is looked up once per request.
    pub(crate) fn record(&self, uri_set: &str, timeline: &[TimelineEntry]) {
        if !timeline.iter().any(is_call) {
            return;
        }
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let Calls {
            by_name,
            stats: all,
            overflow,
        } = &mut *calls;
        let mut overflow_calls = 0u64;
        for (n, entry) in timeline.iter().enumerate() {
            if !is_call(entry) {
                continue;
            }
            let name = entry.call_name();
            let earlier = timeline.get(..n).unwrap_or_default();
            if earlier.iter().any(|e| is_call(e) && e.call_name() == name) {
                // Counted with the first call of its name.
                continue;
            }
            let slot = match by_name.get(name) {
                Some(&i) => Some(i),
                None if by_name.len() < self.max_names => {
                    all.push(CallStats::default());
                    by_name.insert(name.into(), all.len() - 1);
                    Some(all.len() - 1)
                }
                None => None,
            };
            let Some(stats) = slot.and_then(|i| all.get_mut(i)) else {
                overflow_calls += record_all(overflow, timeline, n, name);
                continue;
            };
            let count = record_all(stats, timeline, n, name);
            stats.requests = stats.requests.saturating_add(1);
            stats.count_in(uri_set, count, 1);
        }
        if overflow_calls > 0 {
            overflow.requests = overflow.requests.saturating_add(1);
            overflow.count_in(uri_set, overflow_calls, 1);
        }
    }

    /// A copy of every call's statistics by name, `<overflow>` included once it was used.
    pub(crate) fn snapshot(&self) -> Vec<(String, CallStats)> {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(String, CallStats)> = calls
            .by_name
            .iter()
            .filter_map(|(name, i)| Some((name.to_string(), calls.stats.get(*i)?.clone())))
            .collect();
        if !calls.overflow.is_empty() {
            all.push((OVERFLOW.to_owned(), calls.overflow.clone()));
        }
        all
    }

    /// Forgets every call.
    pub(crate) fn clear(&self) {
        let old = std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()));
        drop(old);
    }
}

/// Records the durations of the calls named `name` from entry `from` on; returns how many.
fn record_all(stats: &mut CallStats, timeline: &[TimelineEntry], from: usize, name: &str) -> u64 {
    let mut count = 0u64;
    for e in timeline.get(from..).unwrap_or_default() {
        if is_call(e) && e.call_name() == name {
            let nanos = duration_nanos(e.end.saturating_duration_since(e.start));
            stats.latency.record(nanos);
            count += 1;
        }
    }
    count
}

/// Whether a timeline entry is a call: timed, and closed.
fn is_call(entry: &TimelineEntry) -> bool {
    entry.timed && !entry.open
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::store::request::Source;

    fn call(name: &'static str, millis: u64, timed: bool) -> TimelineEntry {
        let start = Instant::now();
        TimelineEntry {
            label: Cow::Borrowed(name),
            data: None,
            start,
            end: start + Duration::from_millis(millis),
            source: Source::Span,
            target: "t",
            parent: None,
            timed,
            open: false,
        }
    }

    #[test]
    fn calls_are_counted_per_name_per_request_and_per_uri_set() {
        let table = CallTable::new(8);
        table.record(
            "GET /a",
            &[
                call("db", 2, true),
                call("db", 4, true),
                call("log", 0, false),
            ],
        );
        table.record("GET /b", &[call("db", 6, true), call("cache", 1, true)]);
        table.record("GET /c", &[call("note", 0, false)]);
        let all: BTreeMap<String, CallStats> = table.snapshot().into_iter().collect();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["cache", "db"]);
        let db = &all["db"];
        assert_eq!((db.latency.count(), db.requests), (3, 2));
        assert_eq!(db.latency.sum_nanos(), 12_000_000);
        assert_eq!(
            db.uri_sets.get("GET /a").copied().unwrap_or_default(),
            (2, 1)
        );
        assert_eq!(
            db.uri_sets.get("GET /b").copied().unwrap_or_default(),
            (1, 1)
        );
        table.clear();
        assert!(table.snapshot().is_empty());
    }

    #[test]
    fn names_past_the_cap_go_to_overflow_once_per_request() {
        let table = CallTable::new(1);
        table.record(
            "GET /",
            &[call("a", 1, true), call("b", 1, true), call("c", 1, true)],
        );
        let all: BTreeMap<String, CallStats> = table.snapshot().into_iter().collect();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["<overflow>", "a"]);
        assert_eq!(all["<overflow>"].latency.count(), 2);
        assert_eq!(all["<overflow>"].requests, 1);
    }

    #[test]
    fn uri_sets_past_the_cap_go_to_overflow() {
        let table = CallTable::new(4);
        for n in 0..MAX_URI_SETS_PER_CALL + 3 {
            table.record(&format!("GET /{n}"), &[call("db", 1, true)]);
        }
        let all: BTreeMap<String, CallStats> = table.snapshot().into_iter().collect();
        let sets = &all["db"].uri_sets;
        assert_eq!(sets.len(), MAX_URI_SETS_PER_CALL + 1);
        assert_eq!(sets.get(OVERFLOW).copied(), Some((3, 3)));
    }
}
