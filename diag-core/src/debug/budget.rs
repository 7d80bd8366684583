//! How many debug requests diag admits: a token bucket, so that a leaked credential or
//! an over-eager operator cannot turn every request into an expensive one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A lock-free token bucket: `per_second` tokens refill continuously up to `burst`.
///
/// Kept as one atomic "theoretical arrival time" (the GCRA form of a token bucket):
/// each grant moves it one emission interval later, and a grant is refused when that
/// would put it more than `burst` intervals ahead of now. One compare-and-swap per
/// activation; no lock, no background refill.
///
/// ```
/// let budget = diag_core::debug::DebugBudget::new(1.0, 2);
/// assert!(budget.try_acquire());
/// assert!(budget.try_acquire());
/// assert!(!budget.try_acquire()); // burst spent; one more per second from now on
/// assert_eq!(budget.exhausted(), 1);
/// ```
#[derive(Debug)]
pub struct DebugBudget {
    origin: Instant,
    interval_ns: u64,
    tolerance_ns: u64,
    /// Nanoseconds since `origin` at which the bucket would be full again.
    tat: AtomicU64,
    exhausted: AtomicU64,
    per_second: f64,
    burst: u32,
}

impl DebugBudget {
    /// A full bucket. `burst` is clamped to at least 1 and `per_second` to at least one
    /// token per `146 / burst` years, so that a whole burst's time still fits the clock
    /// (the builder refuses non-positive values before this).
    ///
    /// ```
    /// use diag_core::debug::DebugBudget;
    /// let budget = DebugBudget::new(0.5, 0);
    /// assert_eq!(budget.burst(), 1, "at least one");
    /// assert!(budget.try_acquire());
    /// assert!(!budget.try_acquire(), "the next one in two seconds");
    /// ```
    pub fn new(per_second: f64, burst: u32) -> Self {
        let burst = burst.max(1);
        // A burst's tolerance, and the theoretical arrival time beyond it, must not
        // saturate: a saturated tolerance would admit everything.
        let longest = u64::MAX / 4 / u64::from(burst);
        let interval_ns = if per_second.is_finite() && per_second > 0.0 {
            (1e9 / per_second).clamp(1.0, longest as f64) as u64
        } else {
            longest
        };
        DebugBudget {
            origin: Instant::now(),
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(u64::from(burst)),
            tat: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            per_second,
            burst,
        }
    }

    /// Takes one token, or returns `false` (and counts it) when none is left.
    ///
    /// ```
    /// use diag_core::debug::DebugBudget;
    /// let budget = DebugBudget::new(5.0, 3);
    /// let granted = (0..10).filter(|_| budget.try_acquire()).count();
    /// assert_eq!(granted, 3, "the burst, then 5 a second");
    /// assert_eq!(budget.exhausted(), 7);
    /// ```
    pub fn try_acquire(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.try_acquire_at(now)
    }

    fn try_acquire_at(&self, now: u64) -> bool {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(self.interval_ns);
            if next - now > self.tolerance_ns {
                self.exhausted.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(current) => tat = current,
            }
        }
    }

    /// How many activations were refused for want of budget.
    ///
    /// ```
    /// use diag_core::debug::DebugBudget;
    /// let budget = DebugBudget::new(1.0, 1);
    /// assert_eq!(budget.exhausted(), 0);
    /// budget.try_acquire();
    /// budget.try_acquire();
    /// assert_eq!(budget.exhausted(), 1);
    /// ```
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// The configured refill rate, per second.
    ///
    /// ```
    /// // One debug request every five seconds.
    /// let diag = diag_core::Diag::builder().debug_budget(0.2, 5).build().unwrap();
    /// assert_eq!(diag.debug_mode().budget().per_second(), 0.2);
    /// assert_eq!(diag_core::debug::DebugBudget::new(5.0, 20).per_second(), 5.0);
    /// ```
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// The configured burst.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().debug_budget(0.2, 5).build().unwrap();
    /// assert_eq!(diag.debug_mode().budget().burst(), 5);
    /// assert_eq!(diag_core::Diag::builder().build().unwrap().debug_mode().budget().burst(), 20);
    /// ```
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn exactly_burst_under_concurrent_flood() {
        // One token per ~17 minutes: refill is negligible during the test.
        let budget = DebugBudget::new(0.001, 20);
        let granted = AtomicUsize::new(0);
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..25 {
                        if budget.try_acquire() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::Relaxed), 20);
        assert_eq!(budget.exhausted(), 200 - 20);
    }

    #[test]
    fn a_tiny_rate_still_caps_at_the_burst() {
        // interval × burst beyond u64 nanoseconds: a saturated tolerance admitted all.
        for (rate, burst) in [(1e-9, 20), (1e-30, 1_000_000), (f64::MIN_POSITIVE, 3)] {
            let budget = DebugBudget::new(rate, burst);
            let granted = (0..100).take_while(|_| budget.try_acquire()).count();
            assert_eq!(
                granted,
                (burst as usize).min(100),
                "{rate}/s, burst {burst}"
            );
            if burst < 100 {
                let hour = 3_600_000_000_000;
                assert!(
                    !budget.try_acquire_at(hour),
                    "{rate}/s: refilled in an hour"
                );
            }
        }
    }

    #[test]
    fn refills_at_the_rate() {
        let b = DebugBudget::new(5.0, 2);
        let sec = 1_000_000_000;
        assert!(b.try_acquire_at(0));
        assert!(b.try_acquire_at(0));
        assert!(!b.try_acquire_at(0));
        // 200 ms later one token is back, not two.
        assert!(b.try_acquire_at(sec / 5));
        assert!(!b.try_acquire_at(sec / 5));
        // Idle for a long time: the bucket holds at most `burst`.
        let later = 100 * sec;
        assert!(b.try_acquire_at(later));
        assert!(b.try_acquire_at(later));
        assert!(!b.try_acquire_at(later));
        assert_eq!(b.exhausted(), 3);
    }
}
