//! The built-in `requests` provider: requests in flight per route, and how old the
//! oldest one is.
//!
//! On the request path, [`InFlight`] does no locking and, after a route's first request,
//! no allocation: it finds the route's index in a fixed open-addressed table (a hash
//! of method and route, compared on hit), then claims one slot of a fixed table of
//! `(route, start time)` words with one compare-and-swap (starting from a per-thread
//! hint, trying at most [`AGE_PROBES`] slots); finishing stores zero into the slot.
//! The slots are the count: reading scans them. Only a request that finds no free
//! slot touches a per-route counter instead.
//!
//! Caps: [`MAX_ROUTES`] distinct `(method, route)` pairs; requests of further pairs
//! count under `(*, __overflow__)` and in `route_overflow`. [`AGE_SLOTS`] start times;
//! a request that finds no free slot is still counted, its age is not
//! (`requests_without_age`). Unknown methods count as `OTHER`.
//!
//! While the kill switch is on the middleware passes requests straight through, so none
//! is counted here: the report says so (`kill_switch`), and for a while after it is
//! turned off, that requests begun before then are not listed.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::Diag;
use crate::clock::MonoTime;
use crate::state::kill_switch::KillSwitchNote;

/// The most distinct `(method, route)` pairs tracked.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::state::MAX_ROUTES;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let routes: Vec<String> = (0..=MAX_ROUTES).map(|i| format!("/report/{i}")).collect();
/// let guards: Vec<_> = routes.iter().map(|r| diag.in_flight().start("GET", r)).collect();
/// assert_eq!(diag.in_flight().total(), guards.len() as u64); // all counted
/// let v = diag.state().collect("requests").await.unwrap().value.unwrap();
/// assert_eq!(v["routes_tracked"], MAX_ROUTES);
/// assert_eq!(v["route_overflow"], 1); // the last one, under `__overflow__`
/// # }
/// ```
pub const MAX_ROUTES: usize = 128;
/// Size of the start-time table: requests in flight whose age is known.
///
/// ```
/// use diag_core::state::{AGE_SLOTS, InFlight};
/// let in_flight = InFlight::new();
/// let guards: Vec<_> = (0..AGE_SLOTS + 5).map(|_| in_flight.start("GET", "/export")).collect();
/// // Beyond the slots a request's age is not known, but it is still counted.
/// assert_eq!(in_flight.in_flight("GET", "/export"), guards.len() as u64);
/// ```
pub const AGE_SLOTS: usize = 1024;
/// Slots tried before a request gives up on recording its start time.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::state::AGE_SLOTS;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guards: Vec<_> =
///     (0..=AGE_SLOTS).map(|_| diag.in_flight().start("GET", "/export")).collect();
/// let v = diag.state().collect("requests").await.unwrap().value.unwrap();
/// assert_eq!(v["in_flight"], guards.len());
/// // Those that found no free slot within `AGE_PROBES` tries have no known age.
/// assert!(v["requests_without_age"].as_u64().unwrap() >= 1);
/// # }
/// ```
pub const AGE_PROBES: usize = 8;
/// Open-addressed table size: twice the cap keeps probe sequences short.
const ROUTE_TABLE: usize = 2 * MAX_ROUTES;
/// The entry after the table counts the overflow.
const OVERFLOW: usize = ROUTE_TABLE;
const NO_SLOT: u32 = u32::MAX;
const MICROS_BITS: u32 = 48;
const MICROS_MASK: u64 = (1 << MICROS_BITS) - 1;

/// Counts requests in flight per route and remembers when each started.
///
/// ```
/// let in_flight = diag_core::state::InFlight::new();
/// let guard = in_flight.start("GET", "/orders/{id}");
/// assert_eq!(in_flight.in_flight("GET", "/orders/{id}"), 1);
/// drop(guard);
/// assert_eq!(in_flight.in_flight("GET", "/orders/{id}"), 0);
/// ```
pub struct InFlight {
    routes: Box<[RouteEntry]>,
    claimed_routes: AtomicUsize,
    route_overflow: AtomicU64,
    /// 0: free; else `(route index + 1) << 48 | start micros since epoch`.
    slots: Box<[AtomicU64]>,
    without_age: AtomicU64,
    epoch: MonoTime,
}

#[derive(Default)]
struct RouteEntry {
    key: OnceLock<RouteKey>,
    /// Requests in flight that found no free slot (the rest are in the slots).
    without_slot: AtomicU64,
}

struct RouteKey {
    method: &'static str,
    route: Box<str>,
}

/// A request being counted; [`InFlight::leave`] ends it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InFlightTicket {
    route: u16,
    slot: u32,
}

/// Counts one request while it lives.
///
/// ```
/// use diag_core::state::InFlight;
/// let in_flight = InFlight::new();
/// {
///     let _request = in_flight.start("POST", "/orders");
///     assert_eq!(in_flight.total(), 1);
/// } // the response went out
/// assert_eq!(in_flight.total(), 0);
/// ```
#[must_use = "the request counts as in flight until this guard drops"]
pub struct InFlightGuard<'a> {
    owner: &'a InFlight,
    ticket: InFlightTicket,
}

impl InFlight {
    /// Requests the table could not track in full: `[counted under __overflow__ (the
    /// route table was full), without a start time (no age slot free)]`.
    pub(crate) fn untracked(&self) -> [u64; 2] {
        [
            self.route_overflow.load(Ordering::Relaxed),
            self.without_age.load(Ordering::Relaxed),
        ]
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.owner.leave(self.ticket);
    }
}

#[derive(Serialize)]
struct RequestsReport {
    /// The kill switch is on (no request is tracked), or was lately (requests begun
    /// then are not).
    #[serde(skip_serializing_if = "Option::is_none")]
    kill_switch: Option<KillSwitchNote>,
    in_flight: u64,
    /// Routes with requests in flight, most first.
    routes: Vec<RouteReport>,
    routes_tracked: usize,
    route_cap: usize,
    /// Requests counted under `__overflow__` because the route table was full.
    route_overflow: u64,
    /// Requests whose start time found no free slot (more than the slots in flight).
    requests_without_age: u64,
}

#[derive(Serialize)]
struct RouteReport {
    method: &'static str,
    route: String,
    in_flight: u64,
    /// Age of the oldest request of this route whose start time is known.
    oldest_age_ms: Option<f64>,
}

thread_local! {
    /// Where this thread tries first; `usize::MAX` until its first request. A `const`
    /// initializer keeps the access free of lazy-init checks.
    static SLOT_HINT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn next_thread_hint() -> usize {
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    // Spread threads over the table so they rarely probe the same slots.
    THREADS.fetch_add(1, Ordering::Relaxed).wrapping_mul(97) % AGE_SLOTS
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::new()
    }
}

impl InFlight {
    /// An empty tracker.
    ///
    /// ```
    /// use diag_core::state::InFlight;
    /// let in_flight = InFlight::new();
    /// assert_eq!(in_flight.total(), 0);
    /// ```
    pub fn new() -> Self {
        let routes: Box<[RouteEntry]> = (0..=ROUTE_TABLE).map(|_| RouteEntry::default()).collect();
        let _ = routes[OVERFLOW].key.set(RouteKey {
            method: "*",
            route: "__overflow__".into(),
        });
        InFlight {
            routes,
            claimed_routes: AtomicUsize::new(0),
            route_overflow: AtomicU64::new(0),
            slots: (0..AGE_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            without_age: AtomicU64::new(0),
            epoch: MonoTime::now(),
        }
    }

    /// Counts a request of `method` on `route` (the route template, never the raw
    /// path) until the guard drops.
    ///
    /// ```
    /// use diag_core::state::InFlight;
    /// let in_flight = InFlight::new();
    /// let a = in_flight.start("GET", "/products/{id}");
    /// let b = in_flight.start("GET", "/products/{id}");
    /// assert_eq!(in_flight.in_flight("GET", "/products/{id}"), 2);
    /// drop((a, b));
    /// assert_eq!(in_flight.in_flight("GET", "/products/{id}"), 0);
    /// ```
    pub fn start(&self, method: &str, route: &str) -> InFlightGuard<'_> {
        InFlightGuard {
            owner: self,
            ticket: self.enter(method, route, MonoTime::now()),
        }
    }

    /// Requests of `method` on `route` in flight now.
    ///
    /// ```
    /// use diag_core::state::InFlight;
    /// let in_flight = InFlight::new();
    /// let _get = in_flight.start("GET", "/cart");
    /// let _put = in_flight.start("PUT", "/cart");
    /// assert_eq!(in_flight.in_flight("GET", "/cart"), 1);
    /// assert_eq!(in_flight.in_flight("DELETE", "/cart"), 0);
    /// ```
    pub fn in_flight(&self, method: &str, route: &str) -> u64 {
        let Some(index) = self.find(canonical_method(method), route, false) else {
            return 0;
        };
        let tag = (index as u64 + 1) << MICROS_BITS;
        let in_slots = self
            .slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) & !MICROS_MASK == tag)
            .count() as u64;
        in_slots + self.routes[index].without_slot.load(Ordering::Relaxed)
    }

    /// Requests in flight now, all routes.
    ///
    /// ```
    /// use diag_core::state::InFlight;
    /// let in_flight = InFlight::new();
    /// let _a = in_flight.start("GET", "/cart");
    /// let _b = in_flight.start("POST", "/checkout");
    /// assert_eq!(in_flight.total(), 2);
    /// ```
    pub fn total(&self) -> u64 {
        let in_slots = self
            .slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count() as u64;
        in_slots
            + self
                .routes
                .iter()
                .map(|r| r.without_slot.load(Ordering::Relaxed))
                .sum::<u64>()
    }

    /// Starts counting a request that arrived at `at`.
    pub(crate) fn enter(&self, method: &str, route: &str, at: MonoTime) -> InFlightTicket {
        self.enter_route(self.route_index(method, route), at)
    }

    /// [`enter`](Self::enter) for a caller that keeps `memo` per `(method, route)`
    /// (it starts as any value past the table, e.g. `u32::MAX`): the route is looked up
    /// once, not hashed again on every request. An overflowed route is not remembered,
    /// so each of its requests is still counted in `route_overflow`.
    pub(crate) fn enter_remembered(
        &self,
        method: &str,
        route: &str,
        at: MonoTime,
        memo: &AtomicU32,
    ) -> InFlightTicket {
        let known = memo.load(Ordering::Relaxed) as usize;
        let route_index = if known < OVERFLOW {
            known
        } else {
            let index = self.route_index(method, route);
            if index != OVERFLOW {
                memo.store(index as u32, Ordering::Relaxed);
            }
            index
        };
        self.enter_route(route_index, at)
    }

    /// The table index of `(method, route)`, claiming one if needed; [`OVERFLOW`] (and
    /// counted) past the cap.
    fn route_index(&self, method: &str, route: &str) -> usize {
        self.find(canonical_method(method), route, true)
            .unwrap_or_else(|| {
                self.route_overflow.fetch_add(1, Ordering::Relaxed);
                OVERFLOW
            })
    }

    fn enter_route(&self, route_index: usize, at: MonoTime) -> InFlightTicket {
        let micros = (at.nanos_since(self.epoch) / 1000) & MICROS_MASK;
        let packed = ((route_index as u64 + 1) << MICROS_BITS) | micros;
        let slot = SLOT_HINT.with(|hint| {
            let mut start = hint.get();
            if start == usize::MAX {
                start = next_thread_hint();
            }
            for i in 0..AGE_PROBES {
                let s = (start + i) % AGE_SLOTS;
                if self.slots[s]
                    .compare_exchange(0, packed, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    hint.set((s + 1) % AGE_SLOTS);
                    return s as u32;
                }
            }
            // Busy neighbourhood: next time start elsewhere.
            hint.set((start + AGE_PROBES * 7) % AGE_SLOTS);
            NO_SLOT
        });
        if slot == NO_SLOT {
            self.without_age.fetch_add(1, Ordering::Relaxed);
            self.routes[route_index]
                .without_slot
                .fetch_add(1, Ordering::Relaxed);
        }
        InFlightTicket {
            route: route_index as u16,
            slot,
        }
    }

    /// The request of `ticket` counts under `(method, route)` from now on (its route
    /// became known after it began): its age slot, or its place among the requests
    /// without one, moves there. It is not counted again as untracked: only a route the
    /// table cannot take, when its old one was taken, counts in `route_overflow`.
    pub(crate) fn move_to(
        &self,
        ticket: InFlightTicket,
        method: &str,
        route: &str,
    ) -> InFlightTicket {
        let old = usize::from(ticket.route);
        let route_index = match self.find(canonical_method(method), route, true) {
            Some(i) => i,
            None => {
                if old != OVERFLOW {
                    self.route_overflow.fetch_add(1, Ordering::Relaxed);
                }
                OVERFLOW
            }
        };
        match self.slots.get(ticket.slot as usize) {
            Some(s) => {
                let micros = s.load(Ordering::Relaxed) & MICROS_MASK;
                s.store(
                    ((route_index as u64 + 1) << MICROS_BITS) | micros,
                    Ordering::Relaxed,
                );
            }
            None => {
                self.routes[old]
                    .without_slot
                    .fetch_sub(1, Ordering::Relaxed);
                self.routes[route_index]
                    .without_slot
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        InFlightTicket {
            route: route_index as u16,
            slot: ticket.slot,
        }
    }

    /// Stops counting the request of `ticket`.
    pub(crate) fn leave(&self, ticket: InFlightTicket) {
        match self.slots.get(ticket.slot as usize) {
            Some(s) => s.store(0, Ordering::Relaxed),
            None => {
                if let Some(r) = self.routes.get(usize::from(ticket.route)) {
                    r.without_slot.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The table index of `(method, route)`, claiming a free entry when `insert` and
    /// the cap allows; `None` when absent (or the table is full).
    fn find(&self, method: &'static str, route: &str, insert: bool) -> Option<usize> {
        let mut i = (hash(method, route) as usize) % ROUTE_TABLE;
        for _ in 0..ROUTE_TABLE {
            let entry = &self.routes[i];
            match entry.key.get() {
                Some(k) if k.method == method && &*k.route == route => return Some(i),
                Some(_) => {}
                None if !insert => return None,
                None => {
                    if self.claimed_routes.load(Ordering::Relaxed) >= MAX_ROUTES {
                        return None;
                    }
                    let mine = entry
                        .key
                        .set(RouteKey {
                            method,
                            route: route.into(),
                        })
                        .is_ok();
                    if mine {
                        self.claimed_routes.fetch_add(1, Ordering::Relaxed);
                        return Some(i);
                    }
                    // Another thread took it: it may have taken it for this very route.
                    if entry
                        .key
                        .get()
                        .is_some_and(|k| k.method == method && &*k.route == route)
                    {
                        return Some(i);
                    }
                }
            }
            i = (i + 1) % ROUTE_TABLE;
        }
        None
    }

    fn report_at(&self, now: MonoTime) -> RequestsReport {
        let now_micros = (now.nanos_since(self.epoch) / 1000) & MICROS_MASK;
        let mut oldest: Vec<Option<u64>> = vec![None; self.routes.len()];
        let mut counts: Vec<u64> = self
            .routes
            .iter()
            .map(|r| r.without_slot.load(Ordering::Relaxed))
            .collect();
        for s in self.slots.iter() {
            let v = s.load(Ordering::Relaxed);
            if v == 0 {
                continue;
            }
            let route = (v >> MICROS_BITS) as usize - 1;
            let started = v & MICROS_MASK;
            if let (Some(o), Some(n)) = (oldest.get_mut(route), counts.get_mut(route)) {
                *o = Some(o.map_or(started, |prev| prev.min(started)));
                *n += 1;
            }
        }
        let mut routes: Vec<RouteReport> = self
            .routes
            .iter()
            .zip(oldest.into_iter().zip(counts))
            .filter_map(|(entry, (oldest, in_flight))| {
                let key = entry.key.get()?;
                (in_flight > 0).then(|| RouteReport {
                    method: key.method,
                    route: key.route.to_string(),
                    in_flight,
                    oldest_age_ms: oldest.map(|s| now_micros.saturating_sub(s) as f64 / 1000.0),
                })
            })
            .collect();
        routes.sort_by(|a, b| {
            b.in_flight
                .cmp(&a.in_flight)
                .then_with(|| a.route.cmp(&b.route))
        });
        RequestsReport {
            kill_switch: None,
            in_flight: routes.iter().map(|r| r.in_flight).sum(),
            routes,
            routes_tracked: self.claimed_routes.load(Ordering::Relaxed),
            route_cap: MAX_ROUTES,
            route_overflow: self.route_overflow.load(Ordering::Relaxed),
            requests_without_age: self.without_age.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("total", &self.total())
            .finish_non_exhaustive()
    }
}

/// Methods outside the standard set share one key, so clients cannot fill the table.
fn canonical_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

/// An Fx-style hash of the route eight bytes at a time, mixed with the method's
/// length and first byte (methods are canonical): a few multiplies, no allocation.
fn hash(method: &str, route: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = mix(
        0,
        (method.len() as u64) << 8 | u64::from(method.as_bytes().first().copied().unwrap_or(0)),
    );
    let mut chunks = route.as_bytes().chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = mix(h, u64::from_le_bytes(tail) ^ (route.len() as u64) << 56);
    // The table index takes the low bits: fold the well-mixed high bits in.
    h ^ (h >> 32)
}

impl Diag {
    /// The in-flight request tracker behind the `requests` provider ([`Diag::begin`]
    /// feeds it).
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET",
    ///     route: Some("/products/{id}"),
    ///     uri: "/products/7",
    ///     headers: &(),
    ///     peer: &|| None,
    /// });
    /// assert_eq!(diag.in_flight().in_flight("GET", "/products/{id}"), 1);
    /// let _ = guard.finish(200, &mut Vec::<(String, String)>::new());
    /// assert_eq!(diag.in_flight().total(), 0);
    /// ```
    pub fn in_flight(&self) -> &InFlight {
        &self.inner.in_flight
    }
}

/// Registers `requests`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    let weak = std::sync::Arc::downgrade(&diag.inner);
    let _ = diag.state().register("requests", move || {
        weak.upgrade().map(|inner| {
            let mut report = inner.in_flight.report_at(MonoTime::now());
            report.kill_switch = inner.kill_switch.in_flight_note(Instant::now());
            report
        })
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_per_route_and_reports_oldest_age() {
        let f = InFlight::new();
        let t = f.epoch;
        let a = f.enter("GET", "/orders/{id}", t + Duration::from_millis(100));
        let b = f.enter("GET", "/orders/{id}", t + Duration::from_millis(900));
        let c = f.enter("POST", "/orders", t + Duration::from_millis(500));
        let rep = f.report_at(t + Duration::from_millis(1100));
        assert_eq!(rep.in_flight, 3);
        assert_eq!(rep.routes[0].route, "/orders/{id}");
        assert_eq!(rep.routes[0].in_flight, 2);
        assert_eq!(rep.routes[0].oldest_age_ms, Some(1000.0));
        assert_eq!(rep.routes[1].method, "POST");
        assert_eq!(rep.routes[1].oldest_age_ms, Some(600.0));
        f.leave(a);
        let rep = f.report_at(t + Duration::from_millis(1100));
        let get = rep.routes.iter().find(|r| r.method == "GET").unwrap();
        assert_eq!(get.oldest_age_ms, Some(200.0), "the next oldest");
        f.leave(b);
        f.leave(c);
        let rep = f.report_at(t + Duration::from_millis(1100));
        assert_eq!(rep.in_flight, 0);
        assert!(rep.routes.is_empty());
        assert_eq!(rep.routes_tracked, 2);
    }

    #[test]
    fn route_cap_overflows_into_one_entry_and_odd_methods_fold() {
        let f = InFlight::new();
        let guards: Vec<_> = (0..MAX_ROUTES + 10)
            .map(|i| f.start("GET", &format!("/r{i}")))
            .collect();
        let g = f.start("BREW", "/pot");
        assert_eq!(
            f.in_flight("OTHER", "/pot"),
            0,
            "table is full: it overflowed"
        );
        let rep = f.report_at(MonoTime::now());
        assert_eq!(rep.routes_tracked, MAX_ROUTES);
        assert_eq!(rep.route_overflow, 11);
        assert_eq!(rep.in_flight, MAX_ROUTES as u64 + 11);
        let over = rep
            .routes
            .iter()
            .find(|r| r.route == "__overflow__")
            .unwrap();
        assert_eq!(over.in_flight, 11);
        drop(guards);
        drop(g);
        assert_eq!(f.total(), 0);
        let f = InFlight::new();
        let _g = f.start("BREW", "/pot");
        assert_eq!(f.in_flight("PROPFIND", "/pot"), 1);
    }

    #[test]
    fn remembered_routes_count_like_looked_up_ones() {
        let f = InFlight::new();
        let memo = AtomicU32::new(u32::MAX);
        let a = f.enter_remembered("GET", "/m", f.epoch, &memo);
        assert_ne!(memo.load(Ordering::Relaxed), u32::MAX, "remembered");
        let b = f.enter_remembered("GET", "/m", f.epoch, &memo);
        let c = f.enter("GET", "/m", f.epoch);
        assert_eq!(f.in_flight("GET", "/m"), 3);
        for t in [a, b, c] {
            f.leave(t);
        }
        assert_eq!(f.total(), 0);
        // Past the cap nothing is remembered: every request counts as an overflow.
        let full = InFlight::new();
        let guards: Vec<_> = (0..MAX_ROUTES)
            .map(|i| full.start("GET", &format!("/r{i}")))
            .collect();
        let memo = AtomicU32::new(u32::MAX);
        let over: Vec<_> = (0..3)
            .map(|_| full.enter_remembered("GET", "/late", full.epoch, &memo))
            .collect();
        assert_eq!(memo.load(Ordering::Relaxed), u32::MAX);
        assert_eq!(full.report_at(MonoTime::now()).route_overflow, 3);
        over.into_iter().for_each(|t| full.leave(t));
        drop(guards);
        assert_eq!(full.total(), 0);
    }

    #[test]
    fn more_requests_than_slots_are_counted_without_age() {
        let f = InFlight::new();
        let guards: Vec<_> = (0..AGE_SLOTS + 50).map(|_| f.start("GET", "/x")).collect();
        assert_eq!(f.in_flight("GET", "/x"), (AGE_SLOTS + 50) as u64);
        let rep = f.report_at(MonoTime::now());
        assert!(rep.requests_without_age >= 50);
        assert!(rep.routes[0].oldest_age_ms.is_some());
        drop(guards);
        assert!(f.slots.iter().all(|s| s.load(Ordering::Relaxed) == 0));
    }

    /// A request whose route became known later moves, and is not counted again as
    /// untracked (it was once, when all slots were taken).
    #[test]
    fn a_request_moved_to_its_route_is_not_counted_twice() {
        let f = InFlight::new();
        let full: Vec<_> = (0..AGE_SLOTS).map(|_| f.start("GET", "/x")).collect();
        let ticket = f.enter("POST", "unmatched", MonoTime::now());
        assert_eq!(f.untracked(), [0, 1], "no slot left");
        let ticket = f.move_to(ticket, "POST", "/a.B/Call");
        assert_eq!(f.untracked(), [0, 1], "not counted again");
        assert_eq!(f.in_flight("POST", "/a.B/Call"), 1);
        assert_eq!(f.in_flight("POST", "unmatched"), 0);
        f.leave(ticket);
        assert_eq!(f.in_flight("POST", "/a.B/Call"), 0);
        drop(full);
        // With a slot, the slot moves.
        let ticket = f.enter("POST", "unmatched", MonoTime::now());
        let ticket = f.move_to(ticket, "POST", "/a.B/Other");
        assert_eq!(f.in_flight("POST", "/a.B/Other"), 1);
        assert_eq!(f.in_flight("POST", "unmatched"), 0);
        let rep = f.report_at(MonoTime::now());
        assert!(
            rep.routes
                .iter()
                .any(|r| r.route == "/a.B/Other" && r.oldest_age_ms.is_some())
        );
        f.leave(ticket);
        assert!(f.slots.iter().all(|s| s.load(Ordering::Relaxed) == 0));
        assert_eq!(f.untracked(), [0, 1]);
    }

    #[tokio::test]
    async fn diag_begin_feeds_the_requests_provider() {
        use crate::request::RequestView;
        let diag = Diag::builder().build().unwrap();
        let view = |route| RequestView {
            method: "GET",
            route,
            uri: "/",
            headers: &(),
            peer: &|| None,
        };
        let a = diag.begin(&view(Some("/slow/{id}")));
        let b = diag.begin(&view(None));
        let v = diag
            .state()
            .collect("requests")
            .await
            .unwrap()
            .value
            .unwrap();
        assert_eq!(v["in_flight"], 2);
        let routes = v["routes"].as_array().unwrap();
        assert!(
            routes
                .iter()
                .any(|r| r["route"] == "/slow/{id}" && r["oldest_age_ms"].as_f64().is_some())
        );
        assert!(
            routes
                .iter()
                .any(|r| r["route"] == crate::request::UNMATCHED_ROUTE)
        );
        a.finish(200, &mut ());
        drop(b); // dropped unfinished: the client went away
        let v = diag
            .state()
            .collect("requests")
            .await
            .unwrap()
            .value
            .unwrap();
        assert_eq!(v["in_flight"], 0);
        assert_eq!(diag.in_flight().total(), 0);
    }

    /// While the kill switch is on the middleware tracks no request, and the
    /// view says so (in JSON and text) instead of showing an empty table as if all were
    /// well; once off, that requests begun before then are not listed.
    #[tokio::test]
    async fn the_requests_view_says_when_the_kill_switch_hides_requests() {
        let diag = Diag::builder().build().unwrap();
        let read = || async {
            diag.state()
                .collect("requests")
                .await
                .unwrap()
                .value
                .unwrap()
        };
        assert!(read().await.get("kill_switch").is_none());
        diag.set_disabled(true);
        let v = read().await;
        assert_eq!(v["kill_switch"]["disabled"], true);
        let note = v["kill_switch"]["note"].as_str().unwrap();
        assert!(
            note.starts_with("diag disabled since ")
                && note.ends_with(" ago): requests are not counted"),
            "{note}"
        );
        let text = crate::state::text::render("requests", &v).unwrap();
        assert!(text.contains(&format!("\nnote       {note}\n")), "{text}");
        diag.set_disabled(false);
        let v = read().await;
        assert_eq!(v["kill_switch"]["disabled"], false);
        let note = v["kill_switch"]["note"].as_str().unwrap();
        assert!(
            note.starts_with("diag enabled again at ")
                && note.ends_with("requests that began before then are not listed"),
            "{note}"
        );
        // A diag built disabled (DIAG_DISABLED=1) says so from the start.
        let off = Diag::builder().disabled(true).build().unwrap();
        let v = off
            .state()
            .collect("requests")
            .await
            .unwrap()
            .value
            .unwrap();
        assert_eq!(v["kill_switch"]["disabled"], true, "{v}");
    }

    #[test]
    fn concurrent_starts_on_new_routes_agree() {
        let f = std::sync::Arc::new(InFlight::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        let _g = f.start("GET", &format!("/r{}", i % 20));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(f.total(), 0);
        assert_eq!(f.claimed_routes.load(Ordering::Relaxed), 20);
    }
}
