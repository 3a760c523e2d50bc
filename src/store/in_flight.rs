//! The table of requests in flight: one part per write shard, slots reused through each
//! part's free list.

use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;
use parking_lot::Mutex;

#[cfg(test)]
use super::request::{CappedPath, StoredPath};
use super::request::{InFlightRequest, NewRequest};
use super::shard::CachePadded;
use super::windows::QuarterClock;

/// Where a live request is kept in the in-flight table: its shard and its slot there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotKey {
    shard: u32,
    index: u32,
}

impl SlotKey {
    /// The write shard of the request.
    #[inline]
    pub(crate) fn shard(self) -> usize {
        usize::try_from(self.shard).unwrap_or(usize::MAX)
    }

    /// A key that finds nothing.
    pub(crate) const NONE: Self = Self {
        shard: u32::MAX,
        index: u32::MAX,
    };

    /// The key in one word: the shard in the high half, the slot in the low half.
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn to_bits(self) -> u64 {
        u64::from(self.shard) << 32 | u64::from(self.index)
    }

    /// The key [`to_bits`](Self::to_bits) gave `bits` for.
    #[cfg(feature = "tracing")]
    #[inline]
    pub(crate) fn from_bits(bits: u64) -> Self {
        Self {
            shard: (bits >> 32) as u32,
            index: bits as u32,
        }
    }
}

/// One shard: slots reused through a free list, so that entering and leaving the table is a
/// push and a pop under the shard's lock, without hashing, and allocates nothing once the
/// shard has grown to the number of requests in flight.
///
/// A free slot keeps a finished record under the [`FREE`] id (without its optional parts or
/// a path on the heap): the record the request left there, or the one it swapped out of the
/// recent-requests ring. The next request writes its fields over it in place, so a record is
/// never moved in or out of the table whole. Only a withdrawn request empties its slot.
///
/// Each slot has cache lines of its own, so that the slots share no line with another
/// allocation (another shard's, say). The free list starts with room for [`FREE_ROOM`]
/// entries, so that its hot end (the first entries, with few requests in flight) is far from
/// the ends of neighbouring allocations.
#[derive(Debug)]
struct Shard {
    slots: Vec<CachePadded<Option<(u64, InFlightRequest)>>>,
    free: Vec<u32>,
    /// The window period of the requests this shard ends.
    clock: QuarterClock,
}

/// Entries the free list has room for from the start (256 bytes).
const FREE_ROOM: usize = 64;

impl Shard {
    fn new(clock: QuarterClock) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::with_capacity(FREE_ROOM),
            clock,
        }
    }
}

/// The id of a free slot's record (ids are handed out from 1 up: never reached).
const FREE: u64 = u64::MAX;

/// Slots per shard whose response status can be published without the shard's lock.
const HEAD_SLOTS: usize = 64;

/// Bits of a request id kept in a published status (ids are handed out from 1 up, in blocks:
/// never reached).
const HEAD_ID_BITS: u32 = 48;

/// The requests in flight, one part per write shard: a request is entered in its shard's
/// part, so that requests on different cores take different locks and write different lines.
#[derive(Debug)]
pub(crate) struct InFlightTable {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// The response status of the request in each of the first [`HEAD_SLOTS`] slots of every
    /// shard, published when its head is produced without taking the shard's lock, as
    /// `id << 16 | status`. Readers fold it into the live record; the id tells a status of
    /// the slot's current request from one left by an earlier request.
    heads: Box<[CachePadded<[AtomicU64; HEAD_SLOTS]>]>,
}

impl InFlightTable {
    /// A table of `shards` parts (at least one); `clock` places the requests' ends in the
    /// windows' periods.
    pub(crate) fn new(shards: usize, clock: &QuarterClock) -> Self {
        let shards = shards.max(1);
        Self {
            shards: (0..shards)
                .map(|_| CachePadded::new(Mutex::new(Shard::new(clock.clone()))))
                .collect(),
            heads: (0..shards)
                .map(|_| CachePadded::new([const { AtomicU64::new(0) }; HEAD_SLOTS]))
                .collect(),
        }
    }

    #[inline]
    fn head(&self, shard: u32, index: u32) -> Option<&AtomicU64> {
        let index = usize::try_from(index).ok()?;
        let shard = usize::try_from(shard).ok()?;
        self.heads.get(shard)?.get(index)
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
    fn fold_head(&self, shard: u32, index: usize, id: u64, live: &mut InFlightRequest) {
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
    fn lock(&self, shard: u32) -> Option<parking_lot::MutexGuard<'_, Shard>> {
        let shard = self.shards.get(usize::try_from(shard).ok()?)?;
        Some(shard.lock())
    }

    /// Enters request `id` in shard `shard`'s part; the key finds it again without a search.
    /// `new` is read where the caller built it (its optional parts are taken).
    #[inline]
    pub(crate) fn insert(&self, shard: usize, id: u64, new: &mut NewRequest<'_>) -> SlotKey {
        let shard = u32::try_from(shard).unwrap_or(u32::MAX);
        let Some(mut guard) = self.lock(shard) else {
            return SlotKey {
                shard,
                index: u32::MAX,
            };
        };
        let index = match guard.free.pop() {
            Some(index) => {
                match guard.slots.get_mut(index as usize).map(|slot| &mut **slot) {
                    Some(Some((slot_id, live))) => {
                        *slot_id = id;
                        live.restart(new);
                    }
                    Some(slot) => *slot = Some((id, InFlightRequest::new(new))),
                    None => {}
                }
                index
            }
            None => {
                let index = u32::try_from(guard.slots.len()).unwrap_or(u32::MAX);
                guard
                    .slots
                    .push(CachePadded::new(Some((id, InFlightRequest::new(new)))));
                index
            }
        };
        SlotKey { shard, index }
    }

    /// Takes request `id` out of the table, emptying its slot (a withdrawn request).
    #[cfg(any(test, feature = "axum"))]
    pub(crate) fn remove(&self, key: SlotKey, id: u64) -> Option<InFlightRequest> {
        let mut guard = self.lock(key.shard)?;
        let slot = &mut **guard.slots.get_mut(key.index as usize)?;
        if !matches!(slot, Some((slot_id, _)) if *slot_id == id) {
            return None;
        }
        let (_, live) = slot.take()?;
        guard.free.push(key.index);
        Some(live)
    }

    /// Ends request `id`: runs `f` on its record and the shard's window clock under the
    /// shard's lock, then frees the slot. What `f` leaves in the record stays in the free
    /// slot, without its optional parts or a path on the heap.
    #[inline]
    pub(crate) fn remove_with<R>(
        &self,
        key: SlotKey,
        id: u64,
        f: impl FnOnce(&mut InFlightRequest, &mut QuarterClock) -> R,
    ) -> Option<R> {
        self.with_entry(key, id, |(slot_id, live), free, clock| {
            let r = f(live, clock);
            *slot_id = FREE;
            live.path.release();
            live.extras = None;
            free.push(key.index);
            r
        })
    }

    /// Drops the finished records that free slots keep, so that they hold no URI set (after a
    /// reset, when every set is empty again and an unused one must be free to go).
    pub(crate) fn clear_free(&self) {
        for shard in &*self.shards {
            let mut shard = shard.lock();
            let Shard { slots, free, .. } = &mut *shard;
            for index in free.iter() {
                if let Some(slot) = slots.get_mut(*index as usize) {
                    **slot = None;
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
        f: impl FnOnce(&mut InFlightRequest) -> R,
    ) -> Option<R> {
        self.with_entry(key, id, |(_, live), _, _| f(live))
    }

    /// Runs `f` under the shard's lock on request `id`'s slot (its id and record) and on the
    /// shard's free list, if the request is still in flight.
    #[inline]
    fn with_entry<R>(
        &self,
        key: SlotKey,
        id: u64,
        f: impl FnOnce(&mut (u64, InFlightRequest), &mut Vec<u32>, &mut QuarterClock) -> R,
    ) -> Option<R> {
        let mut guard = self.lock(key.shard)?;
        let Shard { slots, free, clock } = &mut *guard;
        match &mut **slots.get_mut(key.index as usize)? {
            Some(entry) if entry.0 == id => Some(f(entry, free, clock)),
            _ => None,
        }
    }

    /// Runs `f` on the live record of request `id`, searching every shard for it (for
    /// reports).
    pub(crate) fn find<R>(&self, id: u64, f: impl FnOnce(&InFlightRequest) -> R) -> Option<R> {
        if id == FREE {
            return None;
        }
        for shard in (0u32..).take(self.shards.len()) {
            let Some(mut guard) = self.lock(shard) else {
                continue;
            };
            let found = guard
                .slots
                .iter_mut()
                .enumerate()
                .find_map(|(index, slot)| match &mut **slot {
                    Some((slot_id, live)) if *slot_id == id => Some((index, live)),
                    _ => None,
                });
            if let Some((index, live)) = found {
                self.fold_head(shard, index, id, live);
                return Some(f(live));
            }
        }
        None
    }

    /// Copies the live records, one shard at a time.
    pub(crate) fn collect(&self, mut f: impl FnMut(u64, &InFlightRequest)) {
        for (shard_index, shard) in (0u32..).zip(&*self.shards) {
            let mut shard = shard.lock();
            for (index, slot) in shard.slots.iter_mut().enumerate() {
                if let Some((id, live)) = slot.as_mut().filter(|(id, _)| *id != FREE) {
                    self.fold_head(shard_index, index, *id, live);
                    f(*id, live);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::Method;
    use tokio::time::Instant;

    use super::*;
    use crate::store::uri_sets::UriSets;

    fn live(sets: &UriSets) -> NewRequest<'static> {
        NewRequest {
            method: &Method::GET,
            path: CappedPath::new("/", 256),
            uri_set: Arc::clone(sets.get(0, "/").shard(0)),
            start: Instant::now(),
            detailed: true,
            trace_id: crate::store::exemplars::TraceId::NONE,
            extras: None,
        }
    }

    fn status_of(table: &InFlightTable, id: u64) -> Option<StatusCode> {
        table.find(id, |live| live.status).flatten()
    }

    #[test]
    fn a_published_status_shows_for_its_own_request_only() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]), 2);
        let table = InFlightTable::new(2, &QuarterClock::new(Instant::now(), 0));
        let key = table.insert(0, 16, &mut live(&sets));
        assert!(table.set_head(key, 16, StatusCode::CREATED));
        assert_eq!(status_of(&table, 16), Some(StatusCode::CREATED));

        // The slot is reused by another request: the status left there is not its own.
        assert!(table.remove(key, 16).is_some());
        let again = table.insert(0, 32, &mut live(&sets));
        assert_eq!(again, key, "the freed slot is reused");
        assert_eq!(status_of(&table, 32), None);
        let mut seen = Vec::new();
        table.collect(|id, live| seen.push((id, live.status)));
        assert_eq!(seen, vec![(32, None)]);
    }

    #[test]
    fn a_finished_record_stays_in_its_free_slot_unseen_until_reused_in_place() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]), 2);
        let table = InFlightTable::new(2, &QuarterClock::new(Instant::now(), 0));
        let mut first = live(&sets);
        let long = format!("/{}", "x".repeat(100));
        first.path = CappedPath::new(&long, 256);
        first.extras = Some(Box::default());
        let key = table.insert(0, 16, &mut first);
        let read = table.remove_with(key, 16, |live, _| {
            live.bytes_read = 7;
            live.bytes_read
        });
        assert_eq!(read, Some(7));
        assert_eq!(table.remove_with(key, 16, |_, _| ()), None, "ended once");
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
            let Some(Some((id, kept))) = shard.slots.get(key.index as usize).map(|s| &**s) else {
                panic!("the free slot keeps its record");
            };
            assert_eq!(*id, FREE);
            assert!(
                matches!(kept.path, StoredPath::Inline { len: 0, .. }),
                "a path on the heap is let go: {:?}",
                kept.path
            );
            assert!(kept.extras.is_none());
        }

        let again = table.insert(0, 32, &mut live(&sets));
        assert_eq!(again, key, "the freed slot is reused");
        assert_eq!(
            table.find(32, |live| (live.bytes_read, live.status, live.detailed)),
            Some((0, None, true)),
            "every field is written anew"
        );
    }

    #[test]
    fn clearing_free_slots_lets_go_of_their_records_only() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]), 2);
        let table = InFlightTable::new(2, &QuarterClock::new(Instant::now(), 0));
        let set = Arc::clone(sets.get(0, "/").shard(0));
        let done = table.insert(0, 16, &mut live(&sets));
        let running = table.insert(0, 32, &mut live(&sets));
        table.remove_with(done, 16, |_, _| ()).expect("in flight");
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
            table.insert(0, 48, &mut live(&sets)),
            done,
            "the emptied slot is reused"
        );
        assert_ne!(running, done);
    }

    #[test]
    fn a_removed_request_empties_its_slot() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]), 2);
        let table = InFlightTable::new(2, &QuarterClock::new(Instant::now(), 0));
        let key = table.insert(0, 16, &mut live(&sets));
        let removed = table.remove(key, 16).expect("in flight");
        assert_eq!(
            Arc::strong_count(&removed.uri_set),
            2,
            "the table keeps no reference"
        );
        let shard = table.lock(key.shard).expect("shard");
        assert!(matches!(
            shard.slots.get(key.index as usize).map(|s| &**s),
            Some(None)
        ));
    }

    #[test]
    fn slots_beyond_the_published_ones_take_the_lock() {
        let sets = UriSets::new(16, Instant::now(), 0, Arc::from([]), 2);
        let table = InFlightTable::new(2, &QuarterClock::new(Instant::now(), 0));
        let keys: Vec<(u64, SlotKey)> = (0..=HEAD_SLOTS as u64)
            .map(|i| {
                let id = i + 1;
                (id, table.insert(0, id, &mut live(&sets)))
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
