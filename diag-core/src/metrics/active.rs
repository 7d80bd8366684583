//! The `http_server_active_requests` value of one series: goes up when a request
//! starts, down when it ends, on every request.
//!
//! A [`Gauge`](super::Gauge) holds an `f64` and moves with a compare-and-swap loop: two
//! locked instructions a request, on a cache line every core's requests of that route
//! share. This count lives in the per-thread shards counters use (a plain load and
//! store for a thread with its own shard); a request that starts on one thread and
//! ends on another leaves one shard above and one below, and the sum is right.

use super::Counter;

/// Requests in flight of one `(method, route)` series.
#[derive(Debug, Default)]
pub(crate) struct ActiveCount(Counter);

impl ActiveCount {
    pub(crate) fn inc(&self) {
        self.0.add(1, None);
    }

    pub(crate) fn dec(&self) {
        // Two's complement: adding `u64::MAX` subtracts one, and the shards' wrapping sum
        // read as `i64` is the count.
        self.0.add(u64::MAX, None);
    }

    pub(crate) fn get(&self) -> f64 {
        self.0.get() as i64 as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_across_threads() {
        let count = std::sync::Arc::new(ActiveCount::default());
        // Up on one thread, down on another, as requests that move between workers.
        let up = {
            let count = count.clone();
            std::thread::spawn(move || (0..1000).for_each(|_| count.inc()))
        };
        up.join().unwrap();
        assert_eq!(count.get(), 1000.0);
        let down = {
            let count = count.clone();
            std::thread::spawn(move || (0..998).for_each(|_| count.dec()))
        };
        down.join().unwrap();
        assert_eq!(count.get(), 2.0);
        count.dec();
        count.dec();
        count.dec();
        assert_eq!(
            count.get(),
            -1.0,
            "a negative sum reads as negative, not 2^64 - 1"
        );
    }
}
