//! "At most once per interval", without a lock: for warnings and timeline events that
//! would otherwise repeat once per request during a flood.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lets one caller through per interval; the others are told to stay quiet.
#[derive(Debug)]
pub(crate) struct Throttle {
    origin: Instant,
    interval_ms: u64,
    /// Milliseconds since `origin` of the last pass, plus one (0: never passed).
    last: AtomicU64,
}

impl Throttle {
    pub(crate) fn new(interval: Duration) -> Self {
        Throttle {
            origin: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
        }
    }

    /// Whether the caller may speak now; at most one caller per interval gets `true`.
    pub(crate) fn ready(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.interval_ms {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_per_interval_across_threads() {
        let t = Throttle::new(Duration::from_secs(3600));
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..100).filter(|_| t.ready()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(passed, 1);
    }

    #[test]
    fn passes_again_after_the_interval() {
        let t = Throttle::new(Duration::from_millis(20));
        assert!(t.ready());
        assert!(!t.ready());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.ready());
    }
}
