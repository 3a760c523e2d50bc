//! Fixed-layout base-2 log-linear ("HDR-style") latency histogram on atomics.
//!
//! Values are `u64` nanoseconds. The layout is fixed at compile time, so every
//! histogram (and every [`Histogram`]) has the same buckets and merging
//! is exact, bucket for bucket.
//!
//! # Layout
//!
//! | index            | values (ns)                      | bucket width        |
//! |------------------|----------------------------------|---------------------|
//! | `0..32`          | `0 ..= 1_023` (linear region)    | 32 ns               |
//! | `32..864`        | octave `2^h ..= 2^(h+1) - 1`, `h = 10..=35`, 32 sub-buckets each | `2^(h-5)` ns |
//! | `864` (overflow) | `2^36 ..= u64::MAX` (>= ~68.7 s) | -                   |
//!
//! [`BUCKETS`] = 865. The index of a value `>= 1024` is its highest set bit `h`
//! (the octave) followed by the next [`SUB_BUCKET_BITS`] = 5 bits: a
//! `leading_zeros`, a shift, a mask and two adds. No float math, no search, no
//! lock and no allocation happens on [`AtomicHistogram::record`].
//!
//! The linear region and the first octave form 64 equal 32 ns buckets, so the
//! layout is continuous: every bucket is exactly one `[lower, upper]` range and
//! consecutive buckets touch.
//!
//! # Error bound
//!
//! In an octave the bucket width is `2^h / 32`, i.e. at most 1/32 of any value
//! in the bucket, so the bucket midpoint is within [`RELATIVE_ERROR`] = 1/64
//! (1.5625 %) of every value in the bucket. This holds for all values from
//! 1,000 ns (1 µs; the linear bucket `992..=1023` has a worst case of 0.8 %
//! there) up to `2^36 - 1` ns (~68.7 s), which covers the 1 µs .. 60 s design
//! range. Below 1 µs the absolute error is at most 16 ns. Values `>= 2^36` ns
//! are only counted (overflow bucket) and reported as the exact recorded
//! maximum.
//!
//! # Memory
//!
//! An [`AtomicHistogram`] is 865 x 8 = 6,920 bytes of counters on the heap
//! ([`HISTOGRAM_HEAP_BYTES`]) plus a 40-byte header: 6,960 bytes in total. A
//! [`Histogram`], the read model's copy, keeps only its non-empty buckets (10
//! bytes each) and 56 bytes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

mod sparse;

pub use self::sparse::{Histogram, HistogramLayout};

/// Bits of linear sub-bucket resolution inside each octave (`2^5` = 32).
pub const SUB_BUCKET_BITS: u32 = 5;

/// Linear sub-buckets per octave (32): bucket width is at most 1/32 of the value.
pub const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;

/// `log2` of the first octave boundary: values below `2^10` = 1,024 ns go to the
/// linear region.
pub const FIRST_OCTAVE_BITS: u32 = 10;

/// First octave boundary (1,024 ns). Values below it land in 32 linear
/// buckets, each 32 ns wide.
pub const LINEAR_LIMIT: u64 = 1 << FIRST_OCTAVE_BITS;

/// `log2` of the top of the tracked range (`2^36` ns, about 68.7 s).
pub const RANGE_BITS: u32 = 36;

/// Values at or above this (`2^36` ns = 68,719,476,736 ns, about 68.7 s) go to
/// the overflow bucket.
pub const OVERFLOW_THRESHOLD: u64 = 1 << RANGE_BITS;

/// Number of log-linear octaves (26: `2^10 ..= 2^36 - 1`).
pub const OCTAVES: usize = (RANGE_BITS - FIRST_OCTAVE_BITS) as usize;

/// Index of the overflow bucket (864), the last bucket.
pub const OVERFLOW_BUCKET: usize = SUB_BUCKETS + OCTAVES * SUB_BUCKETS;

/// Total number of buckets in the layout (865).
pub const BUCKETS: usize = OVERFLOW_BUCKET + 1;

/// Maximum relative error of a reported bucket midpoint against any value in
/// that bucket, for values in 1 µs ..= `2^36 - 1` ns: `1/64` = 1.5625 %.
///
/// Since [`Histogram::quantile`] returns the midpoint of the bucket that
/// holds the exact nearest-rank sample, this is also the bound on the
/// quantile error.
pub const RELATIVE_ERROR: f64 = 1.0 / 64.0;

/// Heap bytes of the counter array of one [`AtomicHistogram`] (6,920).
pub const HISTOGRAM_HEAP_BYTES: usize = BUCKETS * std::mem::size_of::<AtomicU64>();

/// `log2` of the width of a linear-region bucket (32 ns).
const LINEAR_WIDTH_BITS: u32 = FIRST_OCTAVE_BITS - SUB_BUCKET_BITS;

/// Bucket index of a value in nanoseconds; always `< BUCKETS`.
#[inline]
pub const fn bucket_index(nanos: u64) -> usize {
    if nanos < LINEAR_LIMIT {
        (nanos >> LINEAR_WIDTH_BITS) as usize
    } else if nanos >= OVERFLOW_THRESHOLD {
        OVERFLOW_BUCKET
    } else {
        // 10 <= h <= 35 here.
        let h = 63u32.wrapping_sub(nanos.leading_zeros());
        let octave = h.wrapping_sub(FIRST_OCTAVE_BITS) as usize;
        let sub = (nanos >> h.wrapping_sub(SUB_BUCKET_BITS)) as usize & (SUB_BUCKETS - 1);
        SUB_BUCKETS
            .wrapping_add(octave.wrapping_mul(SUB_BUCKETS))
            .wrapping_add(sub)
    }
}

/// `log2` of the width of the log-linear bucket `index`, for
/// `SUB_BUCKETS <= index < OVERFLOW_BUCKET`.
#[inline]
const fn octave_width_bits(index: usize) -> u32 {
    // index / 32 is the octave + 1 (1..=26); the octave's exponent h = octave + 10,
    // and the width is 2^(h - 5).
    let octave_plus_one = (index / SUB_BUCKETS) as u32;
    octave_plus_one
        .wrapping_add(FIRST_OCTAVE_BITS)
        .wrapping_sub(1)
        .wrapping_sub(SUB_BUCKET_BITS)
}

/// Smallest value (ns) that lands in bucket `index`. Indices `>= OVERFLOW_BUCKET`
/// are treated as the overflow bucket.
#[inline]
pub const fn bucket_lower(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        (index as u64) << LINEAR_WIDTH_BITS
    } else if index >= OVERFLOW_BUCKET {
        OVERFLOW_THRESHOLD
    } else {
        let sub = (index % SUB_BUCKETS) as u64;
        (SUB_BUCKETS as u64).wrapping_add(sub) << octave_width_bits(index)
    }
}

/// Largest value (ns, inclusive) that lands in bucket `index`; `u64::MAX` for
/// the overflow bucket.
#[inline]
pub const fn bucket_upper(index: usize) -> u64 {
    if index >= OVERFLOW_BUCKET {
        u64::MAX
    } else {
        bucket_lower(index).wrapping_add(bucket_width(index).wrapping_sub(1))
    }
}

/// Width (ns) of bucket `index`; for the overflow bucket the number of values
/// it covers minus one (`u64::MAX - 2^36`), to stay in range.
#[inline]
pub const fn bucket_width(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        1 << LINEAR_WIDTH_BITS
    } else if index >= OVERFLOW_BUCKET {
        u64::MAX - OVERFLOW_THRESHOLD
    } else {
        1 << octave_width_bits(index)
    }
}

/// Representative value of bucket `index`: `lower + width / 2`. For the
/// overflow bucket this is [`OVERFLOW_THRESHOLD`]; quantiles use the recorded
/// maximum instead.
#[inline]
pub const fn bucket_midpoint(index: usize) -> u64 {
    if index >= OVERFLOW_BUCKET {
        OVERFLOW_THRESHOLD
    } else {
        bucket_lower(index).wrapping_add(bucket_width(index) / 2)
    }
}

/// A lock-free histogram of nanosecond values with the fixed layout of this
/// module.
///
/// All operations use `Relaxed` atomics. Recording is a bucket `fetch_add`, a
/// `sum` `fetch_add` and a `fetch_min`/`fetch_max` only when the value is a
/// new minimum/maximum (checked with a plain load first).
///
/// `sum` wraps modulo `2^64` ns (about 584 years of accumulated latency); bucket
/// counts wrap modulo `2^64` (unreachable in practice). The count is not a
/// separate atomic: it is the sum of the bucket counters, so it is always
/// consistent with the buckets.
///
/// Memory: [`HISTOGRAM_HEAP_BYTES`] (6,920) heap bytes plus a 40-byte header.
///
/// # Example
///
/// ```
/// use tower_stats::histogram::AtomicHistogram;
///
/// let latencies = AtomicHistogram::new();
/// for ms in 1..=100 {
///     latencies.record(ms * 1_000_000); // nanoseconds
/// }
/// let snapshot = latencies.snapshot();
/// assert_eq!(snapshot.count(), 100);
/// let p99 = snapshot.quantile_secs(0.99).unwrap();
/// assert!((p99 - 0.099).abs() <= 0.099 / 64.0);
///
/// // Snapshots merge exactly, bucket for bucket.
/// let mut both = snapshot.clone();
/// both.merge(&snapshot);
/// assert_eq!(both.count(), 200);
/// ```
#[derive(Debug)]
pub struct AtomicHistogram {
    /// One counter per bucket, `BUCKETS` long, allocated once in `new`.
    counts: Box<[AtomicU64]>,
    /// Wrapping sum of all recorded values (ns).
    sum: AtomicU64,
    /// Smallest recorded value, `u64::MAX` when empty.
    min: AtomicU64,
    /// Largest recorded value, `0` when empty.
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl AtomicHistogram {
    /// Creates an empty histogram, allocating its [`BUCKETS`] counters once.
    pub fn new() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value in nanoseconds. Lock-free, allocation-free, never panics.
    #[inline]
    pub fn record(&self, nanos: u64) {
        self.record_in(bucket_index(nanos), nanos);
    }

    /// Records `nanos`, whose bucket `index` the caller already computed.
    #[inline]
    pub(crate) fn record_in(&self, index: usize, nanos: u64) {
        if let Some(counter) = self.counts.get(index) {
            counter.fetch_add(1, Relaxed);
        }
        self.sum.fetch_add(nanos, Relaxed);
        if nanos < self.min.load(Relaxed) {
            self.min.fetch_min(nanos, Relaxed);
        }
        if nanos > self.max.load(Relaxed) {
            self.max.fetch_max(nanos, Relaxed);
        }
    }

    /// Number of recorded values: the sum of all bucket counters (O(buckets)).
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |acc, c| acc.wrapping_add(c.load(Relaxed)))
    }

    /// Wrapping sum of all recorded values, in nanoseconds.
    pub fn sum(&self) -> u64 {
        self.sum.load(Relaxed)
    }

    /// Smallest recorded value, `None` when nothing was recorded.
    pub fn min(&self) -> Option<u64> {
        let min = self.min.load(Relaxed);
        (min <= self.max.load(Relaxed)).then_some(min)
    }

    /// Largest recorded value, `None` when nothing was recorded.
    pub fn max(&self) -> Option<u64> {
        let max = self.max.load(Relaxed);
        (self.min.load(Relaxed) <= max).then_some(max)
    }

    /// Copies the histogram into a plain, sparse [`Histogram`].
    ///
    /// Concurrent records may be partially included (e.g. in a bucket but not
    /// yet in `sum`); the copy's count is always the sum of its buckets.
    pub fn snapshot(&self) -> Histogram {
        self.to_histogram()
    }

    /// Copies the non-empty buckets into a sparse [`Histogram`].
    fn to_histogram(&self) -> Histogram {
        let buckets = self
            .counts
            .iter()
            .enumerate()
            .filter_map(|(index, c)| {
                let n = c.load(Relaxed);
                (n != 0).then(|| (u16::try_from(index).unwrap_or(u16::MAX), n))
            })
            .collect();
        Histogram::from_sorted_buckets(
            buckets,
            self.sum.load(Relaxed),
            self.min.load(Relaxed),
            self.max.load(Relaxed),
        )
    }

    /// Clears all counters. Not atomic as a whole: a record racing the reset
    /// may be partly kept (e.g. its bucket but not its sum).
    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Relaxed);
        }
        self.sum.store(0, Relaxed);
        self.min.store(u64::MAX, Relaxed);
        self.max.store(0, Relaxed);
    }

    /// Bytes used by this histogram: header plus heap counters (6,960).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>().saturating_add(std::mem::size_of_val(&*self.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: small deterministic PRNG for sample generation.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in (0, 1].
        fn unit(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.unit(), self.unit());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    const MIN_NS: f64 = 1_000.0;
    const MAX_NS: f64 = 60e9;
    const N: usize = 100_000;

    fn clamp_ns(x: f64) -> u64 {
        x.clamp(MIN_NS, MAX_NS) as u64
    }

    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn check_accuracy(name: &str, samples: Vec<u64>) {
        let h = AtomicHistogram::new();
        for &s in &samples {
            h.record(s);
        }
        let snap = h.snapshot();
        let mut sorted = samples;
        sorted.sort_unstable();
        assert_eq!(snap.count(), sorted.len() as u64);
        assert_eq!(snap.min(), sorted.first().copied());
        assert_eq!(snap.max(), sorted.last().copied());
        let mut worst = 0.0f64;
        let mut qs = vec![0.0, 0.5, 0.9, 0.99, 0.999, 1.0];
        qs.extend((1..1000).map(|i| f64::from(i) / 1000.0));
        for q in qs {
            let exact = exact_quantile(&sorted, q);
            let est = snap.quantile(q).unwrap();
            let err = (est as f64 - exact as f64).abs() / exact as f64;
            worst = worst.max(err);
            assert!(
                err <= RELATIVE_ERROR,
                "{name}: q={q} exact={exact} est={est} err={err}"
            );
        }
        eprintln!("{name}: worst relative quantile error {worst:.5}");
    }

    #[test]
    fn quantile_accuracy_uniform() {
        let mut rng = Rng(1);
        let samples = (0..N)
            .map(|_| clamp_ns(MIN_NS + rng.unit() * (MAX_NS - MIN_NS)))
            .collect();
        check_accuracy("uniform", samples);
    }

    #[test]
    fn quantile_accuracy_log_uniform() {
        let mut rng = Rng(2);
        let (lo, hi) = (MIN_NS.ln(), MAX_NS.ln());
        let samples = (0..N)
            .map(|_| clamp_ns((lo + rng.unit() * (hi - lo)).exp()))
            .collect();
        check_accuracy("log-uniform", samples);
    }

    #[test]
    fn quantile_accuracy_bimodal() {
        let mut rng = Rng(3);
        // 90 % fast (~200 µs), 10 % slow (~2 s), both log-normal.
        let samples = (0..N)
            .map(|_| {
                let (mu, sigma) = if rng.unit() < 0.9 {
                    (200e3f64.ln(), 0.3)
                } else {
                    (2e9f64.ln(), 0.5)
                };
                clamp_ns((mu + sigma * rng.normal()).exp())
            })
            .collect();
        check_accuracy("bimodal", samples);
    }

    #[test]
    fn quantile_accuracy_pareto() {
        let mut rng = Rng(4);
        // Pareto, x_m = 50 µs, alpha = 1.1 (heavy tail, clamped at 60 s).
        let samples = (0..N)
            .map(|_| clamp_ns(50e3 / rng.unit().powf(1.0 / 1.1)))
            .collect();
        check_accuracy("pareto", samples);
    }

    #[test]
    fn quantile_accuracy_log_normal() {
        let mut rng = Rng(5);
        // Log-normal, median 1 ms, sigma 2 (spans µs .. tens of seconds).
        let samples = (0..N)
            .map(|_| clamp_ns((1e6f64.ln() + 2.0 * rng.normal()).exp()))
            .collect();
        check_accuracy("log-normal", samples);
    }

    #[test]
    fn merge_equals_concatenation() {
        let mut rng = Rng(6);
        let a: Vec<u64> = (0..50_000).map(|_| rng.next_u64() >> 27).collect();
        let b: Vec<u64> = (0..30_000).map(|_| rng.next_u64() >> 30).collect();
        let (ha, hb, hab) = (
            AtomicHistogram::new(),
            AtomicHistogram::new(),
            AtomicHistogram::new(),
        );
        a.iter().for_each(|&v| ha.record(v));
        b.iter().for_each(|&v| hb.record(v));
        a.iter().chain(&b).for_each(|&v| hab.record(v));
        let expected = hab.snapshot();

        let mut merged = ha.snapshot();
        merged.merge(&hb.snapshot());
        assert_eq!(merged, expected);
        merged.merge(&Histogram::new());
        assert_eq!(
            merged, expected,
            "merging an empty histogram changes nothing"
        );

        // A plain histogram built by `record` matches too.
        let mut plain = Histogram::new();
        a.iter().chain(&b).for_each(|&v| plain.record(v));
        assert_eq!(plain, expected);
    }

    #[test]
    fn layout_is_contiguous_and_within_bound() {
        assert_eq!(BUCKETS, 865);
        assert_eq!(bucket_lower(0), 0);
        for i in 0..BUCKETS {
            let (lo, hi) = (bucket_lower(i), bucket_upper(i));
            assert!(lo <= hi);
            assert_eq!(bucket_index(lo), i, "lower of {i}");
            assert_eq!(bucket_index(hi), i, "upper of {i}");
            if i + 1 < BUCKETS {
                assert_eq!(hi + 1, bucket_lower(i + 1), "gap after {i}");
            }
            if (SUB_BUCKETS..OVERFLOW_BUCKET).contains(&i) {
                // width <= lower / 32 => midpoint within 1/64 of any value.
                assert!(bucket_width(i) * 32 <= lo, "bucket {i} too wide");
                let mid = bucket_midpoint(i) as f64;
                assert!((mid - lo as f64) / lo as f64 <= RELATIVE_ERROR);
            }
        }
        assert_eq!(bucket_upper(OVERFLOW_BUCKET), u64::MAX);
        // Out-of-range indices do not panic.
        assert_eq!(bucket_lower(usize::MAX), OVERFLOW_THRESHOLD);
        assert_eq!(bucket_upper(usize::MAX), u64::MAX);
    }

    #[test]
    fn boundary_values() {
        let mut values = vec![
            0,
            1,
            31,
            32,
            999,
            1000,
            1023,
            1024,
            1025,
            2047,
            2048,
            u64::MAX,
        ];
        for k in 0..64 {
            values.push(1u64 << k);
            values.push((1u64 << k) - 1);
            values.push((1u64 << k) + 1);
        }
        values.sort_unstable();
        let mut prev = 0;
        for &v in &values {
            let i = bucket_index(v);
            assert!(i < BUCKETS);
            assert!(i >= prev, "index not monotonic at {v}");
            prev = i;
            assert!(
                bucket_lower(i) <= v && v <= bucket_upper(i),
                "{v} not in bucket {i}"
            );
        }
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(1), 0);
        assert_eq!(bucket_index(1023), 31);
        assert_eq!(bucket_index(1024), 32);
        assert_eq!(bucket_index(2048), 64);
        assert_eq!(bucket_index(OVERFLOW_THRESHOLD - 1), OVERFLOW_BUCKET - 1);
        assert_eq!(bucket_index(OVERFLOW_THRESHOLD), OVERFLOW_BUCKET);
        assert_eq!(bucket_index(u64::MAX), OVERFLOW_BUCKET);

        let h = AtomicHistogram::new();
        for &v in &values {
            h.record(v);
        }
        h.record(u64::MAX); // sum wraps, no panic
        let s = h.snapshot();
        assert_eq!(s.count(), values.len() as u64 + 1);
        assert_eq!(s.min(), Some(0));
        assert_eq!(s.max(), Some(u64::MAX));
        assert_eq!(s.quantile(1.0), Some(u64::MAX));
        assert_eq!(s.quantile(0.0), Some(16));
        assert!(s.mean_secs().is_some());
    }

    #[test]
    fn single_value_and_edge_quantiles() {
        let empty = Histogram::new();
        assert_eq!(empty.quantile(0.5), None);
        assert_eq!(empty.min(), None);
        assert_eq!(empty.max(), None);
        assert_eq!(empty.mean_secs(), None);

        let h = AtomicHistogram::new();
        assert_eq!((h.min(), h.max(), h.count()), (None, None, 0));
        h.record(123_456_789);
        let s = h.snapshot();
        for q in [f64::NEG_INFINITY, -1.0, 0.0, 0.5, 1.0, 2.0, f64::INFINITY] {
            assert_eq!(s.quantile(q), Some(123_456_789), "q={q}");
        }
        assert_eq!(s.quantile(f64::NAN), None);
        assert_eq!(s.quantile_secs(0.5), Some(0.123456789));
        assert_eq!(s.buckets().count(), 1);
        h.reset();
        assert_eq!(h.snapshot(), Histogram::new());
        assert_eq!(h.memory_bytes(), 6_960);
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 200_000;
        let h = AtomicHistogram::new();
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let h = &h;
                scope.spawn(move || {
                    for i in 0..PER_THREAD {
                        h.record(1_000 + t * 1_000_003 + i * 7);
                    }
                });
            }
        });
        let expected_sum: u64 = (0..THREADS)
            .flat_map(|t| (0..PER_THREAD).map(move |i| 1_000 + t * 1_000_003 + i * 7))
            .sum();
        let s = h.snapshot();
        assert_eq!(s.count(), THREADS * PER_THREAD);
        assert_eq!(h.count(), THREADS * PER_THREAD);
        assert_eq!(s.sum_nanos(), expected_sum);
        assert_eq!(s.min(), Some(1_000));
        assert_eq!(
            s.max(),
            Some(1_000 + (THREADS - 1) * 1_000_003 + (PER_THREAD - 1) * 7)
        );
    }
}
