//! When the kill switch was on, for the views whose numbers it leaves out: while it is
//! on the middleware passes requests straight through, so `routes` counts none of them
//! and `requests` lists none. Those views say so, and `routes` computes its rates over
//! the part of its window when requests were counted.
//!
//! Flips are rare (a person's `PUT`, a deploy's `DIAG_DISABLED`), so they are recorded
//! under a lock; the request path reads only the `disabled` flag, as before.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

use super::routes::SNAPSHOT_MAX_AGE;
use super::text::{age, time_of_day_utc};
use crate::clock::unix_seconds;

/// The most ended periods kept (those ended over [`SNAPSHOT_MAX_AGE`] ago go first: no
/// window reaches back that far). Past it, the two oldest merge into one: the time
/// between them then counts as disabled too, never lost (a rate reads a little high,
/// not diluted by time nothing was counted in).
const MAX_PERIODS: usize = 64;

/// How long after the switch is turned off the `requests` view still says that requests
/// begun before then are not listed.
const REENABLED_NOTE_FOR: Duration = SNAPSHOT_MAX_AGE;

/// A span of time while diag was disabled.
#[derive(Debug, Clone, Copy)]
struct Period {
    from: Instant,
    to: Instant,
    to_wall: SystemTime,
}

#[derive(Debug, Default)]
struct Periods {
    /// When the switch was turned on, while it is on.
    since: Option<(Instant, SystemTime)>,
    /// Periods that ended, oldest first.
    ended: VecDeque<Period>,
}

/// The kill switch's recent history.
#[derive(Debug, Default)]
pub(crate) struct KillSwitchLog {
    periods: Mutex<Periods>,
}

/// What the kill switch means for a view, as its `kill_switch` entry says it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct KillSwitchNote {
    /// Whether the switch is on now.
    pub(crate) disabled: bool,
    /// When it last flipped (turned on while it is on, else turned off), Unix seconds.
    pub(crate) changed_unix: f64,
    /// How long ago that was.
    pub(crate) seconds_ago: f64,
    /// The same in a sentence.
    pub(crate) note: String,
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

impl KillSwitchLog {
    /// A log that starts with the switch on since `since`, or off.
    pub(crate) fn new(since: Option<(Instant, SystemTime)>) -> Self {
        KillSwitchLog {
            periods: Mutex::new(Periods {
                since,
                ended: VecDeque::new(),
            }),
        }
    }

    /// Sets `flag` to `disabled` at `at`, recording the flip; whether it changed. The
    /// flag is swapped under the log's lock, so two flips at once are recorded in the
    /// order the flag took them.
    pub(crate) fn set(
        &self,
        flag: &AtomicBool,
        disabled: bool,
        at: Instant,
        wall: SystemTime,
    ) -> bool {
        let mut periods = self.periods.lock();
        let was = flag.swap(disabled, Ordering::Relaxed);
        if was == disabled {
            return false;
        }
        if disabled {
            periods.since = Some((at, wall));
        } else if let Some((from, _)) = periods.since.take() {
            periods.ended.push_back(Period {
                from,
                to: at,
                to_wall: wall,
            });
        }
        periods
            .ended
            .retain(|p| at.saturating_duration_since(p.to) <= SNAPSHOT_MAX_AGE);
        while periods.ended.len() > MAX_PERIODS {
            if let (Some(first), Some(second)) =
                (periods.ended.pop_front(), periods.ended.front_mut())
            {
                second.from = first.from;
            }
        }
        true
    }

    /// How much of `[from, to]` diag was disabled for.
    pub(crate) fn uncounted(&self, from: Instant, to: Instant) -> Duration {
        let periods = self.periods.lock();
        let overlap = |a: Instant, b: Instant| b.min(to).saturating_duration_since(a.max(from));
        let ongoing = periods
            .since
            .map_or(Duration::ZERO, |(a, _)| overlap(a, to));
        periods
            .ended
            .iter()
            .map(|p| overlap(p.from, p.to))
            .sum::<Duration>()
            + ongoing
    }

    /// While the switch is on: since when, and that requests are not counted.
    fn disabled_note(&self, now: Instant) -> Option<KillSwitchNote> {
        let (at, at_wall) = self.periods.lock().since?;
        let ago = now.saturating_duration_since(at);
        Some(KillSwitchNote {
            disabled: true,
            changed_unix: unix_seconds(at_wall),
            seconds_ago: seconds(ago),
            note: format!(
                "diag disabled since {} ({} ago): requests are not counted",
                time_of_day_utc(unix_seconds(at_wall)),
                age(seconds(ago))
            ),
        })
    }

    /// The `routes` view's note over a window of `window` ending `now` of which
    /// `uncounted` passed with the switch on: the switch is on, or was during the window.
    pub(crate) fn window_note(
        &self,
        now: Instant,
        window: Option<Duration>,
        uncounted: Duration,
    ) -> Option<KillSwitchNote> {
        if let Some(note) = self.disabled_note(now) {
            return Some(note);
        }
        let window = window.filter(|_| !uncounted.is_zero())?;
        let last = *self.periods.lock().ended.back()?;
        let ago = now.saturating_duration_since(last.to);
        let counted = window.saturating_sub(uncounted);
        Some(KillSwitchNote {
            disabled: false,
            changed_unix: unix_seconds(last.to_wall),
            seconds_ago: seconds(ago),
            note: format!(
                "diag was disabled for {:.1} s of this {:.1} s window, until {} ({} ago): \
                 requests then were not counted; rates are over the {:.1} s counted",
                seconds(uncounted),
                seconds(window),
                time_of_day_utc(unix_seconds(last.to_wall)),
                age(seconds(ago)),
                seconds(counted),
            ),
        })
    }

    /// The `requests` view's note: the switch is on, or was turned off lately (requests
    /// begun before then are not tracked).
    pub(crate) fn in_flight_note(&self, now: Instant) -> Option<KillSwitchNote> {
        if let Some(note) = self.disabled_note(now) {
            return Some(note);
        }
        let last = *self.periods.lock().ended.back()?;
        let ago = now.saturating_duration_since(last.to);
        (ago <= REENABLED_NOTE_FOR).then(|| KillSwitchNote {
            disabled: false,
            changed_unix: unix_seconds(last.to_wall),
            seconds_ago: seconds(ago),
            note: format!(
                "diag enabled again at {} ({} ago): requests that began before then are \
                 not listed",
                time_of_day_utc(unix_seconds(last.to_wall)),
                age(seconds(ago)),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    /// More flips than periods kept: the oldest merge, so no disabled time is lost.
    #[test]
    fn many_flips_merge_the_oldest_periods_and_lose_no_disabled_time() {
        let log = KillSwitchLog::default();
        let flag = AtomicBool::new(false);
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        // 100 periods of 1 s disabled, 1 s enabled.
        for k in 0..100u64 {
            assert!(log.set(&flag, true, at(t0, 2 * k), wall));
            assert!(log.set(&flag, false, at(t0, 2 * k + 1), wall));
        }
        assert!(log.periods.lock().ended.len() <= MAX_PERIODS);
        let missed = log.uncounted(t0, at(t0, 200));
        // At least the 100 s it was off; the merged gaps count too (at most 36 of them).
        assert!(missed >= Duration::from_secs(100), "{missed:?}");
        assert!(missed <= Duration::from_secs(100 + 36), "{missed:?}");
    }

    #[test]
    fn flips_are_recorded_and_windows_know_what_they_missed() {
        let log = KillSwitchLog::default();
        let flag = AtomicBool::new(false);
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(14 * 3600 + 2 * 60 + 11);
        assert!(log.set(&flag, true, at(t0, 10), wall));
        assert!(flag.load(Ordering::Relaxed));
        assert!(!log.set(&flag, true, at(t0, 20), wall), "no change");
        // Still on: the part of a window since it was turned on is not counted.
        assert_eq!(log.uncounted(t0, at(t0, 60)), Duration::from_secs(50));
        let note = log.window_note(at(t0, 83), None, Duration::ZERO).unwrap();
        assert!(note.disabled);
        assert_eq!(note.seconds_ago, 73.0);
        assert_eq!(
            note.note,
            "diag disabled since 14:02:11 UTC (73.0 s ago): requests are not counted"
        );
        assert_eq!(log.in_flight_note(at(t0, 83)).unwrap(), note);

        let off = wall + Duration::from_secs(70);
        assert!(log.set(&flag, false, at(t0, 80), off));
        assert!(!flag.load(Ordering::Relaxed));
        assert_eq!(log.uncounted(t0, at(t0, 83)), Duration::from_secs(70));
        assert_eq!(log.uncounted(at(t0, 5), at(t0, 15)), Duration::from_secs(5));
        assert_eq!(log.uncounted(at(t0, 80), at(t0, 90)), Duration::ZERO);
        let note = log
            .window_note(
                at(t0, 83),
                Some(Duration::from_secs(73)),
                Duration::from_secs(70),
            )
            .unwrap();
        assert!(!note.disabled);
        assert_eq!(
            note.note,
            "diag was disabled for 70.0 s of this 73.0 s window, until 14:03:21 UTC \
             (3.0 s ago): requests then were not counted; rates are over the 3.0 s counted"
        );
        // A window that missed nothing has nothing to say.
        assert!(
            log.window_note(at(t0, 200), Some(Duration::from_secs(60)), Duration::ZERO)
                .is_none()
        );
        let note = log.in_flight_note(at(t0, 83)).unwrap();
        assert!(
            note.note
                .starts_with("diag enabled again at 14:03:21 UTC (3.0 s ago)")
        );
        assert!(
            log.in_flight_note(at(t0, 80) + REENABLED_NOTE_FOR + Duration::from_secs(1))
                .is_none(),
            "long enough ago"
        );
        // Periods older than any window are forgotten.
        log.set(&flag, true, at(t0, 1000), off);
        log.set(&flag, false, at(t0, 1001), off);
        assert_eq!(log.periods.lock().ended.len(), 1);
        assert_eq!(log.uncounted(t0, at(t0, 2000)), Duration::from_secs(1));
    }

    #[test]
    fn a_switch_on_from_the_start_counts_from_the_start() {
        let t0 = Instant::now();
        let log = KillSwitchLog::new(Some((t0, SystemTime::UNIX_EPOCH)));
        assert_eq!(log.uncounted(t0, at(t0, 30)), Duration::from_secs(30));
        let flag = AtomicBool::new(true);
        assert!(log.set(&flag, false, at(t0, 30), SystemTime::UNIX_EPOCH));
        assert_eq!(log.uncounted(t0, at(t0, 90)), Duration::from_secs(30));
    }
}
