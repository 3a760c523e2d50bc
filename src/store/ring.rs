//! A fixed ring of the most recent items, written without a global lock.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::shard::CachePadded;

/// Keeps the last `capacity` items pushed, in push order.
///
/// Each push takes a sequence number from one atomic counter and writes slot
/// `sequence % capacity` under that slot's own lock, so concurrent pushes only contend when
/// they land on the same slot. The memory is allocated once; pushing never allocates. Each
/// slot has cache lines of its own, so that a push writes no line another ring's (or a
/// neighbouring allocation's) writers write.
#[derive(Debug)]
pub(crate) struct RecordRing<T> {
    slots: Box<[CachePadded<Mutex<Option<(u64, T)>>>]>,
    next: AtomicU64,
}

impl<T> RecordRing<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: (0..capacity)
                .map(|_| CachePadded::new(Mutex::new(None)))
                .collect(),
            next: AtomicU64::new(0),
        }
    }

    #[inline]
    fn slot(&self, seq: u64) -> Option<&Mutex<Option<(u64, T)>>> {
        let len = u64::try_from(self.slots.len()).ok().filter(|l| *l > 0)?;
        self.slots
            .get(usize::try_from(seq % len).ok()?)
            .map(|slot| &**slot)
    }

    /// Appends `item`, evicting the oldest; returns its sequence number.
    #[inline]
    pub(crate) fn push(&self, item: T) -> u64 {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.slot(seq) {
            let evicted = {
                let mut slot = slot.lock();
                // A pusher that was delayed past a full turn of the ring must not overwrite a
                // newer item.
                if slot.as_ref().is_some_and(|(s, _)| *s > seq) {
                    return seq;
                }
                slot.replace((seq, item))
            };
            // Dropped after the lock is released.
            drop(evicted);
        }
        seq
    }

    /// Appends an item written in place over the oldest one; returns its sequence number.
    ///
    /// `write` is given the oldest item to overwrite (and returns `None`), or `None` while
    /// the ring is filling up (and returns the new item), and `value` to write. Overwriting
    /// in place spares moving a large item through the stack; what the old item held is
    /// dropped under the slot's lock, which only a reader or a pusher a whole turn later
    /// waits for.
    #[inline]
    pub(crate) fn push_with<V>(
        &self,
        value: V,
        write: impl FnOnce(Option<&mut T>, V) -> Option<T>,
    ) -> u64 {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.slot(seq) {
            let mut slot = slot.lock();
            match slot.as_mut() {
                // Delayed past a full turn of the ring: never overwrite a newer item.
                Some((newer, _)) if *newer > seq => {}
                Some((old_seq, old)) => {
                    *old_seq = seq;
                    let _ = write(Some(old), value);
                }
                None => *slot = write(None, value).map(|item| (seq, item)),
            }
        }
        seq
    }

    /// Maps every item (under its slot's lock), newest first.
    pub(crate) fn collect<R>(&self, mut f: impl FnMut(&T) -> Option<R>) -> Vec<R> {
        let mut items: Vec<(u64, R)> = Vec::with_capacity(self.slots.len());
        for slot in &*self.slots {
            let slot = slot.lock();
            if let Some((seq, item)) = slot.as_ref() {
                if let Some(r) = f(item) {
                    items.push((*seq, r));
                }
            }
        }
        items.sort_by_key(|item| std::cmp::Reverse(item.0));
        items.into_iter().map(|(_, r)| r).collect()
    }

    /// The first item for which `f` returns `Some`.
    pub(crate) fn find<R>(&self, mut f: impl FnMut(&T) -> Option<R>) -> Option<R> {
        self.slots.iter().find_map(|slot| {
            let slot = slot.lock();
            slot.as_ref().and_then(|(_, item)| f(item))
        })
    }

    /// Removes every item.
    pub(crate) fn clear(&self) {
        for slot in &*self.slots {
            let removed = slot.lock().take();
            drop(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_items_newest_first() {
        let ring = RecordRing::new(3);
        for i in 0..5 {
            ring.push(i);
        }
        assert_eq!(ring.collect(|i| Some(*i)), vec![4, 3, 2]);
        assert_eq!(ring.find(|i| (*i == 3).then_some("three")), Some("three"));
        assert_eq!(ring.find(|i| (*i == 1).then_some(())), None);
    }

    #[test]
    fn push_with_creates_then_overwrites_the_oldest_in_place() {
        let ring: RecordRing<Vec<u32>> = RecordRing::new(2);
        let mut created = 0;
        for i in 0..5u32 {
            ring.push_with(i, |old, i| match old {
                Some(old) => {
                    old.clear();
                    old.push(i);
                    None
                }
                None => {
                    created += 1;
                    Some(vec![i])
                }
            });
        }
        assert_eq!(created, 2, "created while filling up, reused afterwards");
        assert_eq!(ring.collect(|v| v.first().copied()), vec![4, 3]);
        ring.push(vec![9]);
        assert_eq!(ring.collect(|v| v.first().copied()), vec![9, 4]);
    }

    #[test]
    fn clear() {
        let ring = RecordRing::new(4);
        ring.push("a");
        ring.push("b");
        assert_eq!(ring.collect(|s| Some(*s)), vec!["b", "a"]);
        ring.clear();
        assert!(ring.collect(|s| Some(*s)).is_empty());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let ring = RecordRing::new(0);
        ring.push(1);
        assert!(ring.collect(|i| Some(*i)).is_empty());
    }

    #[test]
    fn concurrent_pushes_keep_exactly_capacity() {
        let ring = std::sync::Arc::new(RecordRing::new(100));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let ring = std::sync::Arc::clone(&ring);
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        ring.push(t * 1000 + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let items = ring.collect(|i| Some(*i));
        assert_eq!(items.len(), 100);
        let mut unique = items;
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 100);
    }
}
