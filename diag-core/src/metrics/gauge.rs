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
    pub fn new() -> Gauge {
        Gauge::default()
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: f64) {
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + delta).to_bits())
            });
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
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
