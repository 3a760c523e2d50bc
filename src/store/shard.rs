//! Write shards: which part of the store a thread writes to, so that requests on different
//! cores write different cache lines.
//!
//! Every counter, histogram and window a request writes exists once per shard; a snapshot
//! adds the shards up (every figure stays exact: counts and sums add, histograms merge bucket
//! for bucket). A thread is given a shard the first time it records a request, round robin
//! over the threads of the process, and keeps it: on a tokio runtime with as many workers as
//! shards, each worker writes its own shard. A request keeps the shard it started on until it
//! ends, even if its task moves to another thread meanwhile.
//!
//! Each shard's state starts on a cache line of its own ([`CachePadded`]), and the counters a
//! shard keeps on the heap are padded on both sides ([`PaddedCounters`]), so that no two
//! shards share a line.
//!
//! What a request writes, all of it in its shard: the reference count of its shard's handle
//! to the store (the layer's service, which axum clones for each request, takes the handle of
//! the cloning thread's shard), the `http` counters ([`HttpShard`]), its id
//! (from the shard's block of ids, [`IdBlocks`]), its slot in the shard's part of the
//! in-flight table, its URI set's part ([`UriSetShard`]: counters, `le` counts, latency
//! histogram and windows) and the reference count of that part, and a slot of the shard's
//! ring of recent requests. Still shared, off the common path: the slow list (slow requests
//! only), a URI set's first use and the `<overflow>` count, the table of URI sets when a
//! request's set is not known to the layer yet (a hook or a `UriSet` label decides it), and
//! a request that moves to another thread while it runs (it keeps writing the shard it
//! started on).
//!
//! # Memory
//!
//! The default number of shards is the available parallelism, at most
//! [`DEFAULT_MAX_SHARDS`] (16); `StatsBuilder::shards` sets it (1 to [`MAX_SHARDS`]). A URI
//! set's part is created the first time a shard records in the set: about 22 KB idle, 46 KB
//! typical and at most about 104 KB (the windows' figures, see [`crate::store::windows`], plus
//! 10.2 KB of duration buckets and exemplars with the default 14 bounds, plus 0.5 KB of
//! counters). Per URI set, worst case: `104 KB x shards that recorded in it`; for 256 sets,
//! about 27 MB per shard (53 MB with 2 shards, 426 MB with 16). Each shard also keeps its own
//! ring of `recent_capacity` recent requests (256 bytes a slot, plus the paths kept), so that
//! the newest `recent_capacity` over all shards are always there to be shown.
//!
//! [`HttpShard`]: crate::store::http::HttpShard
//! [`UriSetShard`]: crate::store::uri_sets::UriSetShard

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub(crate) use crossbeam_utils::CachePadded;

/// The default number of shards is the available parallelism, at most this.
pub(crate) const DEFAULT_MAX_SHARDS: usize = 16;

/// The most shards a store can be built with.
pub(crate) const MAX_SHARDS: usize = 64;

/// The default number of shards: one per available CPU, at most [`DEFAULT_MAX_SHARDS`].
pub(crate) fn default_shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, DEFAULT_MAX_SHARDS)
}

/// The next thread's number.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's number, given the first time it records a request (`usize::MAX` before).
    static THREAD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The shard the current thread writes to, out of `shards` (at least one).
#[inline]
pub(crate) fn current(shards: usize) -> usize {
    let thread = THREAD.with(|t| {
        let n = t.get();
        if n != usize::MAX {
            return n;
        }
        let n = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % (usize::MAX / 2);
        t.set(n);
        n
    });
    thread.checked_rem(shards).unwrap_or(0)
}

/// Request ids are handed out to each shard in blocks of this many.
pub(crate) const ID_BLOCK: u64 = 1 << 10;

/// Bits of a shard's id cursor that count the ids taken from its block; the bits above hold
/// the block's number.
const TAKEN_BITS: u32 = 32;

/// Request ids: blocks of [`ID_BLOCK`] consecutive ids taken from one counter, each block
/// handed out by one shard. Ids are unique, and increase in the order a shard hands them out;
/// across shards they say nothing about order.
#[derive(Debug)]
pub(crate) struct IdBlocks {
    /// The number of the next block.
    next_block: AtomicU64,
}

impl IdBlocks {
    /// Blocks from id 1 on (the first block skips id 0).
    pub(crate) fn new() -> Self {
        Self {
            next_block: AtomicU64::new(0),
        }
    }

    /// A shard's cursor: its block's number above [`TAKEN_BITS`], and how many ids were taken
    /// from it below. A new cursor has a used-up block.
    pub(crate) fn cursor() -> AtomicU64 {
        AtomicU64::new(ID_BLOCK)
    }

    /// The next id of the shard whose cursor is `cursor`. One add takes an id; a thread that
    /// finds the block used up puts a new one in.
    #[inline]
    pub(crate) fn next(&self, cursor: &AtomicU64) -> u64 {
        let taken = cursor.fetch_add(1, Ordering::Relaxed);
        let (block, n) = (taken >> TAKEN_BITS, taken & ((1 << TAKEN_BITS) - 1));
        if n < ID_BLOCK {
            return block.wrapping_mul(ID_BLOCK).wrapping_add(n);
        }
        self.next_slow(cursor)
    }

    /// Takes a new block for the shard and the first id of it (the first block's first id is
    /// 1: id 0 is never handed out).
    #[cold]
    fn next_slow(&self, cursor: &AtomicU64) -> u64 {
        let mut current = cursor.load(Ordering::Relaxed);
        loop {
            let n = current & ((1 << TAKEN_BITS) - 1);
            if n < ID_BLOCK {
                // Another thread of the shard put a new block in: take from it.
                match cursor.compare_exchange_weak(
                    current,
                    current.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        return (current >> TAKEN_BITS)
                            .wrapping_mul(ID_BLOCK)
                            .wrapping_add(n)
                    }
                    Err(actual) => {
                        current = actual;
                        continue;
                    }
                }
            }
            let block = self.next_block.fetch_add(1, Ordering::Relaxed);
            // Id 0 is never handed out: the first block starts at 1.
            let first = u64::from(block == 0);
            let installed = (block << TAKEN_BITS) | (first + 1);
            match cursor.compare_exchange(current, installed, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return block.wrapping_mul(ID_BLOCK).wrapping_add(first),
                // Meanwhile another thread of the shard took an id or put a block in: the
                // block just taken is left unused, and ids stay unique.
                Err(actual) => current = actual,
            }
        }
    }
}

/// Counters on the heap, with [`PAD`] unused counters on both sides so that no other
/// allocation shares a cache line with them. Reads and writes go through the slice.
#[derive(Debug)]
pub(crate) struct PaddedCounters {
    cells: Box<[AtomicU64]>,
}

/// Unused counters before and after the used ones: 128 bytes, the span [`CachePadded`] keeps
/// apart (two lines, since a neighbouring line is prefetched with a line).
const PAD: usize = 16;

impl PaddedCounters {
    /// `len` counters at zero.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            cells: (0..len.saturating_add(2 * PAD))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl PaddedCounters {
    /// Counter `index`, if there is one.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&AtomicU64> {
        if index < self.cells.len().saturating_sub(2 * PAD) {
            self.cells.get(index.wrapping_add(PAD))
        } else {
            None
        }
    }
}

impl std::ops::Deref for PaddedCounters {
    type Target = [AtomicU64];

    #[inline]
    fn deref(&self) -> &[AtomicU64] {
        let end = self.cells.len().saturating_sub(PAD);
        self.cells.get(PAD..end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_increase_per_shard() {
        let ids = IdBlocks::new();
        let cursors: Vec<AtomicU64> = (0..4).map(|_| IdBlocks::cursor()).collect();
        let per_thread = 3 * ID_BLOCK + 17;
        let handed: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let (ids, cursor) = (&ids, &cursors[t % 4]);
                    scope.spawn(move || (0..per_thread).map(|_| ids.next(cursor)).collect())
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for list in &handed {
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "increasing per thread"
            );
        }
        let mut all: Vec<u64> = handed.concat();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no id handed out twice");
        assert!(!all.contains(&0), "id 0 is never used");
    }

    #[test]
    fn one_shard_hands_out_consecutive_ids() {
        let ids = IdBlocks::new();
        let cursor = IdBlocks::cursor();
        let first: Vec<u64> = (0..5).map(|_| ids.next(&cursor)).collect();
        assert_eq!(first, vec![1, 2, 3, 4, 5]);
        let other = IdBlocks::cursor();
        assert_eq!(
            ids.next(&other),
            ID_BLOCK,
            "another shard starts a block of its own"
        );
        for _ in 5..ID_BLOCK - 1 {
            ids.next(&cursor);
        }
        assert_eq!(
            ids.next(&cursor),
            2 * ID_BLOCK,
            "a used-up block is followed by a new one"
        );
    }

    #[test]
    fn padded_counters_show_only_their_own() {
        let counters = PaddedCounters::new(3);
        assert_eq!(counters.len(), 3);
        counters[2].fetch_add(5, Ordering::Relaxed);
        assert_eq!(counters[2].load(Ordering::Relaxed), 5);
        assert_eq!(counters.get(2).map(|c| c.load(Ordering::Relaxed)), Some(5));
        assert!(counters.get(3).is_none(), "the padding is not a counter");
        assert!(PaddedCounters::new(0).is_empty());
    }

    #[test]
    fn a_thread_keeps_its_shard_and_threads_are_spread() {
        let shards: Vec<usize> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    let shard = current(4);
                    assert_eq!(current(4), shard, "a thread keeps its shard");
                    shard
                })
                .join()
                .unwrap()
            })
            .collect();
        assert!(shards.iter().all(|s| *s < 4));
        let mut distinct = shards;
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() > 1,
            "threads started one after the other are spread"
        );
        assert_eq!(current(1), 0);
    }
}
