//! The monotonic clock the request path reads: two readings per request, so it is read
//! and subtracted as plain nanoseconds. `std::time::Instant` reads the same clock
//! (`CLOCK_MONOTONIC` on Linux), but its subtraction (`Timespec::sub_timespec`, not
//! inlined, checked) cost about as much as the reading itself, three times a request.
//!
//! On x86-64 Linux, when the kernel itself keeps time with the TSC (its clocksource is
//! `tsc`: it found the counter invariant and synchronized across CPUs), readings come
//! from `rdtsc`, scaled to nanoseconds: about 10 ns a reading here against 25 ns for
//! `clock_gettime` through the vDSO, and no load of the kernel's time page, which the
//! TCP stack between two requests pushes out of the cache. The scale is calibrated
//! against `CLOCK_MONOTONIC` over the process's first readings (for
//! `tsc::WINDOW`, those come from `clock_gettime`), then fixed; the two clocks then
//! agree to about a microsecond per second, plenty for request durations and in-flight
//! ages. Anywhere else (another clocksource, another platform) every reading is
//! `clock_gettime`. The clocksource is read once: a kernel that later finds its TSC
//! unstable and switches away at run time leaves this clock on the TSC (its readings
//! still never make a negative duration: every subtraction saturates).

use std::time::{Duration, Instant, SystemTime};

/// Seconds since the Unix epoch of `t`, with fractions (0 for a time before it): how
/// every time diag reports (events, errors, captures, process start) is written.
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// [`unix_seconds`] now.
pub(crate) fn unix_now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// Whole seconds since the Unix epoch now (0 on a clock set before it): the time signed
/// debug credentials expire against.
pub(crate) fn unix_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A reading of the monotonic clock: nanoseconds since an unspecified origin, the same
/// for the whole process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MonoTime(u64);

impl MonoTime {
    /// Reads the clock.
    #[cfg(unix)]
    #[inline]
    pub(crate) fn now() -> MonoTime {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if let Some(nanos) = tsc::read() {
            return MonoTime(nanos);
        }
        MonoTime::now_slow()
    }

    /// `CLOCK_MONOTONIC`; also calibrates the TSC scale until it is ready.
    #[cfg(unix)]
    #[cold]
    fn now_slow() -> MonoTime {
        let nanos = clock_gettime_nanos();
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        tsc::calibrate(nanos);
        MonoTime(nanos)
    }

    /// Reads the clock.
    #[cfg(not(unix))]
    pub(crate) fn now() -> MonoTime {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        MonoTime(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds since the clock's origin.
    #[inline]
    pub(crate) fn nanos(self) -> u64 {
        self.0
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

/// `CLOCK_MONOTONIC` in nanoseconds.
#[cfg(unix)]
#[inline]
fn clock_gettime_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on every
    // unix std supports. The call cannot fail with these arguments; on the
    // impossible failure `ts` stays zero, which only makes a duration read long.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// The TSC, scaled to `CLOCK_MONOTONIC` nanoseconds once calibrated.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tsc {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicPtr, Ordering};

    /// How long the first readings calibrate the scale (from `clock_gettime`) before
    /// the TSC takes over: over this long, a reading's jitter of tens of nanoseconds
    /// makes a relative error below one in a million.
    pub(super) const WINDOW: u64 = 200_000_000;

    /// `nanos = base_nanos + (tsc - base_tsc) * mult >> 32`.
    #[derive(Debug)]
    pub(super) struct Scale {
        base_tsc: u64,
        base_nanos: u64,
        mult: u64,
    }

    /// Set once, when calibrated; never freed (one small allocation per process).
    static SCALE: AtomicPtr<Scale> = AtomicPtr::new(std::ptr::null_mut());

    /// The first `(tsc, nanos)` pair, or `None` when the TSC is not to be used.
    static FIRST: OnceLock<Option<(u64, u64)>> = OnceLock::new();

    #[inline]
    fn rdtsc() -> u64 {
        // SAFETY: `rdtsc` exists on every x86-64 CPU and has no preconditions.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }

    /// The time in nanoseconds, once the scale is calibrated.
    #[inline]
    pub(super) fn read() -> Option<u64> {
        let scale = SCALE.load(Ordering::Acquire);
        if scale.is_null() {
            return None;
        }
        // SAFETY: a non-null SCALE points to a leaked, never-mutated `Scale`
        // (published with Release after it was written).
        let scale = unsafe { &*scale };
        // A CPU whose counter reads a hair behind the calibrating one's: no wrap.
        let ticks = rdtsc().saturating_sub(scale.base_tsc);
        let nanos = (u128::from(ticks) * u128::from(scale.mult)) >> 32;
        Some(scale.base_nanos.wrapping_add(nanos as u64))
    }

    /// Whether the kernel keeps time with the TSC (it checked the counter is invariant
    /// and synchronized across CPUs before choosing it).
    fn kernel_uses_tsc() -> bool {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
    }

    /// With `nanos` just read from `clock_gettime`: remembers the first pair, and once
    /// [`WINDOW`] has passed since, publishes the scale between the two pairs.
    #[cold]
    pub(super) fn calibrate(nanos: u64) {
        let tsc = rdtsc();
        let first = FIRST.get_or_init(|| kernel_uses_tsc().then_some((tsc, nanos)));
        let Some((tsc0, nanos0)) = *first else {
            return;
        };
        let elapsed = nanos.saturating_sub(nanos0);
        let ticks = tsc.saturating_sub(tsc0);
        if elapsed < WINDOW || ticks == 0 {
            return;
        }
        let mult = (u128::from(elapsed) << 32) / u128::from(ticks);
        // A counter between 100 MHz and 20 GHz, or something is wrong: keep the kernel's clock.
        if !(u128::from(u32::MAX) / 20..=u128::from(u32::MAX) * 10).contains(&mult) {
            return;
        }
        let scale = Box::into_raw(Box::new(Scale {
            base_tsc: tsc,
            base_nanos: nanos,
            mult: mult as u64,
        }));
        if SCALE
            .compare_exchange(
                std::ptr::null_mut(),
                scale,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // Another thread published first.
            // SAFETY: `scale` came from `Box::into_raw` above and was never shared.
            drop(unsafe { Box::from_raw(scale) });
        }
    }

    /// Whether the TSC is in use (calibrated), for tests.
    #[cfg(test)]
    pub(super) fn active() -> bool {
        !SCALE.load(Ordering::Acquire).is_null()
    }

    #[cfg(test)]
    pub(super) fn expected() -> bool {
        kernel_uses_tsc()
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

    /// Once calibrated (where the kernel uses the TSC), readings still measure what
    /// `Instant` measures.
    #[test]
    fn the_calibrated_clock_agrees_with_instant() {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            let _ = MonoTime::now();
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            if tsc::active() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        assert_eq!(
            tsc::active(),
            tsc::expected(),
            "the TSC is used exactly when the kernel's clocksource is tsc"
        );
        // Within 1% over 50 ms. A thread preempted between its two adjacent readings
        // can miss that once; a wrong scale misses it every time.
        let attempts: Vec<(u64, u64)> = (0..5)
            .map(|_| {
                let (a, i) = (MonoTime::now(), Instant::now());
                std::thread::sleep(Duration::from_millis(50));
                let (b, elapsed) = (MonoTime::now(), i.elapsed().as_nanos() as u64);
                (b.nanos_since(a), elapsed)
            })
            .collect();
        assert!(
            attempts
                .iter()
                .any(|(measured, elapsed)| measured.abs_diff(*elapsed) < elapsed / 100),
            "{attempts:?}"
        );
        // And the absolute readings stay on CLOCK_MONOTONIC's timeline.
        #[cfg(unix)]
        {
            let gaps: Vec<u64> = (0..5)
                .map(|_| MonoTime::now().0.abs_diff(clock_gettime_nanos()))
                .collect();
            assert!(gaps.iter().any(|gap| *gap < 1_000_000), "{gaps:?} ns");
        }
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
