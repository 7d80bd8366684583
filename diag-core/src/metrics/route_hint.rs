//! A per-thread shortcut from a route string's address to its `(method, route)` series.
//!
//! Routers hand out the same route template string for every request of a route
//! (axum's `MatchedPath` is one `Arc<str>` per route), so the address of the string
//! identifies the route without hashing it. The address is only a hint: a hit is
//! confirmed by comparing the series' own labels with the request's, so a reused
//! address (a router dropped and another built) can never pick a wrong series; it only
//! costs a normal lookup. Hashing and probing the labels was about 220 instructions a
//! request; a confirmed hit is about a third of that.

use std::cell::Cell;

use super::family::SeriesRef;

/// Hints kept per thread (direct-mapped by the route string's address): a service's
/// hot routes on one worker thread.
const HINTS: usize = 16;

#[derive(Clone, Copy)]
struct Hint {
    /// Which family (its address): several `Diag`s may share a thread.
    owner: usize,
    route: usize,
    len: usize,
    /// The address of the `&'static str` method label.
    method: usize,
    series: SeriesRef,
}

const EMPTY: Hint = Hint {
    owner: 0,
    route: 0,
    len: 0,
    method: 0,
    series: SeriesRef::OVERFLOW,
};

thread_local! {
    static HINTS_OF_THREAD: [Cell<Hint>; HINTS] = const { [const { Cell::new(EMPTY) }; HINTS] };
}

/// Route strings are heap or static data, at least 8-aligned in practice.
fn slot(route_at: usize) -> usize {
    (route_at >> 3) % HINTS
}

/// The series hinted for `(owner, method, route)` on this thread, unconfirmed.
#[inline]
pub(crate) fn lookup(owner: usize, method: &'static str, route: &str) -> Option<SeriesRef> {
    let route_at = route.as_ptr() as usize;
    HINTS_OF_THREAD.with(|hints| {
        let h = hints[slot(route_at)].get();
        (h.route == route_at
            && h.owner == owner
            && h.len == route.len()
            && h.method == method.as_ptr() as usize)
            .then_some(h.series)
    })
}

/// Remembers a looked-up series (never the overflow series: it has no labels to
/// confirm a hit with).
#[inline]
pub(crate) fn remember(owner: usize, method: &'static str, route: &str, series: SeriesRef) {
    if series == SeriesRef::OVERFLOW {
        return;
    }
    let route_at = route.as_ptr() as usize;
    HINTS_OF_THREAD.with(|hints| {
        hints[slot(route_at)].set(Hint {
            owner,
            route: route_at,
            len: route.len(),
            method: method.as_ptr() as usize,
            series,
        });
    });
}
