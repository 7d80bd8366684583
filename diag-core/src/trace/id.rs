//! Random trace and span ids from a fast thread-local generator.
//!
//! Ids must be unpredictable enough not to collide across services, not secret: a
//! per-thread wyrand seeded from std's randomly keyed `RandomState` gives that at a few
//! nanoseconds per id, with no lock, no syscall and no new dependency.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::{SpanId, TraceId};

thread_local! {
    /// 0 until this thread's first id; a `const` initializer keeps every access free of
    /// the lazy-initialization check (three ids a request).
    static STATE: Cell<u64> = const { Cell::new(0) };
}

fn seed() -> u64 {
    // Each RandomState carries fresh random keys; hashing the thread id mixes them.
    RandomState::new().hash_one(std::thread::current().id()) | 1
}

/// The next 64 random bits of this thread's generator (wyrand).
pub(crate) fn next_u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = seed();
        }
        let x = x.wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    })
}

fn non_zero() -> u64 {
    loop {
        let v = next_u64();
        if v != 0 {
            return v;
        }
    }
}

impl TraceId {
    /// A new random trace id (never all zeros, which W3C reserves as invalid).
    ///
    /// ```
    /// use diag_core::trace::TraceId;
    /// let (a, b) = (TraceId::random(), TraceId::random());
    /// assert_ne!(a, b);
    /// assert_ne!(a.0, [0; 16]);
    /// assert_eq!(a.to_string().len(), 32);
    /// ```
    pub fn random() -> TraceId {
        let hi = next_u64();
        let lo = non_zero();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_be_bytes());
        b[8..].copy_from_slice(&lo.to_be_bytes());
        TraceId(b)
    }
}

impl SpanId {
    /// A new random span id (never all zeros).
    ///
    /// ```
    /// use diag_core::trace::SpanId;
    /// let id = SpanId::random();
    /// assert_ne!(id.0, [0; 8]);
    /// assert_eq!(id.to_string().len(), 16);
    /// ```
    pub fn random() -> SpanId {
        SpanId(non_zero().to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = TraceId::random();
            assert_ne!(t.0, [0; 16]);
            assert!(seen.insert(t), "duplicate trace id");
            assert_ne!(SpanId::random().0, [0; 8]);
        }
    }

    #[test]
    fn threads_get_different_streams() {
        let a = std::thread::spawn(TraceId::random).join().unwrap();
        let b = std::thread::spawn(TraceId::random).join().unwrap();
        assert_ne!(a, b);
    }
}
