//! A monotonically increasing counter with an exemplar on its total.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::exemplar::{Exemplar, ExemplarSlot, ExemplarTime, newest};
use super::shard::{self, CacheLine};
use crate::request::with_current;
use crate::trace::TraceContext;

#[derive(Debug, Default)]
struct CounterCell {
    value: AtomicU64,
    exemplar: ExemplarSlot,
}

/// A counter: sharded per writer thread (see the `shard` module) so increments are
/// plain stores that never contend, each shard with its own exemplar slot (a scrape
/// shows the newest).
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let orders = diag.counter("orders_placed", "Orders placed.").unwrap();
/// orders.inc();
/// orders.inc_by(2);
/// assert_eq!(orders.get(), 3);
/// ```
#[derive(Debug)]
pub struct Counter {
    shards: Box<[OnceLock<Box<CacheLine<CounterCell>>>]>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter::new()
    }
}

impl Counter {
    /// A counter at zero.
    ///
    /// ```
    /// use diag_core::metrics::Counter;
    /// let retries = Counter::new();
    /// assert_eq!(retries.get(), 0);
    /// assert_eq!(retries.exemplar(), None);
    /// ```
    pub fn new() -> Counter {
        Counter {
            shards: (0..shard::shard_count()).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Adds one; the exemplar comes from the request this thread is working for, when
    /// its trace is sampled.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let refunds = diag.counter("refunds", "Refunds issued.").unwrap();
    /// refunds.inc();
    /// assert_eq!(refunds.get(), 1);
    /// // Outside a request there is no trace, so no exemplar.
    /// assert_eq!(refunds.exemplar(), None);
    /// ```
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`; exemplar as for [`Counter::inc`].
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let bytes = diag.counter("upload_bytes", "Bytes uploaded.").unwrap();
    /// bytes.inc_by(4096);
    /// bytes.inc_by(512);
    /// assert_eq!(bytes.get(), 4608);
    /// ```
    pub fn inc_by(&self, n: u64) {
        // The clock is read only when there is an exemplar to timestamp.
        match with_current(|s| s.map(|s| s.trace).filter(|t| t.sampled)) {
            Some(t) => self.add(n, Some((&t, ExemplarTime::now()))),
            None => self.add(n, None),
        }
    }

    /// Adds `n`, with `trace` as the exemplar when it is sampled, observed `at`.
    ///
    /// ```
    /// use diag_core::metrics::{Counter, ExemplarTime};
    /// use diag_core::trace::TraceContext;
    /// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let trace = TraceContext::from_traceparent(tp).unwrap();
    /// let c = Counter::new();
    /// c.inc_with_exemplar(3, &trace, ExemplarTime::now());
    /// assert_eq!(c.get(), 3);
    /// let exemplar = c.exemplar().unwrap();
    /// assert_eq!(exemplar.trace_id, trace.trace_id);
    /// assert_eq!(exemplar.value, 3.0);
    /// ```
    #[inline]
    pub fn inc_with_exemplar(&self, n: u64, trace: &TraceContext, at: ExemplarTime) {
        self.add(n, trace.sampled.then_some((trace, at)));
    }

    /// Adds `n`; `exemplar` is already known to be sampled.
    #[inline]
    pub(crate) fn add(&self, n: u64, exemplar: Option<(&TraceContext, ExemplarTime)>) {
        let shard = shard::this_thread();
        let Some(slot) = self.shards.get(shard.index) else {
            return;
        };
        let cell = &slot.get_or_init(Box::default).0;
        // Precision loss above 2^53 does not matter for an exemplar's value.
        let exemplar = exemplar.map(|(t, at)| (t, n as f64, at));
        if shard.exclusive {
            // The only writer: a plain load and store, no locked instruction.
            let v = cell.value.load(Ordering::Relaxed);
            cell.value.store(v.wrapping_add(n), Ordering::Relaxed);
            if let Some((t, v, at)) = exemplar {
                cell.exemplar.write_exclusive(t, v, at);
            }
        } else {
            cell.value.fetch_add(n, Ordering::Relaxed);
            if let Some((t, v, at)) = exemplar {
                cell.exemplar.write_shared(t, v, at);
            }
        }
    }

    /// The total.
    ///
    /// ```
    /// use diag_core::metrics::Counter;
    /// let c = Counter::new();
    /// c.inc();
    /// c.inc_by(2);
    /// assert_eq!(c.get(), 3);
    /// ```
    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .filter_map(OnceLock::get)
            .map(|c| c.0.value.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// The newest exemplar across shards.
    ///
    /// ```
    /// use diag_core::metrics::{Counter, ExemplarTime};
    /// use diag_core::trace::TraceContext;
    /// let tp = |s: &str| TraceContext::from_traceparent(s.as_bytes()).unwrap();
    /// let unsampled = tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    /// let sampled = tp("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    /// let c = Counter::new();
    /// c.inc_with_exemplar(1, &unsampled, ExemplarTime::now());
    /// assert_eq!(c.exemplar(), None);
    /// c.inc_with_exemplar(1, &sampled, ExemplarTime::now());
    /// assert_eq!(c.exemplar().unwrap().trace_id.to_string(), "0af7651916cd43dd8448eb211c80319c");
    /// ```
    pub fn exemplar(&self) -> Option<Exemplar> {
        self.shards
            .iter()
            .filter_map(OnceLock::get)
            .fold(None, |acc, c| newest(acc, c.0.exemplar.read()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{SpanId, TraceId};

    fn trace(sampled: bool) -> TraceContext {
        TraceContext {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([8; 8]),
            sampled,
        }
    }

    #[test]
    fn exemplar_only_for_sampled_traces() {
        let c = Counter::new();
        c.inc_with_exemplar(1, &trace(false), ExemplarTime::now());
        assert_eq!(c.exemplar(), None);
        c.add(1, None);
        assert_eq!(c.exemplar(), None);
        c.inc_with_exemplar(2, &trace(true), ExemplarTime::now());
        let e = c.exemplar().unwrap();
        assert_eq!((e.trace_id, e.value), (TraceId([7; 16]), 2.0));
        assert_eq!(c.get(), 4);
    }

    #[test]
    fn inc_takes_the_exemplar_from_the_current_request() {
        let c = Counter::new();
        let scope = crate::request::RequestScope::new(trace(true), None, None);
        c.inc();
        assert_eq!(c.exemplar(), None, "no request: no exemplar");
        {
            let _in = scope.enter();
            c.inc();
        }
        assert_eq!(c.exemplar().unwrap().span_id, SpanId([8; 8]));
    }

    #[test]
    fn concurrent_increments_all_count() {
        let c = std::sync::Arc::new(Counter::new());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..10_000).for_each(|_| c.inc_by(1)))
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(c.get(), 40_000);
    }
}
