//! What the layer may do to the `http` store over a request's life: the narrow API between
//! the middleware (`record`) and the store. Each call is a few atomic adds, or one short
//! critical section on the request's in-flight shard.

#[cfg(feature = "axum")]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use http::StatusCode;
use tokio::time::Instant;

use crate::clock::duration_nanos;
use crate::config::Config;

use super::http::{status_class_index, HttpStore};
use super::in_flight::SlotKey;
use super::request::{FinishedRequest, NewRequest, Outcome, TimelineEntry};
use super::uri_sets::method_index;

/// How a request ended, as the layer saw it: everything [`HttpStore::finish`] records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    pub(crate) outcome: Outcome,
    pub(crate) status: Option<StatusCode>,
    /// Whether the status was already counted (a stream's is, at its head).
    pub(crate) status_counted: bool,
    pub(crate) stream: bool,
    /// Request body bytes read and not yet added to the live record.
    pub(crate) unflushed_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) end: Instant,
}

impl HttpStore {
    /// The shard a request with key `key` writes to.
    #[inline]
    pub(crate) fn key_shard(&self, key: SlotKey) -> &super::http::HttpShard {
        self.shard(key.shard())
    }

    /// Counts a request as started on shard `shard` and enters it in the in-flight table;
    /// the key keeps the shard, which the request writes to until it ends.
    #[inline]
    pub(crate) fn start(&self, shard: usize, id: u64, new: &mut NewRequest<'_>) -> SlotKey {
        self.shard(shard)
            .requests_total
            .fetch_add(1, Ordering::Relaxed);
        self.in_flight.insert(shard, id, new)
    }

    /// Records a stream's head: its status is counted right away, since a stream may stay
    /// open for hours. `false` when the request was withdrawn while it ran.
    #[inline]
    pub(crate) fn stream_head(&self, key: SlotKey, id: u64, status: StatusCode, read: u64) -> bool {
        let found = self.in_flight.update(key, id, |live| {
            live.status = Some(status);
            live.stream = true;
            live.bytes_read = live.bytes_read.saturating_add(read);
            // Counted under the shard's lock, so the set needs no reference of its own.
            live.uri_set.mark_used();
            let shard = self.key_shard(key);
            self.count_status(shard, status.as_u16(), &live.uri_set);
            live.uri_set.streams.fetch_add(1, Ordering::Relaxed);
            shard.streams_total.fetch_add(1, Ordering::Relaxed);
        });
        found.is_some()
    }

    /// Records an ordinary response's head for the in-flight table: published without a
    /// lock when it can be, else written under the shard's lock with the bytes read so far.
    #[inline]
    pub(crate) fn head(&self, key: SlotKey, id: u64, status: StatusCode, read: u64) {
        if read > 0 || !self.in_flight.set_head(key, id, status) {
            self.in_flight.update(key, id, |live| {
                live.status = Some(status);
                live.bytes_read = live.bytes_read.saturating_add(read);
            });
        }
    }

    /// Adds request body bytes read to the live record.
    #[inline]
    pub(crate) fn add_read(&self, key: SlotKey, id: u64, read: u64) {
        if read > 0 {
            self.in_flight.update(key, id, |live| {
                live.bytes_read = live.bytes_read.saturating_add(read);
            });
        }
    }

    /// Counts response body bytes the server polled; `last` says the body ends with them, so
    /// that the live record needs no update.
    #[inline]
    pub(crate) fn add_written(&self, key: SlotKey, id: u64, bytes: u64, last: bool) {
        self.key_shard(key)
            .bytes_written_total
            .fetch_add(bytes, Ordering::Relaxed);
        if !last {
            self.in_flight.update(key, id, |live| {
                live.bytes_written = live.bytes_written.saturating_add(bytes);
            });
        }
    }

    /// Records the end of request `id` and frees its slot. Recorded under the shard's lock,
    /// so that the record is read and written in place; a request withdrawn while it ran
    /// leaves no trace.
    #[inline]
    pub(crate) fn finish(&self, key: SlotKey, id: u64, ending: Ending, config: &Config) {
        let Ending {
            outcome,
            status,
            status_counted,
            stream,
            unflushed_read,
            bytes_written,
            end,
        } = ending;
        let shard = self.key_shard(key);
        let recent = &shard.recent;
        let _ = self.in_flight.remove_with(key, id, |live, clock| {
            // The live record keeps the start, which the guard therefore need not carry.
            let elapsed = end.saturating_duration_since(live.start);
            live.bytes_read = live.bytes_read.saturating_add(unflushed_read);
            let uri_set = &**live.uri_set;
            let code = status.map(|s| s.as_u16());
            let class = code.and_then(status_class_index);
            if let (false, Some(code)) = (status_counted, code) {
                // Marked used below, with the timing (a stream's was at its head).
                self.count_status_in(shard, code, class, uri_set);
            }
            if live.bytes_read > 0 {
                uri_set
                    .bytes_read
                    .fetch_add(live.bytes_read, Ordering::Relaxed);
            }
            if bytes_written > 0 {
                uri_set
                    .bytes_written
                    .fetch_add(bytes_written, Ordering::Relaxed);
            }

            match outcome {
                Outcome::Aborted => {
                    shard.requests_aborted.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Error | Outcome::Panicked => {
                    shard.requests_errored.fetch_add(1, Ordering::Relaxed);
                    uri_set.errors.fetch_add(1, Ordering::Relaxed);
                    if outcome == Outcome::Panicked {
                        shard.requests_panicked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }

            if !stream {
                // Only a request with a detailed record can be found from its exemplar.
                let exemplar = live.detailed.then(|| (id, live.trace_id.get()));
                uri_set.record_timing(
                    end,
                    clock.quarter_of(end),
                    duration_nanos(elapsed),
                    code,
                    outcome,
                    exemplar,
                );
            }

            if !live.detailed {
                return;
            }
            if let Some(extras) = live.extras.as_deref() {
                if !extras.events.is_empty() && self.enabled.load(Ordering::Relaxed) {
                    self.calls.record(live.uri_set.key(), &extras.events);
                }
            }
            live.status = status;
            live.bytes_written = bytes_written;
            let threshold = config.slow_threshold;
            if !stream && !threshold.is_zero() && elapsed > threshold && config.slow_capacity > 0 {
                let slow = FinishedRequest::new(id, live.clone(), end, outcome);
                self.push_slow(slow, config.slow_capacity);
            }
            // Swapped with the oldest record, which the free slot keeps.
            recent.push_with(live, |old, live| match old {
                Some(old) => {
                    old.overwrite(id, live, end, outcome);
                    None
                }
                None => Some(FinishedRequest::new(id, live.clone(), end, outcome)),
            });
        });
    }

    /// Adds an entry to a detailed request's timeline, or counts it as dropped past
    /// `max_entries`.
    pub(crate) fn add_timeline_entry(
        &self,
        key: SlotKey,
        id: u64,
        entry: TimelineEntry,
        max_entries: usize,
    ) {
        let mut entry = Some(entry);
        self.in_flight.update(key, id, |live| {
            if !live.detailed {
                return;
            }
            let extras = live.extras_mut();
            if extras.events.len() >= max_entries {
                extras.events_dropped = extras.events_dropped.saturating_add(1);
                return;
            }
            extras.events.extend(entry.take());
        });
    }

    /// Counts request `id` in the URI set `label` (with its method) from now on.
    pub(crate) fn move_to_uri_set(&self, key: SlotKey, id: u64, label: &str) {
        let Some(method) = self
            .in_flight
            .update(key, id, |live| method_index(&live.method))
        else {
            return;
        };
        let entry = self.uri_sets.get(method, label);
        let part = std::sync::Arc::clone(entry.shard(key.shard()));
        drop(entry);
        let old = self
            .in_flight
            .update(key, id, |live| std::mem::replace(&mut live.uri_set, part));
        // The set chosen at start does not keep a key if this request was its only user.
        if let Some(old) = old {
            self.uri_sets.release(old);
        }
    }

    /// Leaves request `id` out of the detailed records (timeline, slow list, recent requests,
    /// event stream).
    pub(crate) fn drop_details(&self, key: SlotKey, id: u64) {
        self.in_flight.update(key, id, |live| {
            live.detailed = false;
            if let Some(extras) = live.extras.as_mut() {
                extras.events = Vec::new();
            }
        });
    }

    /// Takes request `id` back out of every statistic, as if it had never been recorded;
    /// `unflushed_read` is the request body bytes it read that are not in its record yet.
    #[cfg(feature = "axum")]
    pub(crate) fn withdraw(&self, key: SlotKey, id: u64, unflushed_read: u64) {
        let Some(live) = self.in_flight.remove(key, id) else {
            return;
        };
        let sub = |counter: &AtomicU64, n: u64| {
            let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        };
        let shard = self.key_shard(key);
        sub(&shard.requests_total, 1);
        sub(
            &shard.bytes_read_total,
            live.bytes_read.saturating_add(unflushed_read),
        );
        self.uri_sets.release(live.uri_set);
    }
}
