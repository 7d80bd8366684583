use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

/// One entry of the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Increasing sequence number, from 1.
    pub seq: u64,
    /// Seconds since the Unix epoch.
    pub time_unix: f64,
    /// A short machine-readable kind, e.g. `start`, `log_level`, `deploy`.
    pub kind: String,
    /// What happened, for a person.
    pub message: String,
}

/// A bounded ring of [`Event`]s; the oldest go first, and are counted.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.events().record("feature_flag", "new_cart on for 10%");
/// let recent = diag.events().recent();
/// assert_eq!(recent.last().unwrap().kind, "feature_flag");
/// ```
#[derive(Debug)]
pub struct Events {
    ring: Mutex<VecDeque<Event>>,
    capacity: usize,
    next_seq: AtomicU64,
    evicted: AtomicU64,
}

impl Events {
    /// The longest a kind or message may be; longer ones are cut.
    pub const MAX_TEXT: usize = 1024;

    pub(crate) fn new(capacity: usize) -> Self {
        Events {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            next_seq: AtomicU64::new(1),
            evicted: AtomicU64::new(0),
        }
    }

    /// Appends an event.
    pub fn record(&self, kind: &str, message: impl Into<String>) {
        let event = Event {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            time_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            kind: truncate(kind.to_owned()),
            message: truncate(message.into()),
        };
        let mut ring = self.ring.lock();
        if ring.len() == self.capacity {
            ring.pop_front();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        ring.push_back(event);
    }

    /// The events kept, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.ring.lock().iter().cloned().collect()
    }

    /// How many events were pushed out of the ring.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > Events::MAX_TEXT {
        let mut cut = Events::MAX_TEXT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_evicts_oldest_and_counts() {
        let e = Events::new(3);
        for i in 0..5 {
            e.record("k", format!("m{i}"));
        }
        let r = e.recent();
        assert_eq!(
            r.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["m2", "m3", "m4"]
        );
        assert_eq!(r[0].seq, 3);
        assert_eq!(e.evicted(), 2);
    }
}
