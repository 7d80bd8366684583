//! Which shard of a metric this thread writes to.
//!
//! Two cores incrementing one atomic take turns owning its cache line, which costs far
//! more than the increment. So counters and histograms keep one cell per shard, each on
//! its own cache line, and a scrape sums them. Threads get shard numbers round-robin
//! on first use; with as many shards as cores (capped at [`MAX_SHARDS`] to bound
//! memory), the runtime's worker threads rarely share one.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most shards a metric has: 4 bounds a latency series to about 4 KiB however many
/// cores the machine has.
pub const MAX_SHARDS: usize = 4;

thread_local! {
    static THREAD_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The number of shards per metric on this machine: cores rounded up to a power of
/// two, at most [`MAX_SHARDS`].
pub(crate) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .next_power_of_two()
            .min(MAX_SHARDS)
    })
}

/// This thread's shard among `count` (a power of two).
#[inline]
pub(crate) fn this_thread(count: usize) -> usize {
    THREAD_SHARD.with(|s| {
        let mut v = s.get();
        if v == usize::MAX {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            v = NEXT.fetch_add(1, Ordering::Relaxed);
            s.set(v);
        }
        v & (count - 1)
    })
}

/// Pads a value to its own cache line so shards never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CacheLine<T>(pub(crate) T);
