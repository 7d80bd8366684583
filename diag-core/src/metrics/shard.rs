//! Which shard of a metric this thread writes to.
//!
//! Two cores updating one atomic take turns owning its cache line, which costs far
//! more than the update; and even alone, a locked read-modify-write costs several
//! times a plain store. So counters and histograms keep one shard per writer thread:
//!
//! - a thread claims one of [`exclusive_count`] global shard numbers on its first
//!   observation and gives it back when it exits. While it holds number `i`, it is the
//!   only writer of shard `i` of every metric, so it updates with plain atomic loads
//!   and stores (no lock prefix, no contention);
//! - threads that find every number taken (more live threads than numbers) share the
//!   last shard and update it with atomic read-modify-write operations.
//!
//! A metric allocates a shard on its first write from that shard's owner, so memory
//! follows the threads that actually write a series. A scrape sums all shards.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The most exclusive shard numbers: two per core up to 32 cores. A thread without one
/// writes the shared shard with locked read-modify-writes on lines every such thread
/// fights over: in the metrics bench, two threads there pay ~150 ns an observation
/// where two exclusive owners pay ~15 ns; a cap of 8 (until 2026-11-26) put every
/// worker beyond the eighth of a many-core service there. Bounds a series' memory: a
/// latency series takes about 1 KiB per shard that has been written, so at most
/// 65 KiB; in practice (hot series) × (threads that write them) × 1 KiB, since a shard
/// is allocated only when its owner first writes that series. The HTTP family at its
/// default cap of 2,000 series, every one written by 64 threads, would hold ~130 MiB.
///
/// ```
/// use std::sync::Arc;
/// use diag_core::metrics::{Counter, MAX_SHARDS};
/// let hits = Arc::new(Counter::new());
/// // More writer threads than shards: nothing is lost, the extra ones share a shard.
/// let threads: Vec<_> = (0..MAX_SHARDS + 4)
///     .map(|_| {
///         let hits = hits.clone();
///         std::thread::spawn(move || hits.inc())
///     })
///     .collect();
/// threads.into_iter().for_each(|t| t.join().unwrap());
/// assert_eq!(hits.get(), MAX_SHARDS as u64 + 4);
/// ```
pub const MAX_SHARDS: usize = 64;

static OWNED: [AtomicBool; MAX_SHARDS] = [const { AtomicBool::new(false) }; MAX_SHARDS];

const UNCLAIMED: usize = usize::MAX;
const SHARED: usize = usize::MAX - 1;

/// Gives the shard number back when the thread exits.
struct ThreadShard {
    index: Cell<usize>,
}

impl Drop for ThreadShard {
    fn drop(&mut self) {
        if let Some(owned) = OWNED.get(self.index.get()) {
            // Release: the next owner sees every value this thread stored.
            owned.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static THREAD_SHARD: ThreadShard = const { ThreadShard { index: Cell::new(UNCLAIMED) } };
}

/// Exclusive shard numbers on this machine: two per core (runtimes keep one worker per
/// core, plus room for blocking threads), at least 2, at most [`MAX_SHARDS`].
pub(crate) fn exclusive_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT
        .get_or_init(|| exclusive_for(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// [`exclusive_count`] on a machine with `cores` cores (as the standard library counts
/// them, cgroup CPU quotas included).
fn exclusive_for(cores: usize) -> usize {
    (2 * cores).clamp(2, MAX_SHARDS)
}

/// Shards per metric: the exclusive ones plus the shared one.
pub(crate) fn shard_count() -> usize {
    exclusive_count() + 1
}

/// Where this thread writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shard {
    /// Index into a metric's shards.
    pub(crate) index: usize,
    /// Whether this thread is the shard's only writer.
    pub(crate) exclusive: bool,
}

#[cold]
fn claim() -> usize {
    for (i, owned) in OWNED[..exclusive_count()].iter().enumerate() {
        // Acquire: see every value the previous owner stored.
        if owned
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return i;
        }
    }
    SHARED
}

/// This thread's shard.
#[inline]
pub(crate) fn this_thread() -> Shard {
    let shared = Shard {
        index: exclusive_count(),
        exclusive: false,
    };
    // `try_with`: during thread teardown the slot may be gone; share then.
    THREAD_SHARD
        .try_with(|t| {
            let mut i = t.index.get();
            if i == UNCLAIMED {
                i = claim();
                t.index.set(i);
            }
            if i == SHARED {
                shared
            } else {
                Shard {
                    index: i,
                    exclusive: true,
                }
            }
        })
        .unwrap_or(shared)
}

/// Pads a value to its own cache line so shards never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CacheLine<T>(pub(crate) T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_of_a_many_core_service_gets_its_own_shard() {
        // One runtime worker per core, and as many threads again (blocking pools,
        // background work) before any thread has to share.
        assert_eq!(exclusive_for(1), 2);
        assert_eq!(exclusive_for(2), 4);
        assert_eq!(exclusive_for(16), 32);
        assert_eq!(exclusive_for(32), 64);
        // Beyond 32 cores, one per core up to 64, then shared.
        assert_eq!(exclusive_for(96), MAX_SHARDS);
    }

    #[test]
    fn live_threads_hold_distinct_shards_and_give_them_back() {
        let mine = this_thread();
        let other = std::thread::spawn(this_thread).join().unwrap();
        if mine.exclusive && other.exclusive {
            assert_ne!(mine.index, other.index);
        }
        // The exited thread's number is free again: a new thread can claim one.
        let again = std::thread::spawn(this_thread).join().unwrap();
        assert!(again.index <= exclusive_count());
    }
}
