//! The sparse histogram the read model holds: serializable and mergeable.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::clock::nanos_to_secs;

use super::{
    bucket_index, bucket_midpoint, BUCKETS, FIRST_OCTAVE_BITS, OVERFLOW_BUCKET, RANGE_BITS,
    SUB_BUCKET_BITS,
};

/// The bucket layout of every [`Histogram`], carried once per snapshot so that a reader can tell whether
/// two histograms (of two instances, or of two versions) can be merged bucket for bucket.
///
/// See the [`histogram`](crate::histogram) module for what the numbers mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistogramLayout {
    /// Bits of linear sub-buckets per octave (5: 32 sub-buckets).
    pub sub_bucket_bits: u32,
    /// `log2` of the first octave in nanoseconds (10: 1,024 ns).
    pub first_octave_bits: u32,
    /// `log2` of the top of the tracked range in nanoseconds (36: about 68.7 s).
    pub range_bits: u32,
}

impl HistogramLayout {
    /// The layout of this version of the crate.
    pub const CURRENT: Self = Self {
        sub_bucket_bits: SUB_BUCKET_BITS,
        first_octave_bits: FIRST_OCTAVE_BITS,
        range_bits: RANGE_BITS,
    };
}

impl Default for HistogramLayout {
    fn default() -> Self {
        Self::CURRENT
    }
}

/// A latency histogram in nanoseconds: the non-empty buckets of the fixed log-linear layout
/// of the [`histogram`](crate::histogram) module, with the count, sum, minimum and maximum.
///
/// Merging adds bucket for bucket, so the merge of two histograms is exactly the histogram of
/// both sets of samples, and quantiles of a merge keep the layout's error bound
/// ([`RELATIVE_ERROR`](crate::histogram::RELATIVE_ERROR), 1/64).
///
/// Serializes as `{"count", "sum_nanos", "min_nanos", "max_nanos", "buckets": [[index,
/// count], ...]}` (the layout is given once per document: [`HistogramLayout`]);
/// deserializing checks the indices, their order and that the count is the sum of the
/// buckets.
///
/// # Example
///
/// ```
/// use tower_stats::Histogram;
///
/// let mut a = Histogram::new();
/// let mut b = Histogram::new();
/// for ms in 1..=50 {
///     a.record(ms * 1_000_000);
///     b.record((ms + 50) * 1_000_000);
/// }
/// a.merge(&b);
/// assert_eq!(a.count(), 100);
/// let p99 = a.quantile_secs(0.99).unwrap();
/// assert!((p99 - 0.099).abs() <= 0.099 / 64.0);
///
/// let json = serde_json::to_string(&a).unwrap();
/// let back: Histogram = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, a);
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Histogram {
    /// Non-empty buckets by ascending index.
    buckets: Vec<(u16, u64)>,
    count: u64,
    sum: u64,
    /// Smallest value; meaningless when `count` is 0.
    min: u64,
    /// Largest value; meaningless when `count` is 0.
    max: u64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("sum_nanos", &self.sum)
            .field("min_nanos", &self.min())
            .field("max_nanos", &self.max())
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

impl Histogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a histogram from `(bucket index, count)` pairs in ascending index order with
    /// non-zero counts, and the sum, minimum and maximum of the values (nanoseconds).
    pub(crate) fn from_sorted_buckets(
        buckets: Vec<(u16, u64)>,
        sum: u64,
        min: u64,
        max: u64,
    ) -> Self {
        let count = buckets.iter().fold(0u64, |n, (_, c)| n.wrapping_add(*c));
        if count == 0 {
            return Self::default();
        }
        Self {
            buckets,
            count,
            sum,
            min,
            max,
        }
    }

    /// Records one value in nanoseconds.
    pub fn record(&mut self, nanos: u64) {
        let index = u16::try_from(bucket_index(nanos)).unwrap_or(u16::MAX);
        match self.buckets.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => {
                if let Some((_, c)) = self.buckets.get_mut(at) {
                    *c = c.wrapping_add(1);
                }
            }
            Err(at) => self.buckets.insert(at, (index, 1)),
        }
        if self.count == 0 {
            self.min = nanos;
            self.max = nanos;
        } else {
            self.min = self.min.min(nanos);
            self.max = self.max.max(nanos);
        }
        self.count = self.count.wrapping_add(1);
        self.sum = self.sum.wrapping_add(nanos);
    }

    /// Number of values.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// `true` when no value was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sum of the values in nanoseconds (wrapping at `u64::MAX`, about 584 years).
    #[must_use]
    pub fn sum_nanos(&self) -> u64 {
        self.sum
    }

    /// Sum of the values in seconds.
    #[must_use]
    pub fn sum_secs(&self) -> f64 {
        nanos_to_secs(self.sum)
    }

    /// Smallest value in nanoseconds, `None` when empty.
    #[must_use]
    pub fn min(&self) -> Option<u64> {
        (self.count != 0).then_some(self.min)
    }

    /// Largest value in nanoseconds, `None` when empty.
    #[must_use]
    pub fn max(&self) -> Option<u64> {
        (self.count != 0).then_some(self.max)
    }

    /// Mean in seconds, `None` when empty.
    #[must_use]
    pub fn mean_secs(&self) -> Option<f64> {
        (self.count != 0).then(|| nanos_to_secs(self.sum) / self.count as f64)
    }

    /// Non-empty buckets as `(index, count)`, by ascending index (see
    /// [`bucket_lower`](crate::histogram::bucket_lower) and
    /// [`bucket_upper`](crate::histogram::bucket_upper) for their ranges).
    pub fn buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.buckets.iter().map(|(i, c)| (usize::from(*i), *c))
    }

    /// Quantile `q` (`0.0..=1.0`, clamped) in nanoseconds; `None` when empty or `q` is NaN.
    ///
    /// Nearest rank: the midpoint of the bucket holding the `max(1, ceil(q * count))`-th
    /// smallest value, clamped to the minimum and maximum; the maximum itself when that
    /// value is in the overflow bucket. Within 1/64 of the exact value from 1 µs to 68 s.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        let mut found = OVERFLOW_BUCKET;
        for (index, count) in self.buckets() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                found = index;
                break;
            }
        }
        let value = if found >= OVERFLOW_BUCKET {
            self.max
        } else {
            bucket_midpoint(found)
        };
        Some(value.max(self.min).min(self.max))
    }

    /// [`quantile`](Self::quantile) in seconds.
    #[must_use]
    pub fn quantile_secs(&self, q: f64) -> Option<f64> {
        self.quantile(q).map(nanos_to_secs)
    }

    /// Adds every value of `other`: the result is exactly the histogram of both.
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.clone_from(other);
            return;
        }
        let mut merged = Vec::with_capacity(self.buckets.len().max(other.buckets.len()));
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(ia, ca)), Some(&&(ib, cb))) => {
                    if ia == ib {
                        merged.push((ia, ca.wrapping_add(cb)));
                        a.next();
                        b.next();
                    } else if ia < ib {
                        merged.push((ia, ca));
                        a.next();
                    } else {
                        merged.push((ib, cb));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    merged.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    merged.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = merged;
        self.count = self.count.wrapping_add(other.count);
        self.sum = self.sum.wrapping_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The wire form of a [`Histogram`].
#[derive(Serialize, Deserialize)]
struct HistogramWire {
    count: u64,
    sum_nanos: u64,
    min_nanos: Option<u64>,
    max_nanos: Option<u64>,
    buckets: Vec<(u64, u64)>,
}

impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        HistogramWire {
            count: self.count,
            sum_nanos: self.sum,
            min_nanos: self.min(),
            max_nanos: self.max(),
            buckets: self
                .buckets
                .iter()
                .map(|(i, c)| (u64::from(*i), *c))
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = HistogramWire::deserialize(deserializer)?;
        if wire.buckets.len() > BUCKETS {
            return Err(de::Error::custom(
                "more histogram buckets than the layout has",
            ));
        }
        let mut buckets = Vec::with_capacity(wire.buckets.len());
        let mut count = 0u64;
        for (index, n) in wire.buckets {
            let ok_index = usize::try_from(index).is_ok_and(|i| i < BUCKETS);
            let ascending = buckets
                .last()
                .is_none_or(|(last, _)| u64::from(*last) < index);
            if !ok_index || !ascending || n == 0 {
                return Err(de::Error::custom(format_args!(
                    "histogram bucket {index} is out of range, out of order or empty"
                )));
            }
            count = count
                .checked_add(n)
                .ok_or_else(|| de::Error::custom("histogram count overflows"))?;
            buckets.push((u16::try_from(index).unwrap_or(u16::MAX), n));
        }
        if count != wire.count {
            return Err(de::Error::custom(format_args!(
                "histogram count {} is not the sum of its buckets ({count})",
                wire.count
            )));
        }
        let (min, max) = match (wire.min_nanos, wire.max_nanos) {
            (Some(min), Some(max)) if count > 0 && min <= max => (min, max),
            (None, None) if count == 0 => (0, 0),
            _ => {
                return Err(de::Error::custom(
                    "histogram minimum and maximum do not match its count",
                ))
            }
        };
        Ok(Self::from_sorted_buckets(buckets, wire.sum_nanos, min, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_the_histogram_of_both() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut both = Histogram::new();
        for v in [0u64, 5, 1_000, 70_000, 3_000_000, 1 << 40] {
            a.record(v);
            both.record(v);
        }
        for v in [7u64, 1_000, 9_999_999] {
            b.record(v);
            both.record(v);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, both);
        let mut other_way = b;
        other_way.merge(&a);
        assert_eq!(other_way, both);
        assert_eq!(merged.max(), Some(1 << 40));
        assert_eq!(merged.quantile(1.0), Some(1 << 40));
    }

    #[test]
    fn bad_wire_data_is_refused() {
        let good = r#"{"count":2,"sum_nanos":3,"min_nanos":1,"max_nanos":2,"buckets":[[0,2]]}"#;
        assert_eq!(serde_json::from_str::<Histogram>(good).unwrap().count(), 2);
        for bad in [
            good.replace("[[0,2]]", "[[865,2]]"),
            good.replace("[[0,2]]", "[[3,1],[2,1]]"),
            good.replace("[[0,2]]", "[[0,1]]"),
            good.replace("[[0,2]]", "[[0,2],[1,0]]"),
            good.replace("\"min_nanos\":1", "\"min_nanos\":9"),
        ] {
            assert!(serde_json::from_str::<Histogram>(&bad).is_err(), "{bad}");
        }
    }
}
