//! The process-wide count of debug requests in flight: the log filters' fast path.
//!
//! Every per-event check starts with one relaxed load of this counter; while it is zero
//! no debug request can be running, so nothing else is looked at. The request path
//! holds a [`DebugInFlight`] guard for as long as a debug request runs.

use std::sync::atomic::{AtomicUsize, Ordering};

static DEBUG_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Whether any debug request is in flight, in this process, right now.
///
/// Relaxed is enough: a filter that reads a stale zero just before a debug request
/// began would also have run before the request's own code did.
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
#[allow(dead_code)] // called by the request path as it lands
pub(crate) fn debug_begin() {
    DEBUG_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
}

/// Counts a debug request as finished.
#[allow(dead_code)] // called by the request path as it lands
pub(crate) fn debug_end() {
    // Never wrap below zero, even if a caller pairs these wrongly: a stuck non-zero
    // count only costs speed, a wrapped one would too, forever.
    let _ =
        DEBUG_IN_FLIGHT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
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
        // Other tests may hold guards concurrently: only assert on our own contribution.
        let g = DebugInFlight::begin();
        assert!(any());
        assert!(count() >= 1);
        drop(g);
    }
}
