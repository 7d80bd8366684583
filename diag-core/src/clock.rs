//! The monotonic clock the request path reads: two readings per request, so it is read
//! and subtracted as plain nanoseconds. `std::time::Instant` reads the same clock
//! (`CLOCK_MONOTONIC` on Linux), but its subtraction (`Timespec::sub_timespec`, not
//! inlined, checked) cost about as much as the reading itself, three times a request.

use std::time::{Duration, Instant};

/// A reading of the monotonic clock: nanoseconds since an unspecified origin, the same
/// for the whole process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MonoTime(u64);

impl MonoTime {
    /// Reads the clock.
    #[cfg(unix)]
    #[inline]
    pub(crate) fn now() -> MonoTime {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on every
        // unix std supports. The call cannot fail with these arguments; on the
        // impossible failure `ts` stays zero, which only makes a duration read long.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        MonoTime((ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64)
    }

    /// Reads the clock.
    #[cfg(not(unix))]
    pub(crate) fn now() -> MonoTime {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        MonoTime(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds from `earlier` to `self`, 0 if `earlier` is later.
    #[inline]
    pub(crate) fn nanos_since(self, earlier: MonoTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The `Instant` of this reading (for APIs that hand out `Instant`s; not for the
    /// request path).
    pub(crate) fn to_instant(self) -> Instant {
        let (now, instant) = (MonoTime::now(), Instant::now());
        instant
            .checked_sub(Duration::from_nanos(now.nanos_since(self)))
            .unwrap_or(instant)
    }
}

impl std::ops::Add<Duration> for MonoTime {
    type Output = MonoTime;

    fn add(self, d: Duration) -> MonoTime {
        MonoTime(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_advance_with_real_time() {
        let (a, i) = (MonoTime::now(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let b = MonoTime::now();
        let elapsed = i.elapsed().as_nanos() as u64;
        let measured = b.nanos_since(a);
        assert!(measured >= 20_000_000, "{measured} ns");
        // Same clock as `Instant`: the two measurements agree closely.
        assert!(
            measured.abs_diff(elapsed) < 5_000_000,
            "{measured} vs {elapsed}"
        );
        assert_eq!(a.nanos_since(b), 0, "saturates");
    }

    #[test]
    fn converts_to_the_matching_instant() {
        let t = MonoTime::now();
        std::thread::sleep(Duration::from_millis(10));
        let back = t.to_instant().elapsed();
        assert!(back >= Duration::from_millis(10), "{back:?}");
        assert!(back < Duration::from_millis(1000), "{back:?}");
    }
}
