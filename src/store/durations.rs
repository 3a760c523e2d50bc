//! The Prometheus duration histogram of one URI set: exact counts per configured `le` bound,
//! for each status code and error type the set has ended requests with, and an exemplar per
//! bucket.
//!
//! A series is a status code (or none, for a request that ended before its response) with an
//! error type (none, `aborted`, `error` or `panicked`). A URI set holds at most
//! [`CODE_SERIES`] (8) of them, claimed by the first requests that need them and kept across
//! resets; past that, requests are counted in one of four fallback series whose status code
//! is [`OTHER_CODE`] (`_OTHER`), one per error type. So a set has at most 12 series and its
//! memory is fixed: `12 × (bounds + 1)` counters and exemplar slots.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::time::Instant;

use super::exemplars::{Exemplars, Offer, Read};
use super::request::Outcome;

/// Series with their own status code per URI set.
pub(crate) const CODE_SERIES: usize = 8;
/// The status code label of the fallback series.
pub(crate) const OTHER_CODE: &str = "_OTHER";
/// Error types, as the `error_type` label says them (empty: none).
pub(crate) const ERROR_TYPES: [&str; 4] = ["", "aborted", "error", "panicked"];
const SERIES: usize = CODE_SERIES + ERROR_TYPES.len();

/// The error type of a request that ended with `outcome`: an index in [`ERROR_TYPES`].
#[inline]
pub(crate) fn error_type(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Aborted => 1,
        Outcome::Error => 2,
        Outcome::Panicked => 3,
        Outcome::InFlight | Outcome::Completed => 0,
    }
}

/// A series' key: `(code << 2 | error type) + 1`, 0 for a free slot; code 0 is no status.
#[inline]
fn key(code: Option<u16>, error: usize) -> u32 {
    (u32::from(code.unwrap_or(0)) << 2 | (error as u32 & 3)) + 1
}

/// One series as read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesData {
    /// The status code as a label: `404`, [`OTHER_CODE`], or empty for none.
    pub(crate) status_code: String,
    /// An entry of [`ERROR_TYPES`].
    pub(crate) error_type: &'static str,
    /// Counts per bucket, not cumulative; the last is `+Inf`.
    pub(crate) counts: Vec<u64>,
    pub(crate) sum_nanos: u64,
    /// `(bucket, exemplar)` of the buckets that have one.
    pub(crate) exemplars: Vec<(usize, Read)>,
}

/// The series' keys of one URI set, claimed by the first requests that need them; shared by
/// the set's write shards, so that series `i` is the same in each.
#[derive(Debug, Default)]
pub(crate) struct SeriesKeys([AtomicU32; CODE_SERIES]);

/// The duration buckets of one URI set (or of one write shard's part of it), every series in
/// one allocation made at creation.
#[derive(Debug)]
pub(crate) struct StatusDurations {
    bounds: Arc<[u64]>,
    keys: Arc<SeriesKeys>,
    /// `SERIES × (bounds + 1)` counters, series after series.
    counts: Box<[AtomicU64]>,
    sums: [AtomicU64; SERIES],
    /// One slot per counter.
    exemplars: Exemplars,
    base: Instant,
}

impl StatusDurations {
    #[cfg(test)]
    pub(crate) fn new(bounds: Arc<[u64]>, base: Instant) -> Self {
        Self::with_series(bounds, base, Arc::default())
    }

    /// Buckets whose series are those of `keys` (shared with the set's other parts).
    pub(crate) fn with_series(bounds: Arc<[u64]>, base: Instant, keys: Arc<SeriesKeys>) -> Self {
        let len = SERIES * (bounds.len() + 1);
        Self {
            bounds,
            keys,
            counts: (0..len).map(|_| AtomicU64::new(0)).collect(),
            sums: Default::default(),
            exemplars: Exemplars::new(len),
            base,
        }
    }

    /// The series of `code` and `error`: its own slot, claimed if free, or the fallback.
    /// A key is claimed in the first free slot, so two requests never claim it twice.
    #[inline]
    fn series(&self, code: Option<u16>, error: usize) -> usize {
        let key = key(code, error);
        for (i, slot) in self.keys.0.iter().enumerate() {
            match slot.load(Ordering::Relaxed) {
                k if k == key => return i,
                0 => match slot.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return i,
                    Err(k) if k == key => return i,
                    Err(_) => {}
                },
                _ => {}
            }
        }
        CODE_SERIES + (error & 3)
    }

    /// Counts a finished request of `nanos` ending at `end`; `exemplar` is its id and trace
    /// id (0 for none) when it may be shown as an exemplar.
    #[inline]
    pub(crate) fn record(
        &self,
        nanos: u64,
        code: Option<u16>,
        error: usize,
        end: Instant,
        exemplar: Option<(u64, u128)>,
    ) {
        // The first bound at or above the value: a scan from the smallest, since most
        // requests land in the first few buckets.
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(self.bounds.len());
        let series = self.series(code, error);
        let index = series * (self.bounds.len() + 1) + bucket;
        if let Some(counter) = self.counts.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(sum) = self.sums.get(series) {
            sum.fetch_add(nanos, Ordering::Relaxed);
        }
        if let Some((id, trace_id)) = exemplar {
            self.exemplars.offer(
                index,
                Offer {
                    id,
                    trace_id,
                    nanos,
                },
                || crate::clock::duration_nanos(end.saturating_duration_since(self.base)),
            );
        }
    }

    /// Zeroes the counts and empties the exemplars; claimed series keep their codes.
    pub(crate) fn zero(&self) {
        for c in self.counts.iter().chain(&self.sums) {
            c.store(0, Ordering::Relaxed);
        }
        self.exemplars.clear();
    }

    /// Whether nothing is counted.
    pub(crate) fn is_empty(&self) -> bool {
        self.counts.iter().all(|c| c.load(Ordering::Relaxed) == 0)
    }

    /// The series that have counted requests: claimed ones in the order claimed, then the
    /// fallbacks.
    pub(crate) fn series_data(&self) -> Vec<SeriesData> {
        let per_series = self.bounds.len() + 1;
        (0..SERIES)
            .filter_map(|series| {
                let range = series * per_series..(series + 1) * per_series;
                let counts: Vec<u64> = self
                    .counts
                    .get(range.clone())?
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .collect();
                if counts.iter().all(|&n| n == 0) {
                    return None;
                }
                let (status_code, error) = match self.keys.0.get(series) {
                    Some(slot) => {
                        let key = slot.load(Ordering::Relaxed).checked_sub(1)?;
                        let code = key >> 2;
                        let code = if code == 0 {
                            String::new()
                        } else {
                            code.to_string()
                        };
                        (code, (key & 3) as usize)
                    }
                    None => (OTHER_CODE.to_owned(), series - CODE_SERIES),
                };
                let exemplars = range
                    .enumerate()
                    .filter_map(|(bucket, index)| Some((bucket, self.exemplars.read(index)?)))
                    .collect();
                Some(SeriesData {
                    status_code,
                    error_type: ERROR_TYPES[error & 3],
                    counts,
                    sum_nanos: self
                        .sums
                        .get(series)
                        .map_or(0, |s| s.load(Ordering::Relaxed)),
                    exemplars,
                })
            })
            .collect()
    }
}

/// The series of several parts of one URI set (sharing their keys) added up: counts and sums
/// add, and each bucket's exemplar is the latest of the parts'.
pub(crate) fn merged_series<'a>(
    parts: impl IntoIterator<Item = &'a StatusDurations>,
) -> Vec<SeriesData> {
    let mut merged: Vec<SeriesData> = Vec::new();
    for part in parts {
        for series in part.series_data() {
            let same = merged
                .iter_mut()
                .find(|m| m.status_code == series.status_code && m.error_type == series.error_type);
            let Some(into) = same else {
                merged.push(series);
                continue;
            };
            for (n, add) in into.counts.iter_mut().zip(&series.counts) {
                *n = n.wrapping_add(*add);
            }
            into.sum_nanos = into.sum_nanos.wrapping_add(series.sum_nanos);
            for (bucket, read) in series.exemplars {
                match into.exemplars.iter_mut().find(|(b, _)| *b == bucket) {
                    Some((_, kept)) if kept.at < read.at => *kept = read,
                    Some(_) => {}
                    None => into.exemplars.push((bucket, read)),
                }
            }
            into.exemplars.sort_by_key(|(bucket, _)| *bucket);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_sharing_their_series_add_up_with_the_latest_exemplar() {
        let base = Instant::now();
        let keys = Arc::<SeriesKeys>::default();
        let bounds: Arc<[u64]> = Arc::from(vec![1_000]);
        let a = StatusDurations::with_series(Arc::clone(&bounds), base, Arc::clone(&keys));
        let b = StatusDurations::with_series(bounds, base, keys);
        a.record(500, Some(200), 0, base, Some((1, 0)));
        b.record(700, Some(404), 0, base, None);
        b.record(
            600,
            Some(200),
            0,
            base + std::time::Duration::from_secs(1),
            Some((1_025, 7)),
        );
        b.record(5_000, Some(200), 0, base, None);
        assert_eq!(
            b.series_data()[0].status_code,
            "200",
            "a series claimed in one part is the same series in the other"
        );
        let merged = merged_series([&a, &b]);
        assert_eq!(merged.len(), 2);
        let ok = merged.iter().find(|s| s.status_code == "200").unwrap();
        assert_eq!(ok.counts, vec![2, 1]);
        assert_eq!(ok.sum_nanos, 500 + 600 + 5_000);
        assert_eq!(ok.exemplars.len(), 1);
        assert_eq!(ok.exemplars[0].1.id, 1_025, "the later of the two");
        assert_eq!(ok.exemplars[0].1.trace_id, 7);
        let missing = merged.iter().find(|s| s.status_code == "404").unwrap();
        assert_eq!(missing.counts, vec![1, 0]);
    }

    #[test]
    fn codes_and_error_types_get_series_until_the_fallback() {
        let base = Instant::now();
        let d = StatusDurations::new(Arc::from(vec![1_000, 2_000]), base);
        d.record(500, Some(200), 0, base, Some((1, 0)));
        d.record(1_500, Some(200), 0, base, None);
        d.record(5_000, None, error_type(Outcome::Aborted), base, None);
        d.record(700, Some(500), error_type(Outcome::Panicked), base, None);
        // Five more codes fill the eight slots; the ninth and tenth go to the fallback.
        for code in [201, 204, 301, 302, 304, 404, 410] {
            d.record(100, Some(code), 0, base, None);
        }
        d.record(100, Some(418), error_type(Outcome::Error), base, None);
        let series = d.series_data();
        let labels: Vec<(&str, &str)> = series
            .iter()
            .map(|s| (s.status_code.as_str(), s.error_type))
            .collect();
        assert_eq!(
            labels,
            [
                ("200", ""),
                ("", "aborted"),
                ("500", "panicked"),
                ("201", ""),
                ("204", ""),
                ("301", ""),
                ("302", ""),
                ("304", ""),
                ("_OTHER", ""),
                ("_OTHER", "error"),
            ]
        );
        assert_eq!(series[0].counts, [1, 1, 0]);
        assert_eq!(series[0].sum_nanos, 2_000);
        assert_eq!(series[1].counts, [0, 0, 1]);
        assert_eq!(series[8].counts, [2, 0, 0], "404 and 410");
        assert_eq!(series[0].exemplars.len(), 1);
        assert_eq!(series[0].exemplars[0].0, 0, "in the bucket of 500 ns");
        assert_eq!(series[0].exemplars[0].1.id, 1);

        d.zero();
        assert!(d.is_empty());
        assert!(d.series_data().is_empty());
        // Claimed codes stay in their slots.
        d.record(100, Some(304), 0, base, None);
        assert_eq!(d.series_data()[0].status_code, "304");
    }

    #[test]
    fn concurrent_claims_never_give_a_code_two_series() {
        let d = Arc::new(StatusDurations::new(Arc::from(vec![1_000]), Instant::now()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let d = Arc::clone(&d);
                std::thread::spawn(move || {
                    for i in 0..1_000u16 {
                        d.record(1, Some(200 + (i + t) % 6), 0, Instant::now(), None);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let series = d.series_data();
        assert_eq!(series.len(), 6);
        assert_eq!(series.iter().map(|s| s.counts[0]).sum::<u64>(), 4_000);
    }
}
