//! The built-in `http` namespace: counters, the in-flight table, the slow list and URI sets.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::config::Config;
use crate::events::EventLog;
use crate::snapshot::{Outcome, RequestRecord, TimelineEvent};
use crate::store::ring::RecordRing;
use crate::store::uri_sets::{UriSetEntry, UriSets};
use crate::store::windows::WindowedHistogram;

const SHARDS: usize = 16;

/// A request that has started and not yet ended.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) method: Method,
    /// Path and query (kept whole; the query is only shown when enabled). Smaller than the
    /// whole `Uri`, which this record never needs.
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) uri_set: Arc<UriSetEntry>,
    pub(crate) start: Instant,
    pub(crate) status: Option<StatusCode>,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) stream: bool,
    /// Whether the request keeps a detailed record (sampled, and not `dont_record`).
    pub(crate) detailed: bool,
    /// What most requests do not have (a client address, a timeline): allocated only when
    /// needed, so that the record moved through the tables stays small.
    pub(crate) extra: Option<Box<Extra>>,
}

/// The optional parts of a live request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extra {
    pub(crate) client: Option<SocketAddr>,
    /// Custom events of the timeline.
    pub(crate) events: Vec<TimedEvent>,
    pub(crate) events_dropped: u32,
}

/// What a request's live record starts with; the rest starts empty.
pub(crate) struct NewLive<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: Option<PathAndQuery>,
    pub(crate) uri_set: Arc<UriSetEntry>,
    pub(crate) start: Instant,
    pub(crate) detailed: bool,
    pub(crate) extra: Option<Box<Extra>>,
}

impl Live {
    fn new(new: NewLive<'_>) -> Self {
        Self {
            method: new.method.clone(),
            path: new.path,
            uri_set: new.uri_set,
            start: new.start,
            status: None,
            bytes_read: 0,
            bytes_written: 0,
            stream: false,
            detailed: new.detailed,
            extra: new.extra,
        }
    }

    /// Writes a new request's record over this one, field by field, in place.
    #[inline]
    fn restart(&mut self, new: NewLive<'_>) {
        self.method.clone_from(new.method);
        self.path = new.path;
        self.uri_set = new.uri_set;
        self.start = new.start;
        self.status = None;
        self.bytes_read = 0;
        self.bytes_written = 0;
        self.stream = false;
        self.detailed = new.detailed;
        self.extra = new.extra;
    }

    /// The optional parts, created on first use.
    pub(crate) fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

/// A custom event on a request's timeline.
#[derive(Debug, Clone)]
pub(crate) struct TimedEvent {
    pub(crate) label: String,
    pub(crate) data: Option<String>,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

/// A finished request, kept whole so that its record is only built when someone reads it.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub(crate) id: u64,
    /// The live record, without its path (see `path`).
    pub(crate) live: Live,
    /// The path as recorded, copied out of the request: a kept `PathAndQuery` would keep the
    /// server's whole read buffer alive, for as long as the request stays in the ring.
    pub(crate) path: StoredPath,
    pub(crate) end: Instant,
    pub(crate) outcome: Outcome,
}

impl Finished {
    /// Finishes `live`: copies its path out and lets go of the request's buffers.
    #[inline]
    pub(crate) fn new(
        id: u64,
        mut live: Live,
        end: Instant,
        outcome: Outcome,
        config: &Config,
    ) -> Self {
        let path = StoredPath::new(raw_path(live.path.as_ref(), config));
        live.path = None;
        Self {
            id,
            live,
            path,
            end,
            outcome,
        }
    }

    /// Replaces this record with `live` finished, in place: the path is copied into the buffer
    /// already here, and the two live records swap places, so that `live` is left holding
    /// this record's old one (without a path) rather than anything being moved or dropped.
    #[inline]
    pub(crate) fn overwrite(
        &mut self,
        id: u64,
        live: &mut Live,
        end: Instant,
        outcome: Outcome,
        config: &Config,
    ) {
        self.path.set(raw_path(live.path.as_ref(), config));
        live.path = None;
        std::mem::swap(&mut self.live, live);
        self.id = id;
        self.end = end;
        self.outcome = outcome;
    }

    pub(crate) fn record(&self, clock: &Clock, config: &Config) -> RequestRecord {
        record_of(
            self.id,
            &self.live,
            self.path.as_str(),
            clock,
            self.end,
            Some(self.outcome),
            config,
        )
    }
}

/// A path kept by value: inline up to 62 bytes (no allocation), on the heap beyond.
#[derive(Clone)]
pub(crate) enum StoredPath {
    Inline { len: u8, bytes: [u8; 62] },
    Heap(Box<str>),
}

impl StoredPath {
    #[inline]
    pub(crate) fn new(path: &str) -> Self {
        match u8::try_from(path.len()) {
            Ok(len) if path.len() <= 62 => {
                let mut bytes = [0u8; 62];
                bytes[..path.len()].copy_from_slice(path.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(path.into()),
        }
    }

    /// Replaces the path, reusing the inline buffer.
    #[inline]
    pub(crate) fn set(&mut self, path: &str) {
        match (self, u8::try_from(path.len())) {
            (Self::Inline { len, bytes }, Ok(n)) if path.len() <= bytes.len() => {
                if let Some(dst) = bytes.get_mut(..path.len()) {
                    dst.copy_from_slice(path.as_bytes());
                    *len = n;
                }
            }
            (this, _) => *this = Self::new(path),
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

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("uri_set", &self.uri_set.key)
            .field("status", &self.status)
            .field("detailed", &self.detailed)
            .field("extra", &self.extra)
            .finish_non_exhaustive()
    }
}

/// Where a live request is kept in the in-flight table: its shard and its slot there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotKey {
    shard: u32,
    index: u32,
}

impl SlotKey {
    /// A key that finds nothing.
    pub(crate) const NONE: Self = Self {
        shard: u32::MAX,
        index: u32::MAX,
    };
}

/// One shard: slots reused through a free list, so that entering and leaving the table is a
/// push and a pop under the shard's lock, without hashing, and allocates nothing once the
/// shard has grown to the number of requests in flight.
///
/// A free slot keeps a finished record under the [`FREE`] id (without its path or optional
/// parts): the record the request left there, or the one it swapped out of the
/// recent-requests ring. The next request writes its fields over it in place, so a record is
/// never moved in or out of the table whole. Only a withdrawn request empties its slot.
#[derive(Debug, Default)]
struct Shard {
    slots: Vec<Option<(u64, Live)>>,
    free: Vec<u32>,
}

/// The id of a free slot's record (ids are sequential from 0: never reached).
const FREE: u64 = u64::MAX;

/// Slots per shard whose response status can be published without the shard's lock.
const HEAD_SLOTS: usize = 64;

/// Bits of a request id kept in a published status (ids are sequential: never reached).
const HEAD_ID_BITS: u32 = 48;

/// Live requests, sharded by id so that concurrent requests rarely share a lock.
#[derive(Debug)]
pub(crate) struct InFlight {
    shards: Box<[Mutex<Shard>]>,
    /// The response status of the request in each of the first [`HEAD_SLOTS`] slots of every
    /// shard, published when its head is produced without taking the shard's lock, as
    /// `id << 16 | status`. Readers fold it into the live record; the id tells a status of
    /// the slot's current request from one left by an earlier request.
    heads: Box<[AtomicU64]>,
}

impl InFlight {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            heads: (0..SHARDS * HEAD_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    #[inline]
    fn head(&self, shard: u32, index: u32) -> Option<&AtomicU64> {
        let index = usize::try_from(index).ok().filter(|i| *i < HEAD_SLOTS)?;
        let shard = usize::try_from(shard).ok()?;
        self.heads.get(shard * HEAD_SLOTS + index)
    }

    /// Publishes the response status of request `id` without the shard's lock; `false` when
    /// its slot has no place for it (the caller then updates the live record).
    #[inline]
    pub(crate) fn set_head(&self, key: SlotKey, id: u64, status: StatusCode) -> bool {
        let Some(cell) = self.head(key.shard, key.index) else {
            return false;
        };
        let tag = id & ((1 << HEAD_ID_BITS) - 1);
        cell.store(tag << 16 | u64::from(status.as_u16()), Ordering::Relaxed);
        true
    }

    /// Folds a published status into the live record in slot `index` of `shard`.
    fn fold_head(&self, shard: u32, index: usize, id: u64, live: &mut Live) {
        if live.status.is_some() {
            return;
        }
        let Some(cell) = u32::try_from(index).ok().and_then(|i| self.head(shard, i)) else {
            return;
        };
        let value = cell.load(Ordering::Relaxed);
        if value >> 16 == id & ((1 << HEAD_ID_BITS) - 1) {
            live.status = u16::try_from(value & 0xFFFF)
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok());
        }
    }

    #[inline]
    fn lock(&self, shard: u32) -> Option<std::sync::MutexGuard<'_, Shard>> {
        let shard = self.shards.get(usize::try_from(shard).ok()?)?;
        Some(shard.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Enters request `id`; the key finds it again without a search.
    #[inline]
    pub(crate) fn insert(&self, id: u64, new: NewLive<'_>) -> SlotKey {
        // Ids are sequential, so their low bits spread requests evenly over the shards.
        let shard = (id % SHARDS as u64) as u32;
        let Some(mut guard) = self.lock(shard) else {
            return SlotKey {
                shard,
                index: u32::MAX,
            };
        };
        let index = match guard.free.pop() {
            Some(index) => {
                match guard.slots.get_mut(index as usize) {
                    Some(Some((slot_id, live))) => {
                        *slot_id = id;
                        live.restart(new);
                    }
                    Some(slot) => *slot = Some((id, Live::new(new))),
                    None => {}
                }
                index
            }
            None => {
                let index = u32::try_from(guard.slots.len()).unwrap_or(u32::MAX);
                guard.slots.push(Some((id, Live::new(new))));
                index
            }
        };
        SlotKey { shard, index }
    }

    /// Takes request `id` out of the table, emptying its slot (a withdrawn request).
    #[cfg(any(test, feature = "axum"))]
    pub(crate) fn remove(&self, key: SlotKey, id: u64) -> Option<Live> {
        let mut guard = self.lock(key.shard)?;
        let slot = guard.slots.get_mut(key.index as usize)?;
        if !matches!(slot, Some((slot_id, _)) if *slot_id == id) {
            return None;
        }
        let (_, live) = slot.take()?;
        guard.free.push(key.index);
        Some(live)
    }

    /// Ends request `id`: runs `f` on its record under the shard's lock, then frees the slot.
    /// What `f` leaves in the record stays in the free slot, without its path (which holds
    /// the request's buffer) and its optional parts.
    #[inline]
    pub(crate) fn remove_with<R>(
        &self,
        key: SlotKey,
        id: u64,
        f: impl FnOnce(&mut Live) -> R,
    ) -> Option<R> {
        self.with_entry(key, id, |(slot_id, live), free| {
            let r = f(live);
            *slot_id = FREE;
            live.path = None;
            live.extra = None;
            free.push(key.index);
            r
        })
    }

    /// Drops the finished records that free slots keep, so that they hold no URI set (after a
    /// reset, when every set is empty again and an unused one must be free to go).
    pub(crate) fn clear_free(&self) {
        for shard in &*self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let Shard { slots, free } = &mut *shard;
            for index in free.iter() {
                if let Some(slot) = slots.get_mut(*index as usize) {
                    *slot = None;
                }
            }
        }
    }

    /// Runs `f` on the live record, if request `id` is still in flight.
    #[inline]
    pub(crate) fn update<R>(
        &self,
        key: SlotKey,
        id: u64,
        f: impl FnOnce(&mut Live) -> R,
    ) -> Option<R> {
        self.with_entry(key, id, |(_, live), _| f(live))
    }

    /// Runs `f` under the shard's lock on request `id`'s slot (its id and record) and on the
    /// shard's free list, if the request is still in flight.
    #[inline]
    fn with_entry<R>(
        &self,
        key: SlotKey,
        id: u64,
        f: impl FnOnce(&mut (u64, Live), &mut Vec<u32>) -> R,
    ) -> Option<R> {
        let mut guard = self.lock(key.shard)?;
        let Shard { slots, free } = &mut *guard;
        match slots.get_mut(key.index as usize)? {
            Some(entry) if entry.0 == id => Some(f(entry, free)),
            _ => None,
        }
    }

    /// Runs `f` on the live record of request `id`, searching for it (for reports).
    pub(crate) fn find<R>(&self, id: u64, f: impl FnOnce(&Live) -> R) -> Option<R> {
        if id == FREE {
            return None;
        }
        let shard = (id % SHARDS as u64) as u32;
        let mut guard = self.lock(shard)?;
        let (index, live) =
            guard
                .slots
                .iter_mut()
                .enumerate()
                .find_map(|(index, slot)| match slot {
                    Some((slot_id, live)) if *slot_id == id => Some((index, live)),
                    _ => None,
                })?;
        self.fold_head(shard, index, id, live);
        Some(f(live))
    }

    /// Copies the live records, one shard at a time.
    pub(crate) fn collect(&self, mut f: impl FnMut(u64, &Live)) {
        for (shard_index, shard) in (0u32..).zip(&*self.shards) {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (index, slot) in shard.slots.iter_mut().enumerate() {
                if let Some((id, live)) = slot.as_mut().filter(|(id, _)| *id != FREE) {
                    self.fold_head(shard_index, index, *id, live);
                    f(*id, live);
                }
            }
        }
    }
}

/// State of the `http` namespace.
#[derive(Debug)]
pub(crate) struct HttpNamespace {
    pub(crate) enabled: AtomicBool,
    pub(crate) requests_total: AtomicU64,
    pub(crate) requests_aborted: AtomicU64,
    pub(crate) requests_errored: AtomicU64,
    pub(crate) requests_panicked: AtomicU64,
    pub(crate) bytes_read_total: AtomicU64,
    pub(crate) bytes_written_total: AtomicU64,
    pub(crate) streams_total: AtomicU64,
    pub(crate) status_classes: [AtomicU64; 5],
    pub(crate) tracked: Box<[(u16, AtomicU64)]>,
    /// One bit per status code below 640: set for the tracked ones, so that an untracked
    /// status (most of them) costs no search.
    tracked_bits: [u64; 10],
    /// Nanoseconds from the stats base instant to the last reset.
    pub(crate) reset_offset_nanos: AtomicU64,
    pub(crate) in_flight: InFlight,
    pub(crate) slow: Mutex<VecDeque<Finished>>,
    /// The most recent finished requests with a detailed record.
    pub(crate) recent: RecordRing<Finished>,
    /// The event stream.
    pub(crate) events: EventLog,
    pub(crate) uri_sets: UriSets,
    /// Never recorded into: gives the namespace's windows their covered durations, and the
    /// URI sets' windows are merged into its snapshot.
    pub(crate) latency: WindowedHistogram,
}

impl HttpNamespace {
    pub(crate) fn new(config: &Config, clock: &Clock) -> Self {
        let (base, origin) = (clock.base, clock.base_epoch_nanos);
        Self {
            enabled: AtomicBool::new(true),
            requests_total: AtomicU64::new(0),
            requests_aborted: AtomicU64::new(0),
            requests_errored: AtomicU64::new(0),
            requests_panicked: AtomicU64::new(0),
            bytes_read_total: AtomicU64::new(0),
            bytes_written_total: AtomicU64::new(0),
            streams_total: AtomicU64::new(0),
            status_classes: Default::default(),
            tracked_bits: config
                .tracked_status_codes
                .iter()
                .fold([0u64; 10], |mut bits, code| {
                    let code = usize::from(code.as_u16());
                    if let Some(word) = bits.get_mut(code / 64) {
                        *word |= 1 << (code % 64);
                    }
                    bits
                }),
            tracked: config
                .tracked_status_codes
                .iter()
                .map(|c| (c.as_u16(), AtomicU64::new(0)))
                .collect(),
            reset_offset_nanos: AtomicU64::new(0),
            in_flight: InFlight::new(),
            slow: Mutex::new(VecDeque::with_capacity(config.slow_capacity.min(1024))),
            recent: RecordRing::new(config.recent_capacity),
            events: EventLog::new(config.event_capacity),
            uri_sets: UriSets::new(
                config.max_uri_sets,
                base,
                origin,
                config.bucket_nanos().into(),
            ),
            latency: WindowedHistogram::new(base, origin),
        }
    }

    /// Counts a response status: its class, and its code when tracked. The caller marks the
    /// set used (recording a timing does).
    #[inline]
    pub(crate) fn count_status(&self, status: u16, uri_set: &UriSetEntry) {
        self.count_status_in(status, status_class_index(status), uri_set);
    }

    /// [`count_status`](Self::count_status) with the status's class index already found.
    #[inline]
    pub(crate) fn count_status_in(&self, status: u16, class: Option<usize>, uri_set: &UriSetEntry) {
        if let Some(i) = class {
            self.status_classes[i].fetch_add(1, Ordering::Relaxed);
            uri_set.status[i].fetch_add(1, Ordering::Relaxed);
        }
        let word = self.tracked_bits.get(usize::from(status / 64)).copied();
        if word.is_some_and(|word| word >> (status % 64) & 1 == 1) {
            if let Some((_, n)) = self.tracked.iter().find(|(c, _)| *c == status) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Appends a finished slow request, evicting the oldest beyond `capacity`.
    pub(crate) fn push_slow(&self, finished: Finished, capacity: usize) {
        let mut evicted = Vec::new();
        {
            let mut slow = self.slow.lock().unwrap_or_else(|e| e.into_inner());
            slow.push_back(finished);
            while slow.len() > capacity {
                evicted.extend(slow.pop_front());
            }
        }
        drop(evicted);
    }

    /// Zeroes counters and collections; live requests stay in the table.
    pub(crate) fn reset(&self, offset_nanos: u64, now: Instant) {
        for counter in [
            &self.requests_total,
            &self.requests_aborted,
            &self.requests_errored,
            &self.requests_panicked,
            &self.bytes_read_total,
            &self.bytes_written_total,
            &self.streams_total,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        for counter in &self.status_classes {
            counter.store(0, Ordering::Relaxed);
        }
        for (_, counter) in &*self.tracked {
            counter.store(0, Ordering::Relaxed);
        }
        let slow = std::mem::take(&mut *self.slow.lock().unwrap_or_else(|e| e.into_inner()));
        drop(slow);
        self.recent.clear();
        self.in_flight.clear_free();
        self.uri_sets.zero(now);
        self.latency.reset(now);
        self.reset_offset_nanos
            .store(offset_nanos, Ordering::Relaxed);
    }
}

/// Maps a monotonic instant to Unix epoch seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) base: Instant,
    /// Unix time of `base` in seconds.
    pub(crate) base_epoch: f64,
    /// Unix time of `base` in nanoseconds.
    pub(crate) base_epoch_nanos: u64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            base: Instant::now(),
            base_epoch: since_epoch.as_secs_f64(),
            base_epoch_nanos: duration_nanos(since_epoch),
        }
    }

    /// A clock whose `base` is Unix time `epoch_nanos` (tests line stores up on one clock).
    #[cfg(test)]
    pub(crate) fn at(base: Instant, epoch_nanos: u64) -> Self {
        Self {
            base,
            base_epoch: epoch_nanos as f64 / 1e9,
            base_epoch_nanos: epoch_nanos,
        }
    }

    pub(crate) fn epoch_of(&self, instant: Instant) -> f64 {
        self.base_epoch + instant.saturating_duration_since(self.base).as_secs_f64()
    }
}

pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Index of a status's class in [`STATUS_CLASSES`], for `100..=599`.
#[inline]
pub(crate) fn status_class_index(status: u16) -> Option<usize> {
    match status {
        100..=599 => Some(usize::from(status / 100 - 1)),
        _ => None,
    }
}

/// The path, with the query only when enabled, before cleaning.
#[inline]
pub(crate) fn raw_path<'a>(path: Option<&'a PathAndQuery>, config: &Config) -> &'a str {
    match (config.record_query, path) {
        (true, Some(pq)) => pq.as_str(),
        (false, Some(pq)) => pq.path(),
        (_, None) => "",
    }
}

/// Builds the record of a live request or, with `end`, of a finished one.
pub(crate) fn record_of(
    id: u64,
    live: &Live,
    path: &str,
    clock: &Clock,
    end: Instant,
    finished: Option<Outcome>,
    config: &Config,
) -> RequestRecord {
    RequestRecord {
        id: id.to_string(),
        method: crate::sanitize::clean(live.method.as_str(), config.max_string_len),
        path: crate::sanitize::clean(path, config.max_string_len),
        uri_set: live.uri_set.key.to_string(),
        start_time: clock.epoch_of(live.start),
        end_time: finished.map(|_| clock.epoch_of(end)),
        processing_seconds: end.saturating_duration_since(live.start).as_secs_f64(),
        status: live.status.map(|s| s.as_u16()),
        bytes_read: live.bytes_read,
        bytes_written: live.bytes_written,
        outcome: finished.unwrap_or(Outcome::InFlight),
        client: live
            .extra
            .as_ref()
            .and_then(|x| x.client)
            .map(|a| a.to_string()),
        stream: live.stream,
        events: live
            .extra
            .iter()
            .flat_map(|x| &x.events)
            .map(|e| TimelineEvent {
                label: e.label.clone(),
                data: e.data.clone(),
                offset_seconds: e.start.saturating_duration_since(live.start).as_secs_f64(),
                duration_seconds: e.end.saturating_duration_since(e.start).as_secs_f64(),
            })
            .collect(),
        events_dropped: live.extra.as_ref().map_or(0, |x| x.events_dropped),
        instance: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(sets: &UriSets) -> NewLive<'static> {
        NewLive {
            method: &Method::GET,
            path: None,
            uri_set: sets.get(0, "/"),
            start: Instant::now(),
            detailed: true,
            extra: None,
        }
    }

    fn status_of(table: &InFlight, id: u64) -> Option<StatusCode> {
        table.find(id, |live| live.status).flatten()
    }

    #[test]
    fn a_published_status_shows_for_its_own_request_only() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]));
        let table = InFlight::new();
        let key = table.insert(16, live(&sets));
        assert!(table.set_head(key, 16, StatusCode::CREATED));
        assert_eq!(status_of(&table, 16), Some(StatusCode::CREATED));

        // The slot is reused by another request: the status left there is not its own.
        assert!(table.remove(key, 16).is_some());
        let again = table.insert(32, live(&sets));
        assert_eq!(again, key, "the freed slot is reused");
        assert_eq!(status_of(&table, 32), None);
        let mut seen = Vec::new();
        table.collect(|id, live| seen.push((id, live.status)));
        assert_eq!(seen, vec![(32, None)]);
    }

    #[test]
    fn a_finished_record_stays_in_its_free_slot_unseen_until_reused_in_place() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]));
        let table = InFlight::new();
        let mut first = live(&sets);
        first.path = Some(PathAndQuery::from_static("/held?q=1"));
        first.extra = Some(Box::default());
        let key = table.insert(16, first);
        let read = table.remove_with(key, 16, |live| {
            live.bytes_read = 7;
            live.bytes_read
        });
        assert_eq!(read, Some(7));
        assert_eq!(table.remove_with(key, 16, |_| ()), None, "ended once");
        assert!(table.update(key, 16, |_| ()).is_none());
        assert!(table.find(16, |_| ()).is_none());
        assert!(
            table.find(FREE, |_| ()).is_none(),
            "a free slot is never found"
        );
        let mut seen = Vec::new();
        table.collect(|id, _| seen.push(id));
        assert!(seen.is_empty(), "free slots are not in flight: {seen:?}");
        {
            let shard = table.lock(key.shard).expect("shard");
            let Some(Some((id, kept))) = shard.slots.get(key.index as usize) else {
                panic!("the free slot keeps its record");
            };
            assert_eq!(*id, FREE);
            assert!(kept.path.is_none(), "the request's buffer is let go");
            assert!(kept.extra.is_none());
        }

        let again = table.insert(32, live(&sets));
        assert_eq!(again, key, "the freed slot is reused");
        assert_eq!(
            table.find(32, |live| (live.bytes_read, live.status, live.detailed)),
            Some((0, None, true)),
            "every field is written anew"
        );
    }

    #[test]
    fn clearing_free_slots_lets_go_of_their_records_only() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]));
        let table = InFlight::new();
        let set = sets.get(0, "/");
        let done = table.insert(16, live(&sets));
        let running = table.insert(32, live(&sets));
        table.remove_with(done, 16, |_| ()).expect("in flight");
        // The table's own reference, the two records and `set`.
        assert_eq!(Arc::strong_count(&set), 4);
        table.clear_free();
        assert_eq!(
            Arc::strong_count(&set),
            3,
            "the free slot's record is dropped"
        );
        assert!(
            table.find(32, |_| ()).is_some(),
            "a request in flight stays"
        );
        assert_eq!(
            table.insert(48, live(&sets)),
            done,
            "the emptied slot is reused"
        );
        assert_ne!(running, done);
    }

    #[test]
    fn a_removed_request_empties_its_slot() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]));
        let table = InFlight::new();
        let key = table.insert(16, live(&sets));
        let removed = table.remove(key, 16).expect("in flight");
        assert_eq!(
            Arc::strong_count(&removed.uri_set),
            2,
            "the table keeps no reference"
        );
        let shard = table.lock(key.shard).expect("shard");
        assert!(matches!(shard.slots.get(key.index as usize), Some(None)));
    }

    #[test]
    fn slots_beyond_the_published_ones_take_the_lock() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]));
        let table = InFlight::new();
        // Ids that are multiples of the shard count all land in shard 0.
        let keys: Vec<(u64, SlotKey)> = (0..=HEAD_SLOTS as u64)
            .map(|i| {
                let id = i * SHARDS as u64;
                (id, table.insert(id, live(&sets)))
            })
            .collect();
        let (last_id, last_key) = keys[HEAD_SLOTS];
        assert!(table.set_head(keys[0].1, keys[0].0, StatusCode::OK));
        assert!(!table.set_head(last_key, last_id, StatusCode::OK));
        table.update(last_key, last_id, |live| live.status = Some(StatusCode::OK));
        assert_eq!(status_of(&table, last_id), Some(StatusCode::OK));
        assert!(!table.set_head(SlotKey::NONE, 1, StatusCode::OK));
    }
}
