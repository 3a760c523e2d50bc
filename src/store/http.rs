//! The built-in `http` namespace's counters, with the slow list, the recent requests, the
//! in-flight table and the URI sets.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::calls::CallTable;
use crate::store::event_log::EventLog;
use crate::store::grpc::GrpcStatusCounts;
use crate::store::in_flight::InFlightTable;
use crate::store::request::FinishedRequest;
use crate::store::ring::RecordRing;
use crate::store::uri_sets::{UriSetEntry, UriSets};
use crate::store::windows::WindowedHistogram;

/// State of the `http` namespace.
#[derive(Debug)]
pub(crate) struct HttpStore {
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
    pub(crate) in_flight: InFlightTable,
    pub(crate) slow: Mutex<VecDeque<FinishedRequest>>,
    /// The most recent finished requests with a detailed record.
    pub(crate) recent: RecordRing<FinishedRequest>,
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
}

impl HttpStore {
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
            in_flight: InFlightTable::new(),
            slow: Mutex::new(VecDeque::with_capacity(config.slow_capacity.min(1024))),
            recent: RecordRing::new(config.recent_capacity),
            events: EventLog::new(config.event_capacity),
            uri_sets: UriSets::new(
                config.max_uri_sets,
                base,
                origin,
                config.bucket_nanos().into(),
            ),
            grpc: GrpcStatusCounts::default(),
            latency: WindowedHistogram::new(base, origin),
            calls: CallTable::new(config.max_call_names),
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
