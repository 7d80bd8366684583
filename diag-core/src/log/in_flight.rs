//! The process-wide count of debug requests in flight: what keeps diag's filters free
//! while no debug request runs.
//!
//! While no debug request has run for [`LINGER`], diag's filters give callsites the
//! service filter's own interest (`never` for a `debug!` under an INFO filter) and its
//! own max level, so a disabled `debug!` costs what it costs without diag. When the
//! first debug request starts, the callsite interest cache is rebuilt and every
//! callsite up to the debug requests' level becomes `sometimes`: each span or event is then checked, and one relaxed
//! load of the count ends the check for anything outside a debug request. When the
//! last one ends, the cache is not rebuilt at once: a thread of diag's own rebuilds it
//! once no debug request has run for [`LINGER`]. A rebuild walks every callsite, so
//! rebuilding on every 0 -> 1 and 1 -> 0 transition made each debug request pay two
//! walks whenever debug requests come one at a time; now a stream of them pays none.
//!
//! TRACE is opened separately: while only DEBUG-level debug requests run, TRACE
//! callsites (libraries have many) keep the service filter's interest and the max
//! level stays DEBUG, so they are turned away by the level check as without diag. The
//! first TRACE-level debug request rebuilds the cache once more; TRACE closes together
//! with the rest, [`LINGER`] after the last debug request.
//!
//! Rebuilds are serialized with the transitions under one lock, so a rebuild never
//! reads a state that moves while it runs. One narrow race remains: a callsite hit for
//! the very first time at the instant a debug request starts may keep `never` until the
//! next rebuild, and miss that request's lines. (While the interest is open, new
//! callsites register as `sometimes`.)
//!
//! tracing-core rebuilds for every registered dispatcher, except when only one was
//! ever registered: then it rebuilds for the calling thread's default. A service with a
//! global subscriber (`.init()`) is fine; tests with `with_default` keep a second
//! dispatcher alive or start the request inside `with_default`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, const_mutex};

use crate::debug::DebugLevel;

/// How long callsites stay `sometimes` after the last debug request ends, before the
/// interest cache is rebuilt to the service filter's own.
pub(crate) const LINGER: Duration = Duration::from_millis(500);

static DEBUG_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How many of those asked for TRACE (`X-Debug-Level: trace`).
static TRACE_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Whether the interest cache was last built for debug requests (DEBUG callsites
/// `sometimes`, max level DEBUG). Written only under [`TRANSITIONS`].
static OPEN: AtomicBool = AtomicBool::new(false);

/// Whether it was also built for a TRACE debug request (TRACE callsites `sometimes`,
/// max level TRACE). Set only with [`OPEN`], cleared with it. Written only under
/// [`TRANSITIONS`].
static TRACE_OPEN: AtomicBool = AtomicBool::new(false);

/// Held while the count crosses zero and while the interest cache is rebuilt.
static TRANSITIONS: Mutex<Closing> = const_mutex(Closing {
    idle_since: None,
    closer: None,
    armed: false,
});

/// When the last debug request ended, and the thread that closes the interest
/// [`LINGER`] after that.
struct Closing {
    idle_since: Option<Instant>,
    closer: Option<std::thread::Thread>,
    /// The closer will look at `idle_since` again by itself (it sleeps with a timeout,
    /// or is about to check): no need to wake it. Keeps a stream of debug requests from
    /// paying a thread wake-up each.
    armed: bool,
}

/// Whether any debug request is in flight, in this process, right now.
///
/// Relaxed is enough: the callsite cache rebuild that follows a 0 -> 1 transition
/// synchronizes before the debug request's handler runs.
#[inline]
pub(crate) fn any() -> bool {
    DEBUG_IN_FLIGHT.load(Ordering::Relaxed) != 0
}

/// Whether callsite interest and max level must admit debug requests' events: a debug
/// request is in flight, or one ended less than [`LINGER`] ago. For
/// `callsite_enabled` and `max_level_hint`; per-event checks use [`any`].
#[inline]
pub(crate) fn interest_open() -> bool {
    OPEN.load(Ordering::Relaxed) || any()
}

/// Whether a callsite at `level` must be asked per event: the interest is open, and
/// for a TRACE callsite, open for TRACE too. Libraries are full of `trace!` callsites;
/// while only DEBUG-level debug requests run they keep the service filter's interest
/// (and the max level stays DEBUG), so they cost no more than without diag.
#[inline]
pub(crate) fn interest_open_for(level: &tracing::Level) -> bool {
    interest_open() && (*level != tracing::Level::TRACE || trace_interest_open())
}

/// Whether a TRACE debug request is in flight, or the interest was built for one and
/// has not closed since.
#[inline]
pub(crate) fn trace_interest_open() -> bool {
    TRACE_OPEN.load(Ordering::Relaxed) || TRACE_IN_FLIGHT.load(Ordering::Relaxed) != 0
}

/// The most verbose level the interest admits now: `None` while it is closed.
pub(crate) fn open_level() -> Option<tracing::level_filters::LevelFilter> {
    use tracing::level_filters::LevelFilter;
    match (interest_open(), trace_interest_open()) {
        (_, true) => Some(LevelFilter::TRACE),
        (true, false) => Some(LevelFilter::DEBUG),
        (false, false) => None,
    }
}

/// How many debug requests are in flight.
#[cfg(test)]
pub(crate) fn count() -> usize {
    DEBUG_IN_FLIGHT.load(Ordering::Relaxed)
}

/// Counts a debug request as started; pair with [`debug_end`]. Prefer [`DebugInFlight`].
/// Call it before the request's root span is created. `trace`: the request logs at TRACE.
pub(crate) fn debug_begin(trace: bool) {
    if trace {
        TRACE_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    }
    // Above zero, with the interest already right for this level, nothing changes:
    // count up without the lock.
    if (!trace || TRACE_OPEN.load(Ordering::Relaxed)) && step(|n| (n > 0).then(|| n + 1)) {
        return;
    }
    let mut closing = TRANSITIONS.lock();
    let mut rebuild = false;
    if DEBUG_IN_FLIGHT.fetch_add(1, Ordering::Relaxed) == 0 {
        closing.idle_since = None;
        // Still open from an earlier debug request: the cache is already right.
        rebuild |= !OPEN.swap(true, Ordering::Relaxed);
    }
    if trace {
        rebuild |= !TRACE_OPEN.swap(true, Ordering::Relaxed);
    }
    if rebuild {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Counts a debug request as finished.
pub(crate) fn debug_end(trace: bool) {
    if trace {
        // Never wrap below zero, even if a caller pairs these wrongly.
        let _ = TRACE_IN_FLIGHT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
    if step(|n| (n > 1).then(|| n - 1)) {
        return;
    }
    let mut closing = TRANSITIONS.lock();
    // Never wrap below zero, even if a caller pairs these wrongly.
    let before =
        DEBUG_IN_FLIGHT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    if before == Ok(1) {
        closing.idle_since = Some(Instant::now());
        schedule_close(&mut closing);
    }
}

/// Wakes (or starts) the thread that closes the interest after [`LINGER`]; without
/// one, closes it now.
fn schedule_close(closing: &mut Closing) {
    if closing.armed {
        return;
    }
    if let Some(closer) = &closing.closer {
        closing.armed = true;
        closer.unpark();
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("diag-debug-interest".into())
        .spawn(close_when_idle);
    match spawned {
        Ok(handle) => {
            closing.closer = Some(handle.thread().clone());
            closing.armed = true;
        }
        Err(_) => close(closing),
    }
}

/// The closer thread: sleeps until [`LINGER`] after the last debug request ended, then
/// rebuilds the interest cache for the service filter alone.
fn close_when_idle() {
    loop {
        let wait = {
            let mut closing = TRANSITIONS.lock();
            let wait = match closing.idle_since {
                None => None,
                Some(since) => match LINGER.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        close(&mut closing);
                        None
                    }
                },
            };
            closing.armed = wait.is_some();
            wait
        };
        match wait {
            Some(left) => std::thread::park_timeout(left),
            None => std::thread::park(),
        }
    }
}

/// Back to the service filter's own interest, unless a debug request runs. Called
/// under [`TRANSITIONS`].
fn close(closing: &mut Closing) {
    closing.idle_since = None;
    if DEBUG_IN_FLIGHT.load(Ordering::Relaxed) == 0 && OPEN.swap(false, Ordering::Relaxed) {
        TRACE_OPEN.store(false, Ordering::Relaxed);
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Rebuilds the callsite interest cache, serialized with the count's zero crossings
/// (a rebuild that read "none in flight" must not land after one that read "some").
pub(crate) fn rebuild_interest() {
    let _crossing = TRANSITIONS.lock();
    tracing::callsite::rebuild_interest_cache();
}

/// Applies `f` to the count unless it returns `None`; whether it applied.
fn step(f: impl Fn(usize) -> Option<usize>) -> bool {
    DEBUG_IN_FLIGHT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, f)
        .is_ok()
}

/// Keeps one debug request counted as in flight until dropped (also on unwind).
///
/// The request path creates it when it decides a request runs in debug mode and keeps
/// it until the handler's future and the response body are done.
#[must_use = "the request counts as in flight only while the guard lives"]
#[derive(Debug)]
pub(crate) struct DebugInFlight {
    trace: bool,
}

impl DebugInFlight {
    /// Counts one more debug request in flight, logging at `level`.
    pub(crate) fn begin(level: DebugLevel) -> Self {
        let trace = level == DebugLevel::Trace;
        debug_begin(trace);
        DebugInFlight { trace }
    }
}

impl Drop for DebugInFlight {
    fn drop(&mut self) {
        debug_end(self.trace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_while_alive() {
        let _serial = crate::test_support::tracing_test_lock();
        // Other tests may hold guards concurrently: only assert on our own contribution.
        let g = DebugInFlight::begin(DebugLevel::Debug);
        assert!(any());
        assert!(count() >= 1);
        drop(g);
    }

    #[test]
    fn interest_stays_open_for_the_linger_then_closes() {
        let _serial = crate::test_support::tracing_test_lock();
        let g = DebugInFlight::begin(DebugLevel::Debug);
        assert!(interest_open());
        let ended = Instant::now();
        drop(g);
        // Other tests may run debug requests meanwhile; the interest closes once no
        // debug request has run for LINGER.
        let deadline = Instant::now() + Duration::from_secs(20);
        while interest_open() {
            assert!(Instant::now() < deadline, "interest never closed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(ended.elapsed() >= LINGER, "closed before the linger");
    }
}
