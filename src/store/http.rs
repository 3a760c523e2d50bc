//! The built-in `http` namespace's counters, with the slow list, the recent requests, the
//! in-flight table and the URI sets.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use http::StatusCode;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::calls::CallTable;
use crate::store::event_log::EventLog;
use crate::store::grpc::GrpcStatusCounts;
use crate::store::in_flight::InFlightTable;
use crate::store::request::FinishedRequest;
use crate::store::ring::RecordRing;
use crate::store::shard::{self, CachePadded, IdBlocks, PaddedCounters, MAX_SHARDS};
use crate::store::uri_sets::{UriSetShard, UriSets};
use crate::store::windows::{QuarterClock, WindowedHistogram};

/// State of the `http` namespace.
#[derive(Debug)]
pub(crate) struct HttpStore {
    pub(crate) enabled: AtomicBool,
    /// What each write shard counts, and its recent requests.
    pub(crate) shards: Box<[CachePadded<HttpShard>]>,
    /// The request ids' blocks.
    ids: IdBlocks,
    /// The tracked status codes, in the order of each shard's `tracked` counters.
    pub(crate) tracked_codes: Box<[u16]>,
    /// One bit per status code below 640: set for the tracked ones, so that an untracked
    /// status (most of them) costs no search.
    tracked_bits: [u64; 10],
    /// Nanoseconds from the stats base instant to the last reset.
    pub(crate) reset_offset_nanos: AtomicU64,
    pub(crate) in_flight: InFlightTable,
    pub(crate) slow: Mutex<VecDeque<FinishedRequest>>,
    /// The event stream.
    pub(crate) events: EventLog,
    pub(crate) uri_sets: UriSets,
    /// Responses of gRPC requests by `grpc-status` code.
    pub(crate) grpc: GrpcStatusCounts,
    /// Never recorded into: gives the namespace's windows their covered durations, and the
    /// URI sets' windows are merged into its snapshot.
    pub(crate) latency: WindowedHistogram,
    /// Call statistics across requests.
    pub(crate) calls: CallTable,
    recent_capacity: usize,
}

/// What one write shard of the `http` namespace counts: every counter a request adds to, its
/// next request id, and its most recent finished requests. A snapshot adds the shards up.
#[derive(Debug)]
pub(crate) struct HttpShard {
    pub(crate) requests_total: AtomicU64,
    pub(crate) requests_aborted: AtomicU64,
    pub(crate) requests_errored: AtomicU64,
    pub(crate) requests_panicked: AtomicU64,
    pub(crate) bytes_read_total: AtomicU64,
    pub(crate) bytes_written_total: AtomicU64,
    pub(crate) streams_total: AtomicU64,
    pub(crate) status_classes: [AtomicU64; 5],
    /// One counter per tracked status code, in the order of `tracked_codes`.
    pub(crate) tracked: PaddedCounters,
    /// The next id this shard hands out (see [`IdBlocks`]).
    next_id: AtomicU64,
    /// The most recent finished requests with a detailed record that started on this shard.
    pub(crate) recent: RecordRing<FinishedRequest>,
}

impl HttpShard {
    fn new(tracked: usize, recent_capacity: usize) -> Self {
        Self {
            requests_total: AtomicU64::new(0),
            requests_aborted: AtomicU64::new(0),
            requests_errored: AtomicU64::new(0),
            requests_panicked: AtomicU64::new(0),
            bytes_read_total: AtomicU64::new(0),
            bytes_written_total: AtomicU64::new(0),
            streams_total: AtomicU64::new(0),
            status_classes: Default::default(),
            tracked: PaddedCounters::new(tracked),
            next_id: IdBlocks::cursor(),
            recent: RecordRing::new(recent_capacity),
        }
    }

    /// Zeroes the counters and forgets the recent requests.
    fn reset(&self) {
        for counter in [
            &self.requests_total,
            &self.requests_aborted,
            &self.requests_errored,
            &self.requests_panicked,
            &self.bytes_read_total,
            &self.bytes_written_total,
            &self.streams_total,
        ]
        .into_iter()
        .chain(&self.status_classes)
        .chain(&*self.tracked)
        {
            counter.store(0, Ordering::Relaxed);
        }
        self.recent.clear();
    }
}

impl HttpStore {
    pub(crate) fn new(config: &Config, clock: &Clock) -> Self {
        let (base, origin) = (clock.base, clock.base_epoch_nanos);
        let shards = config.shards.clamp(1, MAX_SHARDS);
        let tracked = config.tracked_status_codes.len();
        Self {
            enabled: AtomicBool::new(true),
            shards: (0..shards)
                .map(|_| CachePadded::new(HttpShard::new(tracked, config.recent_capacity)))
                .collect(),
            ids: IdBlocks::new(),
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
            tracked_codes: config
                .tracked_status_codes
                .iter()
                .map(StatusCode::as_u16)
                .collect(),
            reset_offset_nanos: AtomicU64::new(0),
            in_flight: InFlightTable::new(shards, &QuarterClock::new(base, origin)),
            slow: Mutex::new(VecDeque::with_capacity(config.slow_capacity.min(1024))),
            events: EventLog::new(config.event_capacity),
            uri_sets: UriSets::new(
                config.max_uri_sets,
                base,
                origin,
                config.bucket_nanos().into(),
                shards,
            ),
            grpc: GrpcStatusCounts::default(),
            latency: WindowedHistogram::new(base, origin),
            recent_capacity: config.recent_capacity,
            calls: CallTable::new(config.max_call_names),
        }
    }

    /// The shard the current thread writes to.
    #[inline]
    pub(crate) fn current_shard(&self) -> usize {
        shard::current(self.shards.len())
    }

    /// Shard `index` (the first one for an index out of range, which no key holds).
    #[inline]
    pub(crate) fn shard(&self, index: usize) -> &HttpShard {
        match self.shards.get(index) {
            Some(shard) => shard,
            None => &self.shards[0],
        }
    }

    /// A new request id, from shard `shard`'s block of ids.
    #[inline]
    pub(crate) fn next_id(&self, shard: usize) -> u64 {
        self.ids.next(&self.shard(shard).next_id)
    }

    /// Counts a response status: its class, and its code when tracked. The caller marks the
    /// set used (recording a timing does).
    #[inline]
    pub(crate) fn count_status(&self, shard: &HttpShard, status: u16, uri_set: &UriSetShard) {
        self.count_status_in(shard, status, status_class_index(status), uri_set);
    }

    /// [`count_status`](Self::count_status) with the status's class index already found.
    #[inline]
    pub(crate) fn count_status_in(
        &self,
        shard: &HttpShard,
        status: u16,
        class: Option<usize>,
        uri_set: &UriSetShard,
    ) {
        if let Some(i) = class {
            shard.status_classes[i].fetch_add(1, Ordering::Relaxed);
            uri_set.status[i].fetch_add(1, Ordering::Relaxed);
        }
        let word = self.tracked_bits.get(usize::from(status / 64)).copied();
        if word.is_some_and(|word| word >> (status % 64) & 1 == 1) {
            if let Some(n) = self
                .tracked_codes
                .iter()
                .position(|c| *c == status)
                .and_then(|i| shard.tracked.get(i))
            {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The sum of one counter over the shards.
    pub(crate) fn sum(&self, counter: impl Fn(&HttpShard) -> &AtomicU64) -> u64 {
        self.shards.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(counter(shard).load(Ordering::Relaxed))
        })
    }

    /// The most recent finished requests with a detailed record, newest first (by end, then
    /// id), each mapped by `f` (those it returns `None` for are left out): the last
    /// `recent_capacity` over every shard. Each shard keeps as many, so those are all there.
    pub(crate) fn collect_recent<R>(
        &self,
        mut f: impl FnMut(&FinishedRequest) -> Option<R>,
    ) -> Vec<R> {
        let newest_first = |a: &(Instant, u64), b: &(Instant, u64)| b.cmp(a);
        // The oldest request kept, found first, so that only the kept ones are mapped.
        let mut keys: Vec<(Instant, u64)> = Vec::new();
        for shard in &*self.shards {
            keys.extend(shard.recent.collect(|r| Some((r.end, r.id))));
        }
        keys.sort_unstable_by(newest_first);
        let Some(oldest) = keys
            .get(self.recent_capacity.saturating_sub(1))
            .or(keys.last())
        else {
            return Vec::new();
        };
        let oldest = *oldest;
        let mut kept: Vec<((Instant, u64), Option<R>)> = Vec::new();
        for shard in &*self.shards {
            kept.extend(shard.recent.collect(|r| {
                let key = (r.end, r.id);
                (key >= oldest).then(|| (key, f(r)))
            }));
        }
        kept.sort_by(|a, b| newest_first(&a.0, &b.0));
        kept.truncate(self.recent_capacity);
        kept.into_iter().filter_map(|(_, r)| r).collect()
    }

    /// The first recent request for which `f` returns `Some`.
    pub(crate) fn find_recent<R>(
        &self,
        mut f: impl FnMut(&FinishedRequest) -> Option<R>,
    ) -> Option<R> {
        self.shards
            .iter()
            .find_map(|shard| shard.recent.find(&mut f))
    }

    /// Appends a finished slow request, evicting the oldest beyond `capacity`.
    pub(crate) fn push_slow(&self, finished: FinishedRequest, capacity: usize) {
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
        for shard in &*self.shards {
            shard.reset();
        }
        let slow = std::mem::take(&mut *self.slow.lock().unwrap_or_else(|e| e.into_inner()));
        drop(slow);
        self.in_flight.clear_free();
        self.uri_sets.zero(now);
        self.grpc.reset();
        self.latency.reset(now);
        self.calls.clear();
        self.reset_offset_nanos
            .store(offset_nanos, Ordering::Relaxed);
    }
}

/// Index of a status's class in [`STATUS_CLASSES`], for `100..=599`.
#[inline]
pub(crate) fn status_class_index(status: u16) -> Option<usize> {
    match status {
        100..=599 => Some(usize::from(status / 100 - 1)),
        _ => None,
    }
}
