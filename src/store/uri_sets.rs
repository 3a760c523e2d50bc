//! Deciding which URI set a request is counted in, and the bounded table of URI sets.
//!
//! A URI set is keyed `"<METHOD> <route>"`. The route is, in order of preference:
//!
//! 1. a [`UriSet`] label found in the request extensions (set by an outer layer or middleware),
//! 2. the label returned by the builder hook [`StatsBuilder::uri_set_with`],
//! 3. axum's `MatchedPath` template, such as `/users/{id}` (with the `axum` feature),
//! 4. the fallback `<unmatched>`.
//!
//! The raw request path is never used as a key unless the application's hook returns it.
//! Methods outside the standard nine fold to `_OTHER`. At most `max_uri_sets` keys exist;
//! requests for later keys are counted in the single `<overflow>` set.
//!
//! [`StatsBuilder::uri_set_with`]: crate::StatsBuilder::uri_set_with

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use http::Method;
use tokio::time::Instant;

use crate::store::durations::{error_type, SeriesKeys, StatusDurations};
use crate::store::request::Outcome;
use crate::store::shard::CachePadded;
use crate::store::windows::WindowedHistogram;

/// Route label used when no route is known for a request.
pub const UNMATCHED: &str = "<unmatched>";
/// Key of the set that collects requests once `max_uri_sets` keys exist.
pub const OVERFLOW: &str = "<overflow>";
/// Method label for methods outside the standard set.
pub const OTHER_METHOD: &str = "_OTHER";

/// A URI set label for a request, read from the request extensions.
///
/// Insert it from an outer middleware (or any code that runs before the stats layer sees the
/// request) to choose the URI set a request is counted in; it takes precedence over axum's
/// `MatchedPath` and the builder hook.
///
/// # Example
///
/// ```
/// use tower_stats::UriSet;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(UriSet::new("static files"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriSet(pub Cow<'static, str>);

impl UriSet {
    /// Creates a label; a `&'static str` costs no allocation.
    pub fn new(label: impl Into<Cow<'static, str>>) -> Self {
        Self(label.into())
    }

    /// The label as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];
pub(crate) const METHOD_SLOTS: usize = METHODS.len() + 1;
/// The index of `HEAD` in the method table ([`method_index`]).
pub(crate) const HEAD_INDEX: usize = 1;
const _: () = assert!(matches!(METHODS[HEAD_INDEX], Method::HEAD));
const SHARDS: usize = 16;

/// Index of a method in the fixed method table; `_OTHER` is the last slot.
#[inline]
pub(crate) fn method_index(method: &Method) -> usize {
    METHODS
        .iter()
        .position(|m| m == method)
        .unwrap_or(METHODS.len())
}

pub(crate) fn method_label(index: usize) -> &'static str {
    METHODS.get(index).map_or(OTHER_METHOD, Method::as_str)
}

/// One URI set: its key, and what each write shard recorded in it.
///
/// A request writes only its own shard's part ([`UriSetShard`]), created the first time that
/// shard records in the set, and holds a reference to that part alone: taking and dropping it
/// writes a count that only that shard writes. A snapshot adds the parts up.
#[derive(Debug)]
pub(crate) struct UriSetEntry {
    pub(crate) info: Arc<UriSetInfo>,
    base: Instant,
    origin: u64,
    /// One part per write shard, each on cache lines of its own.
    shards: Box<[OnceLock<UriSetRef>]>,
}

/// What a URI set is, shared by its parts: only read by requests.
#[derive(Debug)]
pub(crate) struct UriSetInfo {
    pub(crate) key: Box<str>,
    pub(crate) method: usize,
    /// Set once anything was recorded in the set (a status or a timing): after that, only
    /// read by requests.
    pub(crate) used: AtomicBool,
    pub(crate) bounds: Arc<[u64]>,
    /// The status codes of the duration series, claimed by the first requests that need them:
    /// shared by the parts, so that a series is the same in every part.
    pub(crate) series: Arc<SeriesKeys>,
}

/// A request's reference to the part of its URI set its shard writes.
pub(crate) type UriSetRef = Arc<CachePadded<UriSetShard>>;

/// Timings and counters of one URI set written by one shard. Every field is an atomic:
/// recording takes no lock.
#[derive(Debug)]
pub(crate) struct UriSetShard {
    pub(crate) info: Arc<UriSetInfo>,
    /// Latency distribution with its 1m/15m/total windows; its total is the set's count,
    /// sum, min and max.
    pub(crate) latency: WindowedHistogram,
    pub(crate) streams: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) status: [AtomicU64; 5],
    pub(crate) errors: AtomicU64,
    /// The Prometheus duration buckets by status code and error type, with exemplars.
    pub(crate) durations: StatusDurations,
}

impl UriSetShard {
    fn new(info: &Arc<UriSetInfo>, base: Instant, origin: u64) -> Self {
        Self {
            info: Arc::clone(info),
            latency: WindowedHistogram::new(base, origin),
            streams: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            status: Default::default(),
            errors: AtomicU64::new(0),
            durations: StatusDurations::with_series(
                Arc::clone(&info.bounds),
                base,
                Arc::clone(&info.series),
            ),
        }
    }

    /// Zeroes every counter and window in place.
    fn zero(&self, now: Instant) {
        self.latency.reset(now);
        for c in [
            &self.streams,
            &self.bytes_read,
            &self.bytes_written,
            &self.errors,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        for c in &self.status {
            c.store(0, Ordering::Relaxed);
        }
        self.durations.zero();
    }

    /// Whether nothing was ever recorded in this part.
    fn is_unused(&self) -> bool {
        let zero = |c: &AtomicU64| c.load(Ordering::Relaxed) == 0;
        zero(&self.streams)
            && zero(&self.errors)
            && zero(&self.bytes_read)
            && zero(&self.bytes_written)
            && self.status.iter().all(zero)
            && self.durations.is_empty()
    }

    /// The set's key, `"<METHOD> <route>"`.
    pub(crate) fn key(&self) -> &str {
        &self.info.key
    }

    /// Marks the set as used (once: a load, and a store the first time).
    #[inline]
    pub(crate) fn mark_used(&self) {
        if !self.info.used.load(Ordering::Relaxed) {
            self.info.used.store(true, Ordering::Relaxed);
        }
    }

    /// Records a finished request's processing time, with its status and how it ended:
    /// it ended at `now`, in window period `quarter` (from the store's [`QuarterClock`]);
    /// `exemplar` is its id and trace id (0 for none) when it may be shown as an exemplar.
    ///
    /// [`QuarterClock`]: crate::store::windows::QuarterClock
    #[inline]
    pub(crate) fn record_timing(
        &self,
        now: Instant,
        quarter: u64,
        nanos: u64,
        code: Option<u16>,
        outcome: Outcome,
        exemplar: Option<(u64, u128)>,
    ) {
        self.mark_used();
        let errored = matches!(outcome, Outcome::Error | Outcome::Panicked);
        self.latency.record_in_quarter(quarter, nanos, errored);
        self.durations
            .record(nanos, code, error_type(outcome), now, exemplar);
    }
}

impl UriSetEntry {
    fn new(
        key: Box<str>,
        method: usize,
        base: Instant,
        origin: u64,
        bounds: Arc<[u64]>,
        shards: usize,
    ) -> Self {
        Self {
            info: Arc::new(UriSetInfo {
                key,
                method,
                used: AtomicBool::new(false),
                bounds,
                series: Arc::default(),
            }),
            base,
            origin,
            shards: (0..shards.max(1)).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The set's key, `"<METHOD> <route>"`.
    pub(crate) fn key(&self) -> &str {
        &self.info.key
    }

    /// Whether anything was recorded in the set since it was created or zeroed.
    #[inline]
    pub(crate) fn is_used(&self) -> bool {
        self.info.used.load(Ordering::Relaxed)
    }

    /// The route part of the key (after `"<METHOD> "`), or `<overflow>`.
    pub(crate) fn route(&self) -> &str {
        let key = self.key();
        key.split_once(' ').map_or(key, |(_, r)| r)
    }

    /// The part shard `index` writes, created on its first use (an index out of range gets
    /// the first shard's).
    #[inline]
    pub(crate) fn shard(&self, index: usize) -> &UriSetRef {
        let cell = match self.shards.get(index) {
            Some(cell) => cell,
            None => &self.shards[0],
        };
        cell.get_or_init(|| {
            Arc::new(CachePadded::new(UriSetShard::new(
                &self.info,
                self.base,
                self.origin,
            )))
        })
    }

    /// The parts of the shards that recorded in this set (or were given to a request).
    pub(crate) fn shards(&self) -> impl Iterator<Item = &UriSetRef> {
        self.shards.iter().filter_map(OnceLock::get)
    }

    /// Zeroes every counter and window in place; the key stays.
    fn zero(&self, now: Instant) {
        self.info.used.store(false, Ordering::Relaxed);
        self.shards().for_each(|shard| shard.zero(now));
    }

    /// Whether nothing was ever recorded in this set.
    fn is_unused(&self) -> bool {
        self.shards().all(|shard| shard.is_unused())
    }
}

type Slots = [Option<Arc<UriSetEntry>>; METHOD_SLOTS];

/// The bounded table of URI sets, sharded so that recording never takes a global lock.
#[derive(Debug)]
pub(crate) struct UriSets {
    shards: Box<[RwLock<HashMap<Box<str>, Slots>>]>,
    hasher: RandomState,
    keys: AtomicUsize,
    cap: usize,
    overflow: Arc<UriSetEntry>,
    pub(crate) overflowed: AtomicU64,
    base: Instant,
    /// Unix time of `base` in nanoseconds.
    origin: u64,
    bounds: Arc<[u64]>,
    /// Write shards of every set.
    write_shards: usize,
}

impl UriSets {
    pub(crate) fn new(
        cap: usize,
        base: Instant,
        origin: u64,
        bounds: Arc<[u64]>,
        write_shards: usize,
    ) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
            keys: AtomicUsize::new(0),
            cap,
            overflow: Arc::new(UriSetEntry::new(
                OVERFLOW.into(),
                0,
                base,
                origin,
                Arc::clone(&bounds),
                write_shards,
            )),
            overflowed: AtomicU64::new(0),
            base,
            origin,
            bounds,
            write_shards,
        }
    }

    fn map_for(&self, route: &str) -> &RwLock<HashMap<Box<str>, Slots>> {
        // The table has exactly `SHARDS` entries.
        &self.shards[(self.hasher.hash_one(route) as usize) % SHARDS]
    }

    /// The entry for `method` and `route`, created if the cap allows, else the overflow set.
    pub(crate) fn get(&self, method: usize, route: &str) -> Arc<UriSetEntry> {
        let method = method.min(METHOD_SLOTS - 1);
        let shard = self.map_for(route);
        {
            let map = shard.read().unwrap_or_else(|e| e.into_inner());
            if let Some(Some(entry)) = map.get(route).map(|slots| &slots[method]) {
                return Arc::clone(entry);
            }
        }
        let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
        if let Some(Some(entry)) = map.get(route).map(|slots| &slots[method]) {
            return Arc::clone(entry);
        }
        let reserved = self
            .keys
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            drop(map);
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            return Arc::clone(&self.overflow);
        }
        let key = format!("{} {route}", method_label(method)).into_boxed_str();
        let entry = Arc::new(UriSetEntry::new(
            key,
            method,
            self.base,
            self.origin,
            Arc::clone(&self.bounds),
            self.write_shards,
        ));
        let slots = map.entry(route.into()).or_default();
        slots[method] = Some(Arc::clone(&entry));
        entry
    }

    /// Drops `part`'s set from the table if nothing was ever recorded in it and nobody else
    /// holds it or any of its parts: `part` must be the caller's last reference outside the
    /// table. Used when a request moves to another URI set, or is withdrawn, before it
    /// recorded anything.
    // Taken by value on purpose: the caller's reference must be given up for the count to mean
    // anything.
    #[allow(clippy::needless_pass_by_value)]
    pub(crate) fn release(&self, part: UriSetRef) {
        let info = &part.info;
        if &*info.key == OVERFLOW {
            return;
        }
        let route = info.key.split_once(' ').map_or(&*info.key, |(_, r)| r);
        // Entries are only cloned out of the table under the read lock, and parts only handed
        // out by a holder of the entry: under the write lock, with the table the entry's only
        // holder, no count can grow.
        let mut map = self
            .map_for(route)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let Some(slots) = map.get_mut(route) else {
            return;
        };
        let Some(slot) = slots.get_mut(info.method) else {
            return;
        };
        let Some(entry) = slot.as_ref() else {
            return;
        };
        if !Arc::ptr_eq(&entry.info, info) || Arc::strong_count(entry) != 1 || !entry.is_unused() {
            return;
        }
        // Each part is held by the entry, and `part` by the caller as well.
        let unheld = entry.shards().all(|p| {
            let holders = if Arc::ptr_eq(p, &part) { 2 } else { 1 };
            Arc::strong_count(p) == holders
        });
        if unheld {
            *slot = None;
            self.keys.fetch_sub(1, Ordering::AcqRel);
            if slots.iter().all(Option::is_none) {
                map.remove(route);
            }
        }
    }

    /// Zeroes every set in place (keys stay, so that handles to them stay valid) and the
    /// overflow count.
    pub(crate) fn zero(&self, now: Instant) {
        for shard in &*self.shards {
            let map = shard.read().unwrap_or_else(|e| e.into_inner());
            for entry in map.values().flatten().flatten() {
                entry.zero(now);
            }
        }
        self.overflow.zero(now);
        self.overflowed.store(0, Ordering::Relaxed);
    }

    /// Every entry in which something was recorded since it was created or zeroed, plus the
    /// overflow set when used.
    pub(crate) fn entries(&self) -> Vec<Arc<UriSetEntry>> {
        let mut out = Vec::new();
        for shard in &*self.shards {
            let map = shard.read().unwrap_or_else(|e| e.into_inner());
            out.extend(
                map.values()
                    .flatten()
                    .flatten()
                    .filter(|e| e.is_used())
                    .cloned(),
            );
        }
        if self.overflowed.load(Ordering::Relaxed) > 0 {
            out.push(Arc::clone(&self.overflow));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_fold_to_other() {
        assert_eq!(method_label(method_index(&Method::GET)), "GET");
        assert_eq!(method_label(method_index(&Method::PATCH)), "PATCH");
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_label(method_index(&custom)), OTHER_METHOD);
    }

    #[test]
    fn same_key_same_entry_and_cap() {
        let sets = UriSets::new(2, Instant::now(), 0, Arc::from(vec![1_000]), 2);
        let a = sets.get(0, "/a");
        assert!(Arc::ptr_eq(&a, &sets.get(0, "/a")));
        assert_eq!(a.key(), "GET /a");
        let b = sets.get(2, "/a");
        assert_eq!(b.key(), "POST /a");
        let c = sets.get(0, "/c");
        assert_eq!(c.key(), OVERFLOW);
        assert_eq!(sets.overflowed.load(Ordering::Relaxed), 1);
        assert_eq!(sets.entries().len(), 1, "only the overflow set was used");
        a.shard(0).mark_used();
        b.shard(1).mark_used();
        assert_eq!(sets.entries().len(), 3);
    }

    #[test]
    fn release_frees_unused_keys_only() {
        let sets = UriSets::new(1, Instant::now(), 0, Arc::from(vec![1_000]), 2);
        let a = sets.get(0, "/a");
        let (part, other) = (Arc::clone(a.shard(0)), Arc::clone(a.shard(1)));
        sets.release(Arc::clone(&part));
        assert_eq!(
            sets.keys.load(Ordering::Relaxed),
            1,
            "the entry is still held"
        );
        drop(a);
        sets.release(Arc::clone(&part));
        assert_eq!(
            sets.keys.load(Ordering::Relaxed),
            1,
            "a part is still held twice"
        );
        drop(other);
        sets.release(part);
        assert_eq!(sets.keys.load(Ordering::Relaxed), 0);
        let b = sets.get(0, "/b");
        assert_eq!(b.key(), "GET /b", "the freed key is available again");
        let part = Arc::clone(b.shard(1));
        drop(b);
        part.record_timing(
            Instant::now(),
            0,
            1_000,
            Some(200),
            Outcome::Completed,
            None,
        );
        sets.release(part);
        assert_eq!(sets.entries().len(), 1, "a used set stays");
    }

    #[test]
    fn zero_keeps_keys_and_handles() {
        let sets = UriSets::new(4, Instant::now(), 0, Arc::from(vec![1_000]), 2);
        let held = sets.get(0, "/a");
        held.shard(0)
            .record_timing(Instant::now(), 0, 500, Some(200), Outcome::Completed, None);
        held.shard(1)
            .record_timing(Instant::now(), 0, 700, Some(200), Outcome::Completed, None);
        assert!(
            Arc::ptr_eq(held.shard(5), held.shard(0)),
            "out of range: the first part"
        );
        sets.zero(Instant::now());
        let again = sets.get(0, "/a");
        assert!(
            Arc::ptr_eq(&held, &again),
            "a handle taken before the reset stays valid"
        );
        assert_eq!(again.shards().count(), 2);
        for shard in again.shards() {
            assert_eq!(shard.latency.data(Instant::now()).total.count(), 0);
            assert!(shard.durations.is_empty());
        }
    }
}
