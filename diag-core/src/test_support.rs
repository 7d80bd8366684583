//! What the unit tests share.

use std::net::SocketAddr;

/// Header lines from `(name, value)` pairs.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A TCP peer at address `ip`.
pub(crate) fn peer(ip: &str) -> Option<SocketAddr> {
    Some(SocketAddr::new(ip.parse().unwrap(), 40000))
}

/// Serializes the unit tests that install `tracing` dispatchers or start debug requests:
/// tracing's callsite interest cache is process-wide, so such tests running side by side
/// would change each other's interest mid-test.
pub(crate) fn tracing_test_lock() -> parking_lot::MutexGuard<'static, ()> {
    static LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    LOCK.lock()
}
