//! The store's clock: monotonic instants mapped to Unix time.

use std::time::Duration;

use tokio::time::Instant;

/// Maps a monotonic instant to Unix epoch seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) base: Instant,
    /// Unix time of `base` in seconds.
    pub(crate) base_epoch: f64,
    /// Unix time of `base` in nanoseconds.
    pub(crate) base_epoch_nanos: u64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            base: Instant::now(),
            base_epoch: since_epoch.as_secs_f64(),
            base_epoch_nanos: duration_nanos(since_epoch),
        }
    }

    /// A clock whose `base` is Unix time `epoch_nanos` (tests line stores up on one clock).
    #[cfg(test)]
    pub(crate) fn at(base: Instant, epoch_nanos: u64) -> Self {
        Self {
            base,
            base_epoch: nanos_to_secs(epoch_nanos),
            base_epoch_nanos: epoch_nanos,
        }
    }

    pub(crate) fn epoch_of(&self, instant: Instant) -> f64 {
        self.base_epoch + instant.saturating_duration_since(self.base).as_secs_f64()
    }
}

pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds as seconds.
pub(crate) fn nanos_to_secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}
