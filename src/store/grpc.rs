//! Responses of gRPC requests by `grpc-status` code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The names of the gRPC status codes 0 to 16, as the gRPC specification spells them.
pub(crate) const GRPC_CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The key under which codes outside the specification's table are counted.
pub(crate) const OTHER_GRPC_CODE: &str = "OTHER";

/// One counter per gRPC status code, and one for codes outside the table: a fixed size
/// whatever the responses say.
#[derive(Debug, Default)]
pub(crate) struct GrpcStatusCounts {
    codes: [AtomicU64; 17],
    other: AtomicU64,
}

impl GrpcStatusCounts {
    /// Counts one response with status `code`.
    #[inline]
    pub(crate) fn count(&self, code: u32) {
        let counter = usize::try_from(code)
            .ok()
            .and_then(|i| self.codes.get(i))
            .unwrap_or(&self.other);
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The codes counted so far, by name (`"OK"`, `"NOT_FOUND"`, … and `"OTHER"`); codes
    /// never seen are left out.
    pub(crate) fn collect(&self) -> BTreeMap<String, u64> {
        GRPC_CODE_NAMES
            .iter()
            .zip(&self.codes)
            .chain(std::iter::once((&OTHER_GRPC_CODE, &self.other)))
            .filter_map(|(name, n)| {
                let n = n.load(Ordering::Relaxed);
                (n > 0).then(|| ((*name).to_owned(), n))
            })
            .collect()
    }

    /// Zeroes every counter.
    pub(crate) fn reset(&self) {
        for counter in self.codes.iter().chain(std::iter::once(&self.other)) {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_counted_by_name_and_unknown_codes_share_one_counter() {
        let counts = GrpcStatusCounts::default();
        for code in [0, 0, 5, 16, 17, 4_000_000_000] {
            counts.count(code);
        }
        let collected = counts.collect();
        let expected: BTreeMap<String, u64> = [
            ("OK", 2),
            ("NOT_FOUND", 1),
            ("UNAUTHENTICATED", 1),
            ("OTHER", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(collected, expected);
        counts.reset();
        assert!(counts.collect().is_empty());
    }
}
