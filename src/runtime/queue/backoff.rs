//! Per-key exponential backoff, as client-go's `ItemExponentialFailureRateLimiter`.

use std::time::Duration;

/// How long a key waits before its next try after consecutive failures: `base * 2^failures`,
/// capped at `cap`.
///
/// The failure count itself lives with the key's state in the queue; this type is the pure
/// policy, so it can be table-tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Upper bound of any delay.
    pub cap: Duration,
}

impl Default for Backoff {
    /// client-go's controller default: 5 ms doubling to 1000 s.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(5),
            cap: Duration::from_secs(1000),
        }
    }
}

impl Backoff {
    /// The delay for a key that has already failed `previous_failures` times in a row before
    /// this failure (0 for the first failure, which waits `base`).
    pub fn delay(&self, previous_failures: u32) -> Duration {
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        // 2^64 times any non-zero base is past every cap a Duration can hold.
        if previous_failures >= 64 {
            return self.cap;
        }
        let nanos = self
            .base
            .as_nanos()
            .saturating_mul(1u128 << previous_failures);
        if nanos >= self.cap.as_nanos() {
            return self.cap;
        }
        // Below the cap, which is a Duration, so the nanoseconds fit a u64 unless the cap is
        // centuries long; saturate rather than fail in that case.
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn delay_doubles_from_base_and_stops_at_cap() {
        let backoff = Backoff::default();
        let cases = [
            (0, Duration::from_millis(5)),
            (1, Duration::from_millis(10)),
            (2, Duration::from_millis(20)),
            (10, Duration::from_millis(5 * 1024)),
            // 5 ms * 2^17 = 655.36 s, the last step below the cap.
            (17, Duration::from_millis(5 << 17)),
            (18, Duration::from_secs(1000)),
            (63, Duration::from_secs(1000)),
            (64, Duration::from_secs(1000)),
            (u32::MAX, Duration::from_secs(1000)),
        ];
        for (failures, want) in cases {
            assert_eq!(backoff.delay(failures), want, "after {failures} failures");
        }
    }

    #[test]
    fn zero_base_never_waits() {
        let backoff = Backoff {
            base: Duration::ZERO,
            cap: Duration::from_secs(1),
        };
        assert_eq!(backoff.delay(0), Duration::ZERO);
        assert_eq!(backoff.delay(40), Duration::ZERO);
    }
}
