//! Time windows ("last 1 minute", "last 15 minutes", "total") over latency
//! histograms and error counters.
//!
//! # Design
//!
//! A [`WindowedHistogram`] holds
//!
//! * `total`: one histogram since creation or the last reset, with the layout of
//!   [`AtomicHistogram`](crate::histogram::AtomicHistogram) and 64-bit counters allocated one
//!   octave at a time;
//! * a ring of [`QUARTER_SLOTS`] = 5 slots of [`QUARTER`] = 15 s for "1m";
//! * a ring of [`MINUTE_SLOTS`] = 16 slots of [`MINUTE`] = 60 s for "15m".
//!
//! Time is `tokio::time::Instant` (so tests can pause and advance the clock),
//! mapped to Unix time: period `p` of a ring of period `P` is
//! `floor(unix_nanos(now) / P)`, so that the periods of two instances line up
//! and their windows can be merged.
//!
//! A record is one histogram record, into its quarter's slot (a bucket `fetch_add`, a sum
//! `fetch_add` and, rarely, `fetch_min`/`fetch_max`; one more `fetch_add` for an error),
//! plus two loads and compares for the total's minimum and maximum, which are kept per
//! record (rarely a `fetch_min`/`fetch_max`). A quarter reaches the minute ring and the
//! total when its slot is reused for a newer quarter: the record that rotates the slot
//! *folds* it (see below). Records that cannot go into their quarter's slot (a straggler,
//! or a rotation wait out of budget) are recorded directly into the total and their
//! minute's slot.
//!
//! # Window definitions (exact)
//!
//! With `q` the current quarter and `m` the current minute:
//!
//! * **1m** = quarters `q-4 ..= q`: the last 4 complete 15 s periods plus the
//!   current partial one, i.e. between 60 s and 75 s of history. A sample
//!   recorded at `t0` is visible in "1m" at least until `t0 + 60 s` (inclusive)
//!   and is gone from the first 15 s boundary after `t0 + 60 s`, at the latest
//!   at `t0 + 75 s`.
//! * **15m** = minutes `m-15 ..= m`: between 15 and 16 minutes of history. A
//!   sample is visible at least until `t0 + 15 min` and gone by `t0 + 16 min`.
//! * **total** = everything since `base` or the last [`WindowedHistogram::reset`].
//!
//! Each window reports the duration it covers, `now - max(window start, base,
//! last reset)`, so `count / covered_secs` is an exact rate over that span.
//!
//! Reading ([`WindowedHistogram::data`]) checks each slot's period tag against
//! the window of the reader's `now` and hands out only the slots of the window,
//! each with its period, so windows age out with time even when nothing is
//! recorded; the read model computes the windows' figures from those periods.
//! The quarters still held in their slots (not yet folded) are added to the total (every
//! held quarter) and to their minute (quarter `q` belongs to minute `q / 4`) when it is in
//! the "15m" window: a minute is the data folded or recorded into its slot plus its held
//! quarters, so the windows and the total read as if each record had gone into all three.
//!
//! # Rotation and fold (lock-free)
//!
//! Each slot carries a tag `period + 1` (`0` = empty or invalidated by a reset). A record
//! for period `p` that finds an older tag claims the slot with one `compare_exchange` to
//! `(p + 1) | ROTATING`, empties it and publishes `p + 1`; other records for
//! `p` that see the `ROTATING` bit wait (64 `spin_loop`s, then
//! `yield_now`, at most [`MAX_ROTATION_SPINS`] waits) and then record into the new period,
//! so a record racing a rotation lands in the new period.
//!
//! A minute slot is emptied by zeroing it. A quarter slot that held quarter `o` is emptied
//! by *folding* it (`#[cold]`, on the record that turns the period): every non-zero counter
//! of its allocated chunks, its sum and its error counter are taken with `swap(0)` and
//! added to the total and to the slot of minute `o / 4` (rotated to that minute if it holds
//! an older one; skipped when that minute is already out of the "15m" window of the new
//! quarter, or when the minute slot holds a newer minute or its rotation wait runs out of
//! budget); the quarter's minimum and
//! maximum are merged into the minute slot's. An increment racing the fold is either taken
//! by the swap or stays in the slot, where it counts for the new period (and is folded
//! with it later): never lost, never counted twice, so `total` stays exact. A slot whose tag
//! is `0` is zeroed, not folded: nothing from before a reset reaches the total. A fold loads
//! the counters of the old slot's allocated chunks (32 per chunk), and for each non-empty
//! bucket writes a `swap` and two `fetch_add`s (total and minute; one when the minute is
//! skipped); then four `swap`s (sum, minimum, maximum, errors), two sum and two error
//! `fetch_add`s, the minute's extremes (two loads, rarely a `fetch_min`/`fetch_max`), the
//! minute slot's tag (a load; a rotation when it holds an older minute) and two
//! read-modify-writes of the fold sequence. Measured in a loop (release build, the rotating
//! record included): about 0.15 µs with one octave used, 0.3 µs with 8, 0.75 µs with all 28.
//! It allocates only the lazily allocated chunks of the total and the minute slot that the
//! quarter's buckets need.
//!
//! Readers must not see a quarter both in its slot and in the total, or in neither. Each
//! fold is announced in a fold sequence (one `AtomicU64`: folds started in the high 32
//! bits, folds running in the low 32 bits; a `fetch_add` and a release fence before the
//! claim, a release `fetch_sub` after publishing the new tag). A reader reads the
//! sequence (acquire), the slots and the total, then the sequence again after an acquire
//! fence, and keeps the read only if no fold was running and none started; otherwise it
//! reads again, up to [`MAX_READ_ATTEMPTS`] times (spinning, then yielding), then keeps
//! the last read. Records never wait for readers. A reset waits for a fold in progress on
//! each quarter slot it invalidates (at most [`MAX_RESET_WAITS`] times), so that a quarter
//! taken before the reset is in the total when the reset clears it.
//!
//! Documented imprecisions. The total's counts, sum and errors are exact (every record
//! counted once), except for records racing a reset; a snapshot can be off only in the
//! last case below.
//!
//! * if a rotating thread stays descheduled through the whole wait budget,
//!   the waiting records are dropped from the "1m" window (recorded directly into the
//!   total and their minute);
//! * a record whose `now` is older than the period a slot already holds
//!   (a straggler, `now` taken more than a ring turn late) is dropped from the "1m"
//!   window the same way, and from "15m" if its minute's slot also holds a newer minute;
//! * a record delayed between reading the tag and adding its count while the
//!   slot rotates may be counted in the new period (its bucket, sum, error and extremes
//!   each in the old or the new one), and a fold racing a rotation of its minute slot may
//!   add the quarter to the newer minute;
//! * a record racing a reset may be kept in the total or dropped from the windows; if a
//!   folding thread stays descheduled through the reset's whole wait budget, the quarter
//!   it folds may be added to the total after the reset;
//! * if folds keep running through a reader's whole retry budget, that snapshot may count
//!   a quarter twice or miss it (the stored counts stay exact).
//!
//! # Memory
//!
//! Slots do not use dense histograms: each slot stores its counters in 28
//! chunks of 32 `AtomicU32` (one chunk per octave), allocated on the first
//! record that touches that octave in that slot and reused (zeroed, never
//! freed) on rotation (a minute slot's chunks are allocated by the folds and the direct
//! records that reach it). After warm-up no record allocates; allocations over the
//! lifetime are bounded by 21 slots x 28 chunks. Slot counters are 32-bit:
//! one bucket of one slot wraps after `2^32` records in one period (over 71 M
//! records/s into a single bucket of a single route), which is documented as
//! out of range.
//!
//! | state of a route                          | bytes  | x 256 routes |
//! |-------------------------------------------|--------|--------------|
//! | fixed (idle: no chunk allocated)          | 10,800 | 2.8 MB       |
//! | typical (8 octaves used in every slot)    | 34,352 | 8.8 MB       |
//! | worst (all 28 chunks in all 21 slots)     | 93,232 | 23.9 MB      |
//!
//! (Slot chunk = 128 bytes, total chunk = 256 bytes, + allocator overhead; figures
//! from [`WindowedHistogram::memory_bytes`]. The total's chunks are allocated like the
//! slots', one octave at a time, so that a snapshot reads only the octaves used.) For
//! comparison, 21 dense `AtomicU64` slots would be ~153 KB per route. A URI set keeps
//! one of these per write shard that recorded in it (see [`crate::store::shard`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::duration_nanos;
use crate::histogram::{bucket_index, Histogram, BUCKETS, SUB_BUCKETS};
use crate::store::shard::CachePadded;

/// Length of a quarter slot (15 s); "1m" is made of these.
pub(crate) const QUARTER: Duration = Duration::from_secs(15);

/// Number of quarter slots (5: 4 complete quarters + the current one).
pub(crate) const QUARTER_SLOTS: usize = 5;

/// Length of a minute slot (60 s); "15m" is made of these.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// Number of minute slots (16: 15 complete minutes + the current one).
pub(crate) const MINUTE_SLOTS: usize = 16;

/// [`QUARTER`] in nanoseconds.
const QUARTER_NANOS: u64 = QUARTER.as_secs() * 1_000_000_000;

/// [`MINUTE`] in nanoseconds.
const MINUTE_NANOS: u64 = MINUTE.as_secs() * 1_000_000_000;

/// Quarters in a minute.
const QUARTERS_PER_MINUTE: u64 = MINUTE_NANOS / QUARTER_NANOS;

const _: () = assert!(QUARTERS_PER_MINUTE * QUARTER_NANOS == MINUTE_NANOS);

/// How many times a record waits for a concurrent slot rotation before
/// dropping itself from that window (the first [`SPINS_BEFORE_YIELD`] waits
/// are `spin_loop` hints, the rest `std::thread::yield_now`, so a descheduled
/// rotating thread can finish).
pub(crate) const MAX_ROTATION_SPINS: u32 = 1_000;

/// Waits that only spin before a record starts yielding its thread.
pub(crate) const SPINS_BEFORE_YIELD: u32 = 64;

/// Tag bit set while a slot is being cleared (or its counts folded) for a new period.
const ROTATING: u64 = 1 << 63;

/// The tag of a slot holding `period`.
#[inline]
fn tag_of(period: u64) -> u64 {
    period.saturating_add(1) & !ROTATING
}

/// What [`Slot::enter`] found.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// The slot holds the wanted period.
    Ready,
    /// The slot holds this older tag (`0`: empty or invalidated): rotate it.
    Stale(u64),
    /// A straggler, or the wait for a rotation ran out of budget.
    Dropped,
}

/// How many times [`WindowedHistogram::reset`] waits for a quarter slot's rotation in
/// progress to end (spins, then `yield_now`; a fold takes about a microsecond).
const MAX_RESET_WAITS: u32 = 100_000;

/// Added to the fold sequence when a fold starts: one more fold started (high 32 bits),
/// one more running (low 32 bits). A fold's end subtracts 1.
const FOLD_STARTED: u64 = (1 << 32) + 1;

/// The running folds in the fold sequence.
const FOLDS_RUNNING: u64 = u32::MAX as u64;

/// How many times [`WindowedHistogram::data`] reads again when a fold ran during its read
/// (it waits between reads, then yields; a fold takes about a microsecond). After that it
/// keeps the last read.
const MAX_READ_ATTEMPTS: u32 = 1_000;

/// Counters per lazily allocated chunk (one octave).
const CHUNK: usize = SUB_BUCKETS;

/// Chunks per slot histogram (28, the last one only holds the overflow bucket).
const CHUNKS: usize = BUCKETS.div_ceil(CHUNK);

/// A counter of a [`ChunkedHistogram`]: 32 bits in window slots (rotated every period), 64
/// in the total (never rotated).
trait ChunkCounter: Sized + std::fmt::Debug {
    /// A chunk of zeroed counters, on cache lines of its own: chunks of different write
    /// shards are allocated side by side.
    fn zeroed_chunk() -> Box<CachePadded<[Self; CHUNK]>>;
    /// Adds one.
    fn increment(&self);
    /// The count.
    fn get(&self) -> u64;
    /// Sets the count to zero.
    fn clear(&self);
    /// Takes the count, leaving zero: `0` without a write when the counter is zero.
    fn take(&self) -> u64;
    /// Adds `n` (a count taken from a 32-bit slot counter).
    fn add(&self, n: u64);
}

impl ChunkCounter for AtomicU32 {
    fn zeroed_chunk() -> Box<CachePadded<[Self; CHUNK]>> {
        Box::new(CachePadded::new([const { Self::new(0) }; CHUNK]))
    }
    #[inline]
    fn increment(&self) {
        self.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        u64::from(self.load(Ordering::Relaxed))
    }
    fn clear(&self) {
        self.store(0, Ordering::Relaxed);
    }
    fn take(&self) -> u64 {
        if self.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        u64::from(self.swap(0, Ordering::Relaxed))
    }
    fn add(&self, n: u64) {
        self.fetch_add(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
    }
}

impl ChunkCounter for AtomicU64 {
    fn zeroed_chunk() -> Box<CachePadded<[Self; CHUNK]>> {
        Box::new(CachePadded::new([const { Self::new(0) }; CHUNK]))
    }
    #[inline]
    fn increment(&self) {
        self.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
    fn clear(&self) {
        self.store(0, Ordering::Relaxed);
    }
    fn take(&self) -> u64 {
        if self.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.swap(0, Ordering::Relaxed)
    }
    fn add(&self, n: u64) {
        self.fetch_add(n, Ordering::Relaxed);
    }
}

/// Heap bytes of one chunk of `C` counters.
#[cfg(test)]
const fn chunk_bytes<C>() -> usize {
    std::mem::size_of::<CachePadded<[C; CHUNK]>>()
}

/// Sparse-by-octave atomic histogram: the layout of
/// [`AtomicHistogram`](crate::histogram::AtomicHistogram), counters allocated one octave at a
/// time, so that an idle histogram is small and a snapshot reads only the octaves that were
/// used. Window slots use 32-bit counters ([`SlotHistogram`]), the total 64-bit ones
/// ([`TotalHistogram`]).
#[derive(Debug)]
struct ChunkedHistogram<C: ChunkCounter> {
    /// Lazily allocated counter chunks, indexed by `bucket_index / CHUNK`.
    chunks: [OnceLock<Box<CachePadded<[C; CHUNK]>>>; CHUNKS],
    /// Wrapping sum of recorded values (ns).
    sum: AtomicU64,
    /// Smallest recorded value, `u64::MAX` when empty.
    min: AtomicU64,
    /// Largest recorded value, `0` when empty.
    max: AtomicU64,
}

/// A window slot's histogram.
type SlotHistogram = ChunkedHistogram<AtomicU32>;

/// The "total" histogram.
type TotalHistogram = ChunkedHistogram<AtomicU64>;

impl<C: ChunkCounter> ChunkedHistogram<C> {
    /// An empty histogram with no chunk allocated.
    fn new() -> Self {
        Self {
            chunks: [const { OnceLock::new() }; CHUNKS],
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value, whose bucket is `index`; allocates its octave's chunk on first
    /// use only.
    #[inline]
    fn record(&self, index: usize, nanos: u64) {
        self.record_count(index, nanos);
        self.record_extremes(nanos);
    }

    /// Counts one value, whose bucket is `index`, and adds it to the sum (not to the
    /// minimum and maximum).
    #[inline]
    fn record_count(&self, index: usize, nanos: u64) {
        if let Some(cell) = self.chunks.get(index / CHUNK) {
            let chunk = cell.get_or_init(C::zeroed_chunk);
            if let Some(counter) = chunk.get(index % CHUNK) {
                counter.increment();
            }
        }
        self.sum.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Updates the minimum and maximum with one value: two loads, and a read-modify-write
    /// only for a new extreme.
    #[inline]
    fn record_extremes(&self, nanos: u64) {
        self.merge_extremes(nanos, nanos);
    }

    /// Lowers the minimum to `min` and raises the maximum to `max` if they extend them.
    #[inline]
    fn merge_extremes(&self, min: u64, max: u64) {
        if min < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(min, Ordering::Relaxed);
        }
        if max > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(max, Ordering::Relaxed);
        }
    }

    /// Adds `n` to bucket `index` (allocating its octave's chunk on first use).
    fn add(&self, index: usize, n: u64) {
        if let Some(cell) = self.chunks.get(index / CHUNK) {
            if let Some(counter) = cell.get_or_init(C::zeroed_chunk).get(index % CHUNK) {
                counter.add(n);
            }
        }
    }

    /// Moves every count, the sum and the extremes out of this histogram (leaving it
    /// empty) into `total` (counts and sum: its extremes are kept per record) and, if
    /// given, `minute` (counts, sum and extremes). Each counter is taken with one
    /// `swap(0)` (only the non-zero ones of the allocated chunks are written), so a count
    /// added concurrently is either moved or left here, never lost nor moved twice.
    fn move_into(&self, total: &TotalHistogram, minute: Option<&SlotHistogram>) {
        for (chunk_index, cell) in self.chunks.iter().enumerate() {
            let Some(chunk) = cell.get() else { continue };
            for (offset, counter) in chunk.iter().enumerate() {
                let n = counter.take();
                if n != 0 {
                    let index = chunk_index * CHUNK + offset;
                    total.add(index, n);
                    if let Some(minute) = minute {
                        minute.add(index, n);
                    }
                }
            }
        }
        let sum = self.sum.swap(0, Ordering::Relaxed);
        let min = self.min.swap(u64::MAX, Ordering::Relaxed);
        let max = self.max.swap(0, Ordering::Relaxed);
        total.sum.fetch_add(sum, Ordering::Relaxed);
        if let Some(minute) = minute {
            minute.sum.fetch_add(sum, Ordering::Relaxed);
            minute.merge_extremes(min, max);
        }
    }

    /// Zeroes all allocated counters (chunks stay allocated for reuse). Not atomic as a
    /// whole: a record racing the reset may be partly kept.
    fn clear(&self) {
        for chunk in self.chunks.iter().filter_map(OnceLock::get) {
            for counter in chunk.iter() {
                counter.clear();
            }
        }
        self.sum.store(0, Ordering::Relaxed);
        self.min.store(u64::MAX, Ordering::Relaxed);
        self.max.store(0, Ordering::Relaxed);
    }

    /// Copies the non-empty counters into a sparse [`Histogram`].
    fn sparse(&self) -> Histogram {
        let mut buckets = Vec::new();
        for (chunk_index, cell) in self.chunks.iter().enumerate() {
            let Some(chunk) = cell.get() else { continue };
            for (offset, counter) in chunk.iter().enumerate() {
                let n = counter.get();
                if n != 0 {
                    let index = chunk_index * CHUNK + offset;
                    buckets.push((u16::try_from(index).unwrap_or(u16::MAX), n));
                }
            }
        }
        Histogram::from_sorted_buckets(
            buckets,
            self.sum.load(Ordering::Relaxed),
            self.min.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
        )
    }

    #[cfg(test)]
    /// Number of allocated chunks.
    fn allocated_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.get().is_some()).count()
    }
}

/// One ring slot: a period tag, a histogram and an error counter.
#[derive(Debug)]
struct Slot {
    /// `period + 1` of the data held, `0` when empty; `ROTATING` bit while
    /// being cleared.
    tag: AtomicU64,
    /// Latencies recorded in the tagged period.
    hist: SlotHistogram,
    /// Errors recorded in the tagged period.
    errors: AtomicU64,
}

impl Slot {
    /// An empty slot.
    fn new() -> Self {
        Self {
            tag: AtomicU64::new(0),
            hist: SlotHistogram::new(),
            errors: AtomicU64::new(0),
        }
    }

    /// Waits until the slot holds tag `want` (see the module docs for the protocol):
    /// [`Entry::Ready`] when it does, [`Entry::Stale`] with the older tag to rotate from,
    /// [`Entry::Dropped`] for a straggler (the slot holds a newer period) or when the wait
    /// budget ([`MAX_ROTATION_SPINS`], counted in `spins` over the calls of one record) is
    /// spent.
    #[inline]
    fn enter(&self, want: u64, spins: &mut u32) -> Entry {
        loop {
            let tag = self.tag.load(Ordering::Acquire);
            if tag == want {
                return Entry::Ready;
            }
            if tag & ROTATING != 0 {
                if *spins >= MAX_ROTATION_SPINS {
                    return Entry::Dropped;
                }
                *spins = spins.saturating_add(1);
                if *spins <= SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            if tag > want {
                // Slot already holds a newer period: straggler.
                return Entry::Dropped;
            }
            return Entry::Stale(tag);
        }
    }

    /// Claims the slot for `want` if it still holds `tag`: sets `want | ROTATING`.
    fn claim(&self, tag: u64, want: u64) -> bool {
        let claimed = self
            .tag
            .compare_exchange(tag, want | ROTATING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if claimed {
            // Seqlock-style: readers that see cleared data also see ROTATING.
            std::sync::atomic::fence(Ordering::Release);
        }
        claimed
    }

    /// Zeroes the slot's counters (after [`Slot::claim`]).
    fn clear(&self) {
        self.hist.clear();
        self.errors.store(0, Ordering::Relaxed);
    }

    /// Ends a rotation: the slot holds `want`.
    fn publish(&self, want: u64) {
        self.tag.store(want, Ordering::Release);
    }

    /// Makes the slot hold `want`, rotating it by clearing if it holds an older tag (a
    /// minute slot's rotation; quarter slots fold instead, see
    /// [`WindowedHistogram::rotate_quarter`]); `false` for a straggler or when the wait
    /// budget is spent.
    fn enter_clearing(&self, want: u64) -> bool {
        let mut spins = 0u32;
        loop {
            match self.enter(want, &mut spins) {
                Entry::Ready => return true,
                Entry::Dropped => return false,
                Entry::Stale(tag) => {
                    if self.claim(tag, want) {
                        self.clear();
                        self.publish(want);
                        return true;
                    }
                }
            }
        }
    }

    /// Records into this slot for `period`, rotating it by clearing if it holds an older
    /// period (minute slots); `false` if dropped (see [`Slot::enter`]).
    fn record_clearing(&self, period: u64, index: usize, nanos: u64, error: bool) -> bool {
        if !self.enter_clearing(tag_of(period)) {
            return false;
        }
        self.hist.record(index, nanos);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// The slot's period, errors and histogram, whatever the period, if it holds one (not
    /// empty, invalidated or rotating); the histogram may be empty.
    fn read_held(&self) -> Option<PeriodData> {
        let tag = self.tag.load(Ordering::Acquire);
        if tag == 0 || tag & ROTATING != 0 {
            return None;
        }
        let histogram = self.hist.sparse();
        let errors = self.errors.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if self.tag.load(Ordering::Relaxed) != tag {
            return None;
        }
        Some(PeriodData {
            period: tag.wrapping_sub(1),
            errors,
            histogram,
        })
    }

    /// Forgets the slot's data like [`Slot::invalidate`], after waiting (at most
    /// [`MAX_RESET_WAITS`] times) for a rotation in progress to end, so that a fold that
    /// took the slot's counts has added them before the caller clears the total.
    fn invalidate_after_rotation(&self) {
        let mut waits = 0u32;
        loop {
            let tag = self.tag.load(Ordering::Acquire);
            if tag & ROTATING != 0 && waits < MAX_RESET_WAITS {
                waits = waits.saturating_add(1);
                if waits <= SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            if tag == 0
                || self
                    .tag
                    .compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
    }

    /// The slot's period, errors and histogram, if it holds a period in `first..=last`.
    fn read_period(&self, first: u64, last: u64) -> Option<PeriodData> {
        let tag = self.tag.load(Ordering::Acquire);
        if tag == 0 || tag & ROTATING != 0 {
            return None;
        }
        let period = tag.wrapping_sub(1);
        if period < first || period > last {
            return None;
        }
        let histogram = self.hist.sparse();
        let errors = self.errors.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if self.tag.load(Ordering::Relaxed) != tag || histogram.is_empty() {
            return None;
        }
        Some(PeriodData {
            period,
            errors,
            histogram,
        })
    }

    /// Forgets the slot's data (it is cleared by the next record).
    fn invalidate(&self) {
        self.tag.store(0, Ordering::Release);
    }
}

/// A ring of `LEN` slots of `PERIOD_NANOS` nanoseconds each. Both are constants, so that
/// finding a slot takes a multiplication rather than a division.
#[derive(Debug)]
struct PeriodRing<const LEN: usize, const PERIOD_NANOS: u64> {
    /// The slots; period `p` lives in `slots[p % LEN]`.
    slots: Box<[Slot]>,
}

impl<const LEN: usize, const PERIOD_NANOS: u64> PeriodRing<LEN, PERIOD_NANOS> {
    /// Period length in nanoseconds (non-zero).
    const PERIOD: u64 = if PERIOD_NANOS == 0 { 1 } else { PERIOD_NANOS };

    /// A ring of empty slots.
    fn new() -> Self {
        Self {
            slots: (0..LEN).map(|_| Slot::new()).collect(),
        }
    }

    /// Period index of `elapsed` nanoseconds since base.
    #[inline]
    fn period_of(&self, elapsed: u64) -> u64 {
        elapsed / Self::PERIOD
    }

    /// Slot for `period`.
    #[inline]
    fn slot(&self, period: u64) -> Option<&Slot> {
        let index = usize::try_from(period.checked_rem(LEN as u64)?).ok()?;
        self.slots.get(index)
    }

    /// The periods of the window of the last `LEN` periods at `now` (not before `reset_at`),
    /// by ascending period.
    fn periods(&self, now: u64, reset_at: u64) -> Vec<PeriodData> {
        let current = self.period_of(now);
        let span = u64::try_from(self.slots.len())
            .unwrap_or(1)
            .saturating_sub(1);
        let first = current.saturating_sub(span).max(self.period_of(reset_at));
        let mut periods: Vec<PeriodData> = self
            .slots
            .iter()
            .filter_map(|slot| slot.read_period(first, current))
            .collect();
        periods.sort_by_key(|p| p.period);
        periods
    }

    /// Invalidates every slot.
    fn invalidate(&self) {
        self.slots.iter().for_each(Slot::invalidate);
    }

    #[cfg(test)]
    /// Allocated counter chunks over all slots.
    fn allocated_chunks(&self) -> usize {
        self.slots.iter().map(|s| s.hist.allocated_chunks()).sum()
    }
}

/// What one ring slot held for one period: the period's number (Unix time divided by the
/// period's length), the errors and the latencies recorded in it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PeriodData {
    pub(crate) period: u64,
    pub(crate) errors: u64,
    pub(crate) histogram: Histogram,
}

/// The raw contents of a [`WindowedHistogram`]: what the read model keeps of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WindowData {
    /// Everything since the origin or the last reset.
    pub(crate) total: Histogram,
    /// Errors since the origin or the last reset.
    pub(crate) total_errors: u64,
    /// The 15-second periods of the "1m" window, by ascending period.
    pub(crate) quarters: Vec<PeriodData>,
    /// The one-minute periods of the "15m" window, by ascending period.
    pub(crate) minutes: Vec<PeriodData>,
}

/// The 15-second period of an instant, for windows with a given base and origin: the
/// period of the last instant asked for is kept with its bounds as instants, so that an
/// instant in the same period (nearly every request's end) is placed by two comparisons
/// rather than a subtraction of instants.
#[derive(Debug, Clone)]
pub(crate) struct QuarterClock {
    base: Instant,
    origin: u64,
    /// The kept period and its bounds, `from..until`.
    quarter: u64,
    from: Instant,
    until: Instant,
}

impl QuarterClock {
    /// A clock for windows whose base instant `base` is Unix time `origin` (nanoseconds).
    pub(crate) fn new(base: Instant, origin: u64) -> Self {
        Self {
            base,
            origin,
            quarter: 0,
            // An empty range: the first instant asked for sets it.
            from: base,
            until: base,
        }
    }

    /// The period of `now`, as [`WindowedHistogram`] counts periods.
    #[inline]
    pub(crate) fn quarter_of(&mut self, now: Instant) -> u64 {
        if now >= self.from && now < self.until {
            return self.quarter;
        }
        self.find(now)
    }

    #[cold]
    fn find(&mut self, now: Instant) -> u64 {
        let unix = self
            .origin
            .saturating_add(duration_nanos(now.saturating_duration_since(self.base)));
        let quarter = unix / QUARTER_NANOS;
        // The period's bounds as instants; the period `base` falls in is kept from `base` on
        // (an earlier instant is placed in it all the same, by the subtraction above).
        let start = quarter.saturating_mul(QUARTER_NANOS);
        let end = start.saturating_add(QUARTER_NANOS);
        let from = self
            .base
            .checked_add(Duration::from_nanos(start.saturating_sub(self.origin)));
        let until = end
            .checked_sub(self.origin)
            .and_then(|nanos| self.base.checked_add(Duration::from_nanos(nanos)));
        if let (Some(from), Some(until)) = (from, until) {
            self.quarter = quarter;
            self.from = from;
            self.until = until;
        }
        quarter
    }
}

/// Latency histograms and error counters over "1m", "15m" and "total" windows.
///
/// Lock-free for recording and reading; see the module docs for the exact
/// window definitions, the rotation protocol and the memory figures.
#[derive(Debug)]
pub(crate) struct WindowedHistogram {
    /// The monotonic instant of `origin`.
    base: Instant,
    /// Unix time of `base` in nanoseconds: periods are counted from the Unix epoch, so that
    /// two instances' periods line up.
    origin: u64,
    /// Unix time of the last reset in nanoseconds (`origin` if never reset).
    reset_at: AtomicU64,
    /// Everything since base/reset.
    total: TotalHistogram,
    /// Errors since base/reset.
    total_errors: AtomicU64,
    /// 5 x 15 s slots for "1m".
    quarters: PeriodRing<QUARTER_SLOTS, QUARTER_NANOS>,
    /// 16 x 60 s slots for "15m".
    minutes: PeriodRing<MINUTE_SLOTS, MINUTE_NANOS>,
    /// Folds started (high 32 bits, wrapping) and running (low 32 bits): a reader that
    /// sees it unchanged and with no fold running around its read saw no count moving.
    fold_seq: AtomicU64,
}

impl WindowedHistogram {
    /// Creates empty windows whose monotonic instant `base` is Unix time `origin`
    /// (nanoseconds). Allocates the dense total histogram and the slot headers; slot counters
    /// are allocated on first use.
    pub(crate) fn new(base: Instant, origin: u64) -> Self {
        Self {
            base,
            origin,
            reset_at: AtomicU64::new(origin),
            total: TotalHistogram::new(),
            total_errors: AtomicU64::new(0),
            quarters: PeriodRing::new(),
            minutes: PeriodRing::new(),
            fold_seq: AtomicU64::new(0),
        }
    }

    /// Unix time of `now` in nanoseconds (`origin` if `now` is before `base`).
    #[inline]
    fn elapsed(&self, now: Instant) -> u64 {
        self.origin
            .saturating_add(duration_nanos(now.saturating_duration_since(self.base)))
    }

    #[cfg(test)]
    /// Records a successful request of `nanos` latency at time `now`.
    #[inline]
    pub(crate) fn record(&self, now: Instant, nanos: u64) {
        self.record_outcome(now, nanos, false);
    }

    /// Records a request of `nanos` latency at `now`, counting it as an error
    /// when `error` is true (its latency is recorded either way).
    #[cfg(test)]
    pub(crate) fn record_outcome(&self, now: Instant, nanos: u64, error: bool) {
        let quarter = self.quarters.period_of(self.elapsed(now));
        self.record_in_quarter(quarter, nanos, error);
    }

    /// Records a request of `nanos` latency that ended in 15-second period `quarter` (from
    /// a [`QuarterClock`] with this histogram's base and origin), counting it as an error
    /// when `error` is true (its latency is recorded either way).
    ///
    /// One histogram record, into the quarter's slot, plus the total's minimum and maximum;
    /// the quarter's counts reach the minute ring and the total when its slot is rotated
    /// for a newer quarter (see the module docs).
    #[inline]
    pub(crate) fn record_in_quarter(&self, quarter: u64, nanos: u64, error: bool) {
        let index = bucket_index(nanos);
        self.total.record_extremes(nanos);
        if let Some(slot) = self.quarters.slot(quarter) {
            let want = tag_of(quarter);
            let mut spins = 0u32;
            loop {
                match slot.enter(want, &mut spins) {
                    Entry::Ready => {
                        slot.hist.record(index, nanos);
                        if error {
                            slot.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                    Entry::Stale(tag) => self.rotate_quarter(slot, tag, want),
                    Entry::Dropped => break,
                }
            }
        }
        self.record_late(quarter, index, nanos, error);
    }

    /// Records a request that could not go into its quarter's slot (a straggler, or the
    /// wait for a rotation ran out of budget) directly into the total and its minute's slot.
    #[cold]
    #[inline(never)]
    fn record_late(&self, quarter: u64, index: usize, nanos: u64, error: bool) {
        self.total.record_count(index, nanos);
        if error {
            self.total_errors.fetch_add(1, Ordering::Relaxed);
        }
        let minute = quarter / QUARTERS_PER_MINUTE;
        if let Some(slot) = self.minutes.slot(minute) {
            slot.record_clearing(minute, index, nanos, error);
        }
    }

    /// Rotates a quarter slot that holds the older tag `tag` to `want`. A slot that held
    /// a quarter has its counts moved into the total and the quarter's minute slot (the
    /// fold), under the fold sequence; an empty or invalidated one is cleared. Does
    /// nothing if another record changed the tag first.
    #[cold]
    #[inline(never)]
    fn rotate_quarter(&self, slot: &Slot, tag: u64, want: u64) {
        if tag == 0 {
            // Empty, or invalidated by a reset: its counts are dropped, not folded.
            if slot.claim(tag, want) {
                slot.clear();
                slot.publish(want);
            }
            return;
        }
        // The fold is announced before the claim: a reader that sees the slot rotating
        // (its counts not yet in the total) also sees the fold sequence change.
        self.fold_seq.fetch_add(FOLD_STARTED, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        if slot.claim(tag, want) {
            self.fold(slot, tag.wrapping_sub(1), want.wrapping_sub(1));
            slot.publish(want);
        }
        self.fold_seq.fetch_sub(1, Ordering::Release);
    }

    /// Moves the counts of `slot`, which held quarter `quarter` and is claimed for the newer
    /// `next`, into the total and, if that minute is still in the "15m" window of `next`,
    /// into the minute slot of `quarter`'s minute.
    fn fold(&self, slot: &Slot, quarter: u64, next: u64) {
        let minute = quarter / QUARTERS_PER_MINUTE;
        let in_window = minute.saturating_add(MINUTE_SLOTS as u64) > next / QUARTERS_PER_MINUTE;
        let target = self
            .minutes
            .slot(minute)
            .filter(|target| in_window && target.enter_clearing(tag_of(minute)));
        slot.hist
            .move_into(&self.total, target.map(|target| &target.hist));
        let errors = slot.errors.swap(0, Ordering::Relaxed);
        if errors != 0 {
            self.total_errors.fetch_add(errors, Ordering::Relaxed);
            if let Some(target) = target {
                target.errors.fetch_add(errors, Ordering::Relaxed);
            }
        }
    }

    /// The raw contents as of `now`: the total, and the periods of the "1m" and "15m"
    /// windows that hold data.
    ///
    /// Reads again (up to [`MAX_READ_ATTEMPTS`] times) when a fold ran during the read, so
    /// that a quarter's counts are seen either in its slot or in the total and its minute,
    /// never in both or neither; never makes a record wait.
    pub(crate) fn data(&self, now: Instant) -> WindowData {
        let elapsed = self.elapsed(now);
        let reset_at = self.reset_at.load(Ordering::Acquire);
        let mut attempts = 0u32;
        loop {
            let before = self.fold_seq.load(Ordering::Acquire);
            let last = attempts >= MAX_READ_ATTEMPTS;
            if before & FOLDS_RUNNING == 0 || last {
                let data = self.read(elapsed, reset_at);
                std::sync::atomic::fence(Ordering::Acquire);
                if last || self.fold_seq.load(Ordering::Relaxed) == before {
                    return data;
                }
            }
            attempts = attempts.saturating_add(1);
            if attempts <= SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// One read of the raw contents at Unix time `elapsed` (see [`WindowedHistogram::data`]):
    /// the folded total and minutes plus the quarters still held in their slots.
    fn read(&self, elapsed: u64, reset_at: u64) -> WindowData {
        let held: Vec<PeriodData> = self
            .quarters
            .slots
            .iter()
            .filter_map(Slot::read_held)
            .collect();
        let mut total = self.total.sparse();
        let mut total_errors = self.total_errors.load(Ordering::Relaxed);
        for quarter in &held {
            total.merge(&quarter.histogram);
            total_errors = total_errors.wrapping_add(quarter.errors);
        }

        let in_window = |period: u64, len: usize, period_nanos: u64| {
            let current = elapsed / period_nanos;
            let first = current
                .saturating_sub(len as u64 - 1)
                .max(reset_at / period_nanos);
            (first..=current).contains(&period)
        };
        let mut minutes = self.minutes.periods(elapsed, reset_at);
        for quarter in &held {
            let minute = quarter.period / QUARTERS_PER_MINUTE;
            if !in_window(minute, MINUTE_SLOTS, MINUTE_NANOS) {
                continue;
            }
            if let Some(data) = minutes.iter_mut().find(|data| data.period == minute) {
                data.histogram.merge(&quarter.histogram);
                data.errors = data.errors.wrapping_add(quarter.errors);
            } else {
                minutes.push(PeriodData {
                    period: minute,
                    errors: quarter.errors,
                    histogram: quarter.histogram.clone(),
                });
            }
        }
        minutes.retain(|data| !data.histogram.is_empty());
        minutes.sort_by_key(|data| data.period);

        let mut quarters: Vec<PeriodData> = held
            .into_iter()
            .filter(|quarter| {
                !quarter.histogram.is_empty()
                    && in_window(quarter.period, QUARTER_SLOTS, QUARTER_NANOS)
            })
            .collect();
        quarters.sort_by_key(|data| data.period);
        WindowData {
            total,
            total_errors,
            quarters,
            minutes,
        }
    }

    /// Unix time of the last reset (or of the origin) in nanoseconds.
    pub(crate) fn reset_time_nanos(&self) -> u64 {
        self.reset_at.load(Ordering::Acquire)
    }

    /// Clears every window as of `now`; covered durations restart at `now`.
    /// Not atomic with respect to concurrent records: a record racing the
    /// reset may be kept in `total` or dropped from the windows. A fold in progress is
    /// waited for (see [`Slot::invalidate_after_rotation`]), so that the quarter it took is
    /// cleared from the total with the rest.
    pub(crate) fn reset(&self, now: Instant) {
        let elapsed = self.elapsed(now);
        self.reset_at.fetch_max(elapsed, Ordering::AcqRel);
        self.quarters
            .slots
            .iter()
            .for_each(Slot::invalidate_after_rotation);
        self.minutes.invalidate();
        self.total.clear();
        self.total_errors.store(0, Ordering::Relaxed);
    }

    #[cfg(test)]
    /// Approximate bytes used right now: the struct, the slot headers, 256 bytes per
    /// allocated chunk of the total and 128 bytes per allocated slot chunk (allocator
    /// overhead not included).
    pub(crate) fn memory_bytes(&self) -> usize {
        let slots = self
            .quarters
            .slots
            .len()
            .saturating_add(self.minutes.slots.len());
        let chunks = self
            .quarters
            .allocated_chunks()
            .saturating_add(self.minutes.allocated_chunks());
        std::mem::size_of::<Self>()
            .saturating_add(
                self.total
                    .allocated_chunks()
                    .saturating_mul(chunk_bytes::<AtomicU64>()),
            )
            .saturating_add(slots.saturating_mul(std::mem::size_of::<Slot>()))
            .saturating_add(chunks.saturating_mul(chunk_bytes::<AtomicU32>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::collect::latency;
    use crate::snapshot::derive::{minute_counts, window_histogram};

    #[test]
    fn the_quarter_clock_places_instants_as_the_windows_count_periods() {
        let base = Instant::now();
        // An origin in the middle of a period, so that the first period starts before base.
        let origin = 1_763_700_000 * 1_000_000_000 + 7_654_321_000;
        let windows = WindowedHistogram::new(base, origin);
        let mut clock = QuarterClock::new(base, origin);
        let to_boundary = QUARTER_NANOS - origin % QUARTER_NANOS;
        let mut offsets = vec![0, 1, to_boundary - 1, to_boundary, to_boundary + 1];
        offsets.extend((1..40).map(|i| to_boundary + i * QUARTER_NANOS - 1));
        offsets.extend((1..40).map(|i| i * 1_234_567_891));
        // Forwards, backwards and back again: a kept period is never taken for another.
        let mut order = offsets.clone();
        order.extend(offsets.iter().rev());
        order.extend(&offsets);
        for nanos in order {
            let now = base + Duration::from_nanos(nanos);
            let expected = windows.elapsed(now) / QUARTER_NANOS;
            assert_eq!(clock.quarter_of(now), expected, "{nanos} ns after base");
        }
        // Before base (no request ends then): the first period, as the windows count it.
        if let Some(before) = base.checked_sub(Duration::from_secs(1)) {
            assert_eq!(clock.quarter_of(before), origin / QUARTER_NANOS);
        }
    }

    /// The three windows as the read model derives them from the raw data.
    struct Windows {
        one_minute: Histogram,
        fifteen_minutes: Histogram,
        total: Histogram,
        one_minute_errors: u64,
        fifteen_minutes_errors: u64,
        total_errors: u64,
        one_minute_secs: f64,
        fifteen_minutes_secs: f64,
        total_secs: f64,
    }

    impl Windows {
        fn rate(count: u64, secs: f64) -> f64 {
            if secs > 0.0 {
                count as f64 / secs
            } else {
                0.0
            }
        }

        fn one_minute_rps(&self) -> f64 {
            Self::rate(self.one_minute.count(), self.one_minute_secs)
        }

        fn fifteen_minutes_rps(&self) -> f64 {
            Self::rate(self.fifteen_minutes.count(), self.fifteen_minutes_secs)
        }

        fn total_rps(&self) -> f64 {
            Self::rate(self.total.count(), self.total_secs)
        }
    }

    /// Unix seconds of `now` and of the last reset, on the histogram's clock.
    fn times(w: &WindowedHistogram, now: Instant) -> (f64, f64) {
        (
            crate::clock::nanos_to_secs(w.elapsed(now)),
            crate::clock::nanos_to_secs(w.reset_time_nanos()),
        )
    }

    impl WindowedHistogram {
        fn snapshot(&self, now: Instant) -> Windows {
            let data = latency(self.data(now));
            let (at, reset) = times(self, now);
            let (one_minute, one_minute_errors, one_minute_secs) =
                window_histogram(&data.quarters, 5, 15, at, reset);
            let (fifteen_minutes, fifteen_minutes_errors, fifteen_minutes_secs) =
                window_histogram(&data.minutes, 16, 60, at, reset);
            Windows {
                one_minute,
                fifteen_minutes,
                total: data.total,
                one_minute_errors,
                fifteen_minutes_errors,
                total_errors: data.total_errors,
                one_minute_secs,
                fifteen_minutes_secs,
                total_secs: (at - reset).max(0.0),
            }
        }

        fn minute_counts(&self, now: Instant) -> Vec<u64> {
            let (at, reset) = times(self, now);
            minute_counts(&latency(self.data(now)).minutes, at, reset)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn minute_counts_follow_the_clock() {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        w.record(Instant::now(), 1_000);
        w.record(Instant::now(), 2_000);
        tokio::time::advance(MINUTE).await;
        w.record(Instant::now(), 3_000);
        let counts = w.minute_counts(Instant::now());
        assert_eq!(counts.len(), MINUTE_SLOTS);
        assert_eq!(&counts[MINUTE_SLOTS - 2..], &[2, 1]);
        assert_eq!(counts.iter().sum::<u64>(), 3);
        tokio::time::advance(MINUTE * 20).await;
        assert_eq!(w.minute_counts(Instant::now()).iter().sum::<u64>(), 0);
        w.reset(Instant::now());
        assert_eq!(w.minute_counts(Instant::now()), vec![0; MINUTE_SLOTS]);
    }
    use crate::histogram::{OVERFLOW_THRESHOLD, RELATIVE_ERROR};
    use tokio::time::advance;

    const SEC: Duration = Duration::from_secs(1);

    /// Advances the paused clock to `base + at`.
    async fn advance_to(base: Instant, at: Duration) {
        let now = Instant::now();
        let target = base + at;
        if target > now {
            advance(target - now).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_ages_out_of_one_minute_then_fifteen() {
        // Try bursts at several offsets inside a quarter.
        for offset_ms in [0u64, 1, 7_500, 14_999, 15_000, 44_321] {
            let base = Instant::now();
            let w = WindowedHistogram::new(base, 0);
            let t0 = Duration::from_millis(offset_ms);
            advance_to(base, t0).await;
            for i in 0..100u64 {
                w.record_outcome(Instant::now(), 1_000_000 + i, i % 10 == 0);
            }
            let s = w.snapshot(Instant::now());
            assert_eq!(s.one_minute.count(), 100);
            assert_eq!(s.fifteen_minutes.count(), 100);
            assert_eq!(s.total.count(), 100);
            assert_eq!(s.one_minute_errors, 10);
            assert_eq!(s.fifteen_minutes_errors, 10);
            assert_eq!(s.total_errors, 10);

            // Visible through t0 + 60 s, gone by t0 + 75 s (no new records).
            for sec in 1..=80u64 {
                advance(SEC).await;
                let s = w.snapshot(Instant::now());
                let c = s.one_minute.count();
                if sec <= 60 {
                    assert_eq!(c, 100, "offset {offset_ms} ms, t0+{sec}s");
                } else if sec >= 75 {
                    assert_eq!(c, 0, "offset {offset_ms} ms, t0+{sec}s");
                    assert_eq!(s.one_minute_errors, 0);
                    assert_eq!(s.one_minute.quantile(0.5), None);
                }
                assert!(s.one_minute_secs <= 75.0);
                assert_eq!(s.fifteen_minutes.count(), 100);
            }
            // 15m: visible through t0 + 15 min, gone by t0 + 16 min.
            advance_to(base, t0 + 15 * MINUTE).await;
            let s = w.snapshot(Instant::now());
            assert_eq!(s.fifteen_minutes.count(), 100, "offset {offset_ms}");
            assert_eq!(s.one_minute.count(), 0);
            advance_to(base, t0 + 16 * MINUTE).await;
            let s = w.snapshot(Instant::now());
            assert_eq!(s.fifteen_minutes.count(), 0, "offset {offset_ms}");
            assert_eq!(s.fifteen_minutes_errors, 0);
            // Total keeps everything.
            assert_eq!(s.total.count(), 100);
            assert_eq!(s.total_errors, 10);
            assert_eq!(s.total.min(), Some(1_000_000));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn windows_rotate_without_records_and_after_ring_wraps() {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        w.record(Instant::now(), 5_000);
        // Far in the future (many ring turns), no writes in between.
        advance(Duration::from_secs(3 * 3600 + 7)).await;
        let s = w.snapshot(Instant::now());
        assert_eq!(s.one_minute.count(), 0);
        assert_eq!(s.fifteen_minutes.count(), 0);
        assert_eq!(s.total.count(), 1);
        // Exactly one ring turn later the same slots are reused: old data must
        // not leak into the new period.
        let w = WindowedHistogram::new(base, 0);
        w.record(base, 7_000);
        let later = base + 16 * MINUTE;
        w.record(later, 9_000);
        let s = w.snapshot(later);
        assert_eq!(s.fifteen_minutes.count(), 1);
        assert_eq!(s.fifteen_minutes.min(), Some(9_000));
        assert_eq!(s.one_minute.count(), 1);
        assert_eq!(s.total.count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn covered_durations_and_rates() {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        advance(Duration::from_secs(10)).await;
        for _ in 0..50 {
            w.record(Instant::now(), 2_000_000);
        }
        let s = w.snapshot(Instant::now());
        assert_eq!(s.one_minute_secs, 10.0);
        assert_eq!(s.fifteen_minutes_secs, 10.0);
        assert_eq!(s.total_secs, 10.0);
        assert_eq!(s.one_minute_rps(), 5.0);
        assert_eq!(s.total_rps(), 5.0);

        advance_to(base, Duration::from_secs(3600 + 20)).await;
        let s = w.snapshot(Instant::now());
        // 4 full quarters + 5 s of the current one; 15 full minutes + 20 s.
        assert_eq!(s.one_minute_secs, 65.0);
        assert_eq!(s.fifteen_minutes_secs, 920.0);
        assert_eq!(s.total_secs, 3620.0);
        assert_eq!(s.one_minute_rps(), 0.0);
        assert_eq!(s.fifteen_minutes_rps(), 0.0);

        // Before base: nothing covered, no panic.
        let w2 = WindowedHistogram::new(Instant::now() + Duration::from_secs(5), 0);
        w2.record(Instant::now(), 1);
        let s = w2.snapshot(Instant::now());
        assert_eq!(s.total_secs, 0.0);
        assert_eq!(s.total_rps(), 0.0);
        assert_eq!(s.one_minute.count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn reset_clears_all_windows() {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        advance(Duration::from_secs(20)).await;
        for _ in 0..10 {
            w.record_outcome(Instant::now(), 3_000, true);
        }
        advance(Duration::from_secs(2)).await;
        w.reset(Instant::now());
        let s = w.snapshot(Instant::now());
        assert_eq!(s.one_minute.count(), 0);
        assert_eq!(s.fifteen_minutes.count(), 0);
        assert_eq!(s.total.count(), 0);
        assert_eq!(s.total_errors, 0);
        assert_eq!(s.total_secs, 0.0);
        // Same quarter as the pre-reset records: only new data is visible.
        advance(Duration::from_secs(3)).await;
        w.record(Instant::now(), 4_000);
        let s = w.snapshot(Instant::now());
        assert_eq!(s.one_minute.count(), 1);
        assert_eq!(s.one_minute.min(), Some(4_000));
        assert_eq!(s.fifteen_minutes.count(), 1);
        assert_eq!(s.total.count(), 1);
        assert_eq!(s.one_minute_errors, 0);
        assert_eq!(s.one_minute_secs, 3.0);
        assert_eq!(s.total_secs, 3.0);
    }

    #[test]
    fn windowed_quantiles_match_total_and_edge_values() {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        let values = [
            0,
            1,
            1_023,
            1_024,
            250_000,
            3_000_000_000,
            OVERFLOW_THRESHOLD,
            u64::MAX,
        ];
        for &v in &values {
            w.record(base, v);
        }
        let s = w.snapshot(base);
        assert_eq!(s.one_minute, s.total);
        assert_eq!(s.fifteen_minutes, s.total);
        assert_eq!(s.total.max(), Some(u64::MAX));
        let p50 = s.one_minute.quantile(0.5).unwrap() as f64;
        assert!((p50 - 1_024.0).abs() / 1_024.0 <= RELATIVE_ERROR);
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 50_000;
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let w = &w;
                scope.spawn(move || {
                    for i in 0..PER_THREAD {
                        // Spread over three quarters / two minutes so rotations race.
                        let at = base + Duration::from_millis(40_000 + (i * 40_000) / PER_THREAD);
                        w.record_outcome(at, 1_000 + t * 10_007 + i, i % 2 == 0);
                    }
                });
            }
        });
        let now = base + Duration::from_secs(80);
        let s = w.snapshot(now);
        let n = THREADS * PER_THREAD;
        let sum: u64 = (0..THREADS)
            .flat_map(|t| (0..PER_THREAD).map(move |i| 1_000 + t * 10_007 + i))
            .sum();
        assert_eq!(s.total.count(), n);
        assert_eq!(s.total.sum_nanos(), sum);
        assert_eq!(s.total_errors, n / 2);
        // All records are within the last 60..75 s and 15..16 min windows.
        assert_eq!(s.one_minute.count(), n);
        assert_eq!(s.one_minute.sum_nanos(), sum);
        assert_eq!(s.fifteen_minutes.count(), n);
        assert_eq!(s.fifteen_minutes_errors, n / 2);
        assert_eq!(s.one_minute, s.total);
    }

    #[test]
    fn memory_figures() {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        let idle = w.memory_bytes();
        // A windowed histogram with one value of each octave in `octaves` in every slot of
        // both rings (one minute more than the ring: a minute slot receives its quarters
        // when they are folded, as their quarter slots are reused).
        let filled = |octaves: std::ops::Range<u32>| {
            let w = WindowedHistogram::new(base, 0);
            for period in 0..=MINUTE_SLOTS as u64 {
                let at = base + MINUTE * u32::try_from(period).unwrap();
                for q in 0..QUARTER_SLOTS as u64 {
                    let at = at + QUARTER * u32::try_from(q).unwrap();
                    for octave in octaves.clone() {
                        w.record(at, 1u64 << octave);
                    }
                }
            }
            w
        };
        // Typical: 8 octaves (~128 µs .. ~33 ms); worst: every octave.
        let typical = filled(17..25).memory_bytes();
        let w_worst = filled(9..64);
        let worst = w_worst.memory_bytes();
        eprintln!(
            "WindowedHistogram bytes: idle {idle}, typical {typical}, worst {worst}; \
             x256: {} / {} / {} KiB; slot header {} B",
            idle * 256 / 1024,
            typical * 256 / 1024,
            worst * 256 / 1024,
            std::mem::size_of::<Slot>()
        );
        assert_eq!(w_worst.quarters.allocated_chunks(), QUARTER_SLOTS * CHUNKS);
        assert_eq!(w_worst.minutes.allocated_chunks(), MINUTE_SLOTS * CHUNKS);
        assert!(idle < 20_000);
        assert!(typical < 45_000);
        assert!(worst < 100_000);
    }

    /// The three-record reference: every record since the last reset, kept with its Unix
    /// time, and the windows computed from them exactly as the docs define them.
    #[derive(Default)]
    struct Reference {
        records: Vec<(u64, u64, bool)>,
        reset_at: u64,
    }

    impl Reference {
        fn record(&mut self, unix: u64, nanos: u64, error: bool) {
            self.records.push((unix, nanos, error));
        }

        fn reset(&mut self, unix: u64) {
            self.records.clear();
            self.reset_at = self.reset_at.max(unix);
        }

        fn periods(&self, now: u64, len: u64, period_nanos: u64) -> Vec<PeriodData> {
            let current = now / period_nanos;
            let first = current
                .saturating_sub(len - 1)
                .max(self.reset_at / period_nanos);
            let mut periods: Vec<PeriodData> = Vec::new();
            for &(unix, nanos, error) in &self.records {
                let period = unix / period_nanos;
                if period < first || period > current {
                    continue;
                }
                let at = match periods.iter().position(|p| p.period == period) {
                    Some(at) => at,
                    None => {
                        periods.push(PeriodData {
                            period,
                            errors: 0,
                            histogram: Histogram::new(),
                        });
                        periods.len() - 1
                    }
                };
                periods[at].histogram.record(nanos);
                periods[at].errors += u64::from(error);
            }
            periods.sort_by_key(|p| p.period);
            periods
        }

        fn data(&self, now: u64) -> WindowData {
            let mut total = Histogram::new();
            for &(_, nanos, _) in &self.records {
                total.record(nanos);
            }
            WindowData {
                total,
                total_errors: self.records.iter().filter(|r| r.2).count() as u64,
                quarters: self.periods(now, QUARTER_SLOTS as u64, QUARTER_NANOS),
                minutes: self.periods(now, MINUTE_SLOTS as u64, MINUTE_NANOS),
            }
        }
    }

    /// What a run of [`Op`]s does to a windowed histogram and to the reference.
    #[derive(Clone, Debug)]
    enum Op {
        /// Advance the clock by this many milliseconds, then record.
        Record {
            gap_ms: u64,
            nanos: u64,
            error: bool,
        },
        /// Advance, then compare `data()` with the reference.
        Read { gap_ms: u64 },
        /// Advance, then reset.
        Reset { gap_ms: u64 },
    }

    /// Runs `ops` against a histogram and the reference, comparing `data()` at each read
    /// and at the end.
    fn check_against_reference(origin: u64, ops: &[Op]) {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, origin);
        let mut reference = Reference {
            records: Vec::new(),
            reset_at: origin,
        };
        let mut at_ms = 0u64;
        let unix = |ms: u64| origin + ms * 1_000_000;
        let instant = |ms: u64| base + Duration::from_millis(ms);
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Record {
                    gap_ms,
                    nanos,
                    error,
                } => {
                    at_ms += gap_ms;
                    w.record_outcome(instant(at_ms), nanos, error);
                    reference.record(unix(at_ms), nanos, error);
                }
                Op::Read { gap_ms } => {
                    at_ms += gap_ms;
                    assert_eq!(
                        w.data(instant(at_ms)),
                        reference.data(unix(at_ms)),
                        "step {step}, {at_ms} ms"
                    );
                }
                Op::Reset { gap_ms } => {
                    at_ms += gap_ms;
                    w.reset(instant(at_ms));
                    reference.reset(unix(at_ms));
                }
            }
        }
        assert_eq!(w.data(instant(at_ms)), reference.data(unix(at_ms)));
        // Later reads, as the windows age out with no record.
        for later in [
            1,
            15_000,
            60_000,
            75_000,
            15 * 60_000,
            16 * 60_000,
            3_600_000,
        ] {
            let at = at_ms + later;
            assert_eq!(w.data(instant(at)), reference.data(unix(at)), "+{later} ms");
        }
    }

    #[test]
    fn folded_and_held_quarters_read_as_three_records_would() {
        // An origin in the middle of a quarter and of a minute.
        let origin = 1_763_700_000 * 1_000_000_000 + 7_654_321_000;
        let mut ops = Vec::new();
        // 40 minutes: records in most quarters (some quarters skipped, so that slots are
        // reused after gaps), read every few seconds, errors now and then.
        let mut i = 0u64;
        for quarter in 0..160u64 {
            if quarter % 7 == 3 || (60..70).contains(&quarter) {
                ops.push(Op::Read { gap_ms: 15_000 });
                continue;
            }
            for k in 0..(1 + quarter % 5) {
                i += 1;
                ops.push(Op::Record {
                    gap_ms: 15_000 / (2 + quarter % 5),
                    nanos: 1_000 + (i * 7_919) % 5_000_000 + (k << (quarter % 30)),
                    error: i.is_multiple_of(3),
                });
                ops.push(Op::Read { gap_ms: 0 });
            }
            ops.push(Op::Read {
                gap_ms: 15_000 / (2 + quarter % 5),
            });
        }
        check_against_reference(origin, &ops);
        // The same from origin 0 (period boundaries at base).
        check_against_reference(0, &ops);
    }

    #[test]
    fn reset_drops_held_and_folded_quarters() {
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        let at = |secs: u64| base + Duration::from_secs(secs);
        // Quarters 0..=7: quarters 0..=2 folded (their slots reused by 5..=7), 3..=7 held.
        for quarter in 0..8u64 {
            w.record_outcome(at(quarter * 15 + 1), 1_000 + quarter, true);
            w.record_outcome(at(quarter * 15 + 2), 5_000_000, false);
        }
        let before = w.data(at(119));
        assert_eq!(before.total.count(), 16);
        assert_eq!(before.total_errors, 8);
        assert_eq!(before.quarters.len(), 5);
        assert_eq!(
            before
                .minutes
                .iter()
                .map(|m| m.histogram.count())
                .sum::<u64>(),
            16
        );
        w.reset(at(121));
        let after = w.data(at(121));
        assert_eq!(after.total, Histogram::new());
        assert_eq!(after.total_errors, 0);
        assert!(after.quarters.is_empty());
        assert!(after.minutes.is_empty());
        // Records after the reset: in the reset's quarter (slot of quarter 3, held before
        // the reset), then in the next quarters, whose slots held quarters 4..=7 before the
        // reset: those are emptied, not folded, when reused.
        let mut reference = Reference {
            records: Vec::new(),
            reset_at: 121_000_000_000,
        };
        for secs in [122u64, 130, 136, 150, 170, 190, 210, 250, 300] {
            w.record_outcome(at(secs), 2_000 + secs, secs % 2 == 0);
            reference.record(secs * 1_000_000_000, 2_000 + secs, secs % 2 == 0);
            assert_eq!(w.data(at(secs)), reference.data(secs * 1_000_000_000));
        }
        let data = w.data(at(300));
        assert_eq!(data.total.count(), 9);
        assert_eq!(data.total.min(), Some(2_122));
        assert_eq!(data.total.max(), Some(2_300));
        // A reset after the last record, then a record a ring turn later: the invalidated
        // slot is emptied, its quarter never reaches the total.
        w.reset(at(301));
        w.record_outcome(at(301 + 75), 9_000, false);
        let data = w.data(at(400));
        assert_eq!(data.total.count(), 1);
        assert_eq!(data.total.sum_nanos(), 9_000);
        assert_eq!(data.total_errors, 0);
        assert_eq!(data.minutes.len(), 1);
        assert_eq!(data.minutes[0].histogram.count(), 1);
    }

    #[test]
    fn concurrent_records_across_folds_are_counted_once() {
        const WRITERS: u64 = 4;
        const PER_WRITER: u64 = 40_000;
        // 40 quarters (10 minutes) of records: every quarter slot is folded about 8 times
        // while the writers run.
        const SPAN_MS: u64 = 600_000;
        let base = Instant::now();
        let w = WindowedHistogram::new(base, 0);
        let started = AtomicU64::new(0);
        let writers_done = AtomicU64::new(0);
        // The reader starts with the writers.
        let start = std::sync::Barrier::new(usize::try_from(WRITERS).unwrap() + 1);
        let value = |t: u64, i: u64| 1_000 + t * 100_003 + (i * 7_919) % 3_000_000;
        std::thread::scope(|scope| {
            for t in 0..WRITERS {
                let (w, started, writers_done, start) = (&w, &started, &writers_done, &start);
                scope.spawn(move || {
                    start.wait();
                    for i in 0..PER_WRITER {
                        let mut ms = i * SPAN_MS / PER_WRITER + t * 3;
                        if t == WRITERS - 1 {
                            // A late writer, two minutes behind: its records find slots
                            // holding newer quarters (stragglers) or rotate older ones.
                            ms = ms.saturating_sub(120_000);
                        }
                        started.fetch_add(1, Ordering::Relaxed);
                        // What the reader sees of this record comes after the count above.
                        std::sync::atomic::fence(Ordering::Release);
                        w.record_outcome(base + Duration::from_millis(ms), value(t, i), i % 4 == 0);
                    }
                    writers_done.fetch_add(1, Ordering::Release);
                });
            }
            let (w, started, writers_done, start) = (&w, &started, &writers_done, &start);
            scope.spawn(move || {
                let now = base + Duration::from_millis(SPAN_MS);
                let (mut last_count, mut last_errors) = (0u64, 0u64);
                start.wait();
                loop {
                    let done = writers_done.load(Ordering::Acquire) == WRITERS;
                    let data = w.data(now);
                    std::sync::atomic::fence(Ordering::Acquire);
                    let recorded = started.load(Ordering::Relaxed);
                    let count = data.total.count();
                    assert!(count <= recorded, "{count} counted, {recorded} recorded");
                    assert!(data.total_errors <= recorded);
                    assert!(count >= last_count, "{count} after {last_count}");
                    assert!(data.total_errors >= last_errors);
                    let minutes: u64 = data.minutes.iter().map(|m| m.histogram.count()).sum();
                    // The windows are read one after the other: a record may be seen in
                    // a minute and not yet in the total, never more than recorded.
                    assert!(minutes <= recorded, "{minutes} in 15m, {recorded} recorded");
                    (last_count, last_errors) = (count, data.total_errors);
                    if done {
                        break;
                    }
                }
            });
        });
        let n = WRITERS * PER_WRITER;
        let sum: u64 = (0..WRITERS)
            .flat_map(|t| (0..PER_WRITER).map(move |i| value(t, i)))
            .sum();
        let data = w.data(base + Duration::from_millis(SPAN_MS));
        assert_eq!(data.total.count(), n);
        assert_eq!(data.total.sum_nanos(), sum);
        assert_eq!(data.total_errors, n / 4);
        assert_eq!(data.total.min(), Some(1_000));
        // Every record is within "15m": folded into its minute, recorded there directly, or
        // still held in its quarter.
        let minutes: u64 = data.minutes.iter().map(|m| m.histogram.count()).sum();
        assert_eq!(minutes, n);
        // Some quarters were folded (they are in the total but not in a quarter slot).
        let held: u64 = data.quarters.iter().map(|q| q.histogram.count()).sum();
        assert!(held < n);
    }

    #[test]
    fn a_fold_racing_a_reset_does_not_bring_back_its_quarter() {
        // A quarter of many records is folded by the first record of a later quarter while
        // another thread resets: whatever the interleaving, only that racing record may be
        // kept, never the folded quarter.
        const RECORDS: u64 = 3_000;
        let base = Instant::now();
        for round in 0..300u32 {
            let w = WindowedHistogram::new(base, 0);
            for i in 0..RECORDS {
                w.record_outcome(base + Duration::from_millis(i), 1 << (i % 40), true);
            }
            let later = base + QUARTER * 5;
            let start = std::sync::Barrier::new(2);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    start.wait();
                    w.record(later, 7);
                });
                scope.spawn(|| {
                    start.wait();
                    // Reset at a varying point of the fold.
                    for _ in 0..round % 50 * 20 {
                        std::hint::spin_loop();
                    }
                    w.reset(later);
                });
            });
            let data = w.data(later);
            assert!(data.total.count() <= 1, "round {round}: {:?}", data.total);
            assert_eq!(data.total_errors, 0, "round {round}");
            let minutes: u64 = data.minutes.iter().map(|m| m.histogram.count()).sum();
            assert!(minutes <= 1, "round {round}: {minutes} in 15m");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 64,
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn windows_match_the_reference(
            origin in 0u64..2_000_000_000_000_000_000,
            ops in proptest::collection::vec(op_strategy(), 1..120),
        ) {
            check_against_reference(origin, &ops);
        }
    }

    fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Gaps: mostly within a quarter, some across quarters and minutes, a few past a
        // ring turn.
        let gap = prop_oneof![
            4 => 0u64..2_000,
            3 => 0u64..40_000,
            2 => 0u64..300_000,
            1 => 0u64..3_000_000,
        ];
        let nanos = prop_oneof![0u64..10_000_000, any::<u64>()];
        prop_oneof![
            6 => (gap.clone(), nanos, any::<bool>())
                .prop_map(|(gap_ms, nanos, error)| Op::Record { gap_ms, nanos, error }),
            3 => gap.clone().prop_map(|gap_ms| Op::Read { gap_ms }),
            1 => gap.prop_map(|gap_ms| Op::Reset { gap_ms }),
        ]
    }
}
