//! A value that goes up and down.

use std::sync::atomic::{AtomicU64, Ordering};

/// A gauge holding an `f64` (integers are exact up to 2^53). Not sharded: a gauge is
/// set or moved by a few code paths, and a sharded "set" would have no meaning.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let pool = diag.gauge("db_pool_in_use", "Connections checked out.").unwrap();
/// pool.inc();
/// pool.add(2.0);
/// pool.dec();
/// assert_eq!(pool.get(), 2.0);
/// pool.set(0.5);
/// assert_eq!(pool.get(), 0.5);
/// ```
#[derive(Debug, Default)]
pub struct Gauge {
    bits: AtomicU64,
}

impl Gauge {
    /// A gauge at zero.
    ///
    /// ```
    /// use diag_core::metrics::Gauge;
    /// let g = Gauge::new();
    /// assert_eq!(g.get(), 0.0);
    /// ```
    pub fn new() -> Gauge {
        Gauge::default()
    }

    /// Sets the value.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let temp = diag.gauge("disk_free_ratio", "Free share of the data disk.").unwrap();
    /// temp.set(0.42);
    /// assert_eq!(temp.get(), 0.42);
    /// ```
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    ///
    /// ```
    /// use diag_core::metrics::Gauge;
    /// let g = Gauge::new();
    /// g.add(2.5);
    /// g.add(-1.0);
    /// assert_eq!(g.get(), 1.5);
    /// ```
    pub fn add(&self, delta: f64) {
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + delta).to_bits())
            });
    }

    /// Adds one.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let sessions = diag.gauge("ws_sessions", "Open websocket sessions.").unwrap();
    /// sessions.inc();
    /// sessions.inc();
    /// assert_eq!(sessions.get(), 2.0);
    /// ```
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    ///
    /// ```
    /// use diag_core::metrics::Gauge;
    /// let workers_busy = Gauge::new();
    /// workers_busy.inc();
    /// workers_busy.dec();
    /// assert_eq!(workers_busy.get(), 0.0);
    /// ```
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    ///
    /// ```
    /// use diag_core::metrics::Gauge;
    /// let g = Gauge::new();
    /// g.set(7.0);
    /// assert_eq!(g.get(), 7.0);
    /// ```
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_inc_dec_balance() {
        let g = std::sync::Arc::new(Gauge::new());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        g.inc();
                        g.dec();
                    }
                    g.inc();
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(g.get(), 4.0);
    }
}
