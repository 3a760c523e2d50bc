//! Exemplars of the duration histogram: for each bucket of each series, one recent request
//! that fell in it (its id, and its W3C trace id when it carried a valid `traceparent`), so
//! that a bucket of the OpenMetrics output leads to `/stats/requests/{id}`.
//!
//! Each bucket holds one exemplar in six atomics (48 bytes) under a sequence number, written
//! without a lock and read whole: a writer that finds the slot being written gives up (the
//! next request will do), a reader retries a few times and then leaves the bucket without an
//! exemplar. An exemplar is replaced by a request of its bucket once [`REFRESH_IDS`] requests
//! or more have started since its own (ids count the requests of the write shard whose part
//! of the set holds the exemplars): a busy bucket costs a request one load and a subtraction,
//! and its exemplar is never more than 16 of its shard's requests older than the bucket's
//! newest; a quiet bucket's exemplar is always its newest request. Requests in the slow buckets, the interesting ones, are also kept in the slow
//! list. Nothing is allocated after creation.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// How many requests must have started since an exemplar's before a newer request of its
/// bucket replaces it.
pub(crate) const REFRESH_IDS: u64 = 16;

/// A request offered as the exemplar of its bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offer {
    pub(crate) id: u64,
    /// The W3C trace id, 0 for none (an all-zero trace id is invalid).
    pub(crate) trace_id: u128,
    /// Its processing time.
    pub(crate) nanos: u64,
}

/// One exemplar as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Read {
    pub(crate) id: u64,
    pub(crate) trace_id: u128,
    pub(crate) nanos: u64,
    pub(crate) at: u64,
}

#[derive(Debug, Default)]
struct Slot {
    /// Odd while being written.
    seq: AtomicU64,
    /// The request's id plus one; 0 when empty.
    id: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    nanos: AtomicU64,
    /// End of the request, in nanoseconds after the base instant.
    at: AtomicU64,
}

/// A fixed number of exemplar slots, one per bucket of every series.
#[derive(Debug)]
pub(crate) struct Exemplars {
    slots: Box<[Slot]>,
}

impl Exemplars {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            slots: (0..len).map(|_| Slot::default()).collect(),
        }
    }

    /// Offers a request as the exemplar of slot `index`: taken when the slot is empty or
    /// its exemplar is [`REFRESH_IDS`] requests older or more, and nobody is writing it.
    /// `at` gives when the request ended (nanoseconds after the base instant); it is only
    /// called when the request is taken.
    #[inline]
    pub(crate) fn offer(&self, index: usize, offer: Offer, at: impl FnOnce() -> u64) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let id = offer.id.wrapping_add(1);
        let last = slot.id.load(Ordering::Relaxed);
        if last != 0 && id.wrapping_sub(last) < REFRESH_IDS {
            return;
        }
        let seq = slot.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || slot
                .seq
                .compare_exchange(
                    seq,
                    seq.wrapping_add(1),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        // The data stores stay after the odd sequence number.
        fence(Ordering::Release);
        slot.id.store(id, Ordering::Relaxed);
        slot.trace_hi
            .store((offer.trace_id >> 64) as u64, Ordering::Relaxed);
        slot.trace_lo
            .store(offer.trace_id as u64, Ordering::Relaxed);
        slot.nanos.store(offer.nanos, Ordering::Relaxed);
        slot.at.store(at(), Ordering::Relaxed);
        slot.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The exemplar of slot `index`, if any and if it could be read whole.
    pub(crate) fn read(&self, index: usize) -> Option<Read> {
        let slot = self.slots.get(index)?;
        for _ in 0..4 {
            let before = slot.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let read = Read {
                id: slot.id.load(Ordering::Relaxed),
                trace_id: u128::from(slot.trace_hi.load(Ordering::Relaxed)) << 64
                    | u128::from(slot.trace_lo.load(Ordering::Relaxed)),
                nanos: slot.nanos.load(Ordering::Relaxed),
                at: slot.at.load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) == before {
                return read.id.checked_sub(1).map(|id| Read { id, ..read });
            }
        }
        None
    }

    /// Empties every slot.
    pub(crate) fn clear(&self) {
        for slot in &*self.slots {
            slot.id.store(0, Ordering::Relaxed);
        }
    }
}

/// A request's W3C trace id, or none: two words rather than a `u128`, so that the live
/// record that keeps it is aligned on 8 bytes, not 16, and moves and swaps in fewer steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TraceId {
    hi: u64,
    lo: u64,
}

impl TraceId {
    /// No trace id (an all-zero trace id is invalid).
    pub(crate) const NONE: Self = Self { hi: 0, lo: 0 };

    /// The trace id as a number, 0 for none.
    #[inline]
    pub(crate) fn get(self) -> u128 {
        u128::from(self.hi) << 64 | u128::from(self.lo)
    }

    /// The trace id, `None` for none.
    pub(crate) fn to_option(self) -> Option<u128> {
        Some(self.get()).filter(|t| *t != 0)
    }
}

/// The trace id of a request's valid W3C `traceparent` header (see [`trace_id`]), or
/// [`TraceId::NONE`].
#[inline]
pub(crate) fn trace_id_of(headers: &http::HeaderMap) -> TraceId {
    match headers
        .get(&TRACEPARENT)
        .and_then(|v| trace_id(v.as_bytes()))
    {
        Some(id) => TraceId {
            hi: (id >> 64) as u64,
            lo: id as u64,
        },
        None => TraceId::NONE,
    }
}

/// A static rather than a constant: looked up by reference, the name is not built and
/// dropped for every request.
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// The trace id of a W3C `traceparent` header value, `None` unless it is well formed:
/// `version-traceid-parentid-flags` in lowercase hex, version not `ff`, neither id all
/// zeros; version `00` has exactly these four fields, a later version may add more after a
/// `-`. The header comes from the network: nothing else of it is kept.
#[inline]
pub(crate) fn trace_id(traceparent: &[u8]) -> Option<u128> {
    if traceparent.len() < 55 {
        return None;
    }
    let (head, rest) = traceparent.split_at(55);
    let version = hex(&head[0..2])?;
    let well_formed = version != 0xff
        && (rest.is_empty() || (version != 0 && rest[0] == b'-'))
        && head[2] == b'-'
        && head[35] == b'-'
        && head[52] == b'-';
    if !well_formed {
        return None;
    }
    let trace = hex(&head[3..35])?;
    let parent = hex(&head[36..52])?;
    hex(&head[53..55])?;
    (trace != 0 && parent != 0).then_some(trace)
}

/// Lowercase hex digits as a number (at most 32 of them).
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u128::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_is_checked() {
        assert_eq!(
            trace_id(VALID.as_bytes()),
            Some(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
        );
        // A later version may carry more fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert!(trace_id(later.as_bytes()).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(trace_id(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn a_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }

    #[test]
    fn an_exemplar_is_kept_for_a_while_then_replaced() {
        let exemplars = Exemplars::new(2);
        assert_eq!(exemplars.read(0), None);
        let offer = |id| Offer {
            id,
            trace_id: u128::from(id) << 64 | 7,
            nanos: 5,
        };
        exemplars.offer(0, offer(0), || 10);
        exemplars.offer(0, offer(REFRESH_IDS - 1), || unreachable!("not taken"));
        assert_eq!(exemplars.read(0).map(|r| r.id), Some(0), "kept");
        exemplars.offer(0, offer(REFRESH_IDS), || 20);
        let read = exemplars.read(0).unwrap();
        assert_eq!(
            read,
            Read {
                id: REFRESH_IDS,
                trace_id: u128::from(REFRESH_IDS) << 64 | 7,
                nanos: 5,
                at: 20
            }
        );
        assert_eq!(exemplars.read(1), None);
        exemplars.offer(9, offer(4), || 0);
        exemplars.clear();
        assert_eq!(exemplars.read(0), None);
    }

    #[test]
    fn concurrent_writers_never_tear_an_exemplar() {
        let exemplars = std::sync::Arc::new(Exemplars::new(1));
        let writers: Vec<_> = (1..=4u64)
            .map(|w| {
                let exemplars = std::sync::Arc::clone(&exemplars);
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let id = w << 32 | i;
                        exemplars.offer(
                            0,
                            Offer {
                                id,
                                trace_id: u128::from(id) << 64 | u128::from(id),
                                nanos: id,
                            },
                            || id,
                        );
                    }
                })
            })
            .collect();
        let mut seen = 0;
        while seen < 10_000 {
            if let Some(read) = exemplars.read(0) {
                let id = u128::from(read.id);
                assert_eq!(read.trace_id, id << 64 | id, "{read:?}");
                assert_eq!(read.nanos, read.id);
                assert_eq!(read.at, read.id);
            }
            seen += 1;
        }
        for w in writers {
            w.join().unwrap();
        }
    }
}
