//! The process-wide count of debug requests in flight: what keeps diag's filters free
//! while no debug request runs.
//!
//! While the count is zero, diag's filters give callsites the service filter's own
//! interest (`never` for a `debug!` under an INFO filter) and its own max level, so a
//! disabled `debug!` costs what it costs without diag. When the count leaves zero, the
//! callsite interest cache is rebuilt and every callsite becomes `sometimes`: each span
//! or event is then checked, and one relaxed load of the count ends the check for
//! anything outside a debug request. When it drops back to zero, the cache is rebuilt
//! again. Only the 0 -> 1 and 1 -> 0 transitions rebuild; the request path holds a
//! [`DebugInFlight`] guard for as long as a debug request runs.
//!
//! Rebuilds are serialized with the transitions under one lock, so a rebuild never
//! reads a count that moves across zero while it runs. One narrow race remains: a
//! callsite hit for the very first time at the instant a debug request starts may
//! keep `never` until the next rebuild, and miss that request's lines.
//!
//! tracing-core rebuilds for every registered dispatcher, except when only one was
//! ever registered: then it rebuilds for the calling thread's default. A service with a
//! global subscriber (`.init()`) is fine; tests with `with_default` keep a second
//! dispatcher alive or start the request inside `with_default`.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, const_mutex};

static DEBUG_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Held while the count crosses zero and while the interest cache is rebuilt.
static TRANSITIONS: Mutex<()> = const_mutex(());

/// Whether any debug request is in flight, in this process, right now.
///
/// Relaxed is enough: the callsite cache rebuild that follows a 0 -> 1 transition
/// synchronizes before the debug request's handler runs.
#[inline]
pub(crate) fn any() -> bool {
    DEBUG_IN_FLIGHT.load(Ordering::Relaxed) != 0
}

/// How many debug requests are in flight (for `/debug` and tests).
#[allow(dead_code)] // read by the debug index and capture parts as they land
pub(crate) fn count() -> usize {
    DEBUG_IN_FLIGHT.load(Ordering::Relaxed)
}

/// Counts a debug request as started; pair with [`debug_end`]. Prefer [`DebugInFlight`].
/// Call it before the request's root span is created.
#[allow(dead_code)] // called by the request path as it lands
pub(crate) fn debug_begin() {
    // Above zero, no rebuild is needed: count up without the lock.
    if step(|n| (n > 0).then(|| n + 1)) {
        return;
    }
    let _crossing = TRANSITIONS.lock();
    if DEBUG_IN_FLIGHT.fetch_add(1, Ordering::Relaxed) == 0 {
        tracing::callsite::rebuild_interest_cache();
    }
}

/// Counts a debug request as finished.
#[allow(dead_code)] // called by the request path as it lands
pub(crate) fn debug_end() {
    if step(|n| (n > 1).then(|| n - 1)) {
        return;
    }
    let _crossing = TRANSITIONS.lock();
    // Never wrap below zero, even if a caller pairs these wrongly.
    let before =
        DEBUG_IN_FLIGHT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    if before == Ok(1) {
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
#[allow(dead_code)] // held by the request path as it lands
#[must_use = "the request counts as in flight only while the guard lives"]
#[derive(Debug)]
pub(crate) struct DebugInFlight(());

#[allow(dead_code)] // called by the request path as it lands
impl DebugInFlight {
    /// Counts one more debug request in flight.
    pub(crate) fn begin() -> Self {
        debug_begin();
        DebugInFlight(())
    }
}

impl Drop for DebugInFlight {
    fn drop(&mut self) {
        debug_end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_while_alive() {
        let _serial = crate::tracing_test_lock();
        // Other tests may hold guards concurrently: only assert on our own contribution.
        let g = DebugInFlight::begin();
        assert!(any());
        assert!(count() >= 1);
        drop(g);
    }
}
