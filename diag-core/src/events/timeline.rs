use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// One entry of the timeline.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.events().record("deploy", "v1.4.2 rolled out");
/// let e = diag.events().recent().pop().unwrap();
/// assert_eq!((e.seq, e.kind.as_str(), e.message.as_str()), (2, "deploy", "v1.4.2 rolled out"));
/// assert!(e.time_unix > 1.6e9);
/// assert_eq!(serde_json::to_value(&e).unwrap()["kind"], "deploy");
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
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
    /// Hides secrets a message carries (`deployed with DATABASE_URL=postgres://…`).
    secret_keys: crate::state::SecretKeys,
}

impl Events {
    /// The longest a kind or message may be; longer ones are cut.
    ///
    /// ```
    /// use diag_core::events::Events;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.events().record("deploy", "x".repeat(5000));
    /// let message = diag.events().recent().pop().unwrap().message;
    /// assert_eq!(message.len(), Events::MAX_TEXT + '…'.len_utf8());
    /// assert!(message.ends_with('…'));
    /// ```
    pub const MAX_TEXT: usize = 1024;

    pub(crate) fn new(capacity: usize) -> Self {
        Events {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            next_seq: AtomicU64::new(1),
            evicted: AtomicU64::new(0),
            secret_keys: crate::state::SecretKeys::default(),
        }
    }

    /// Events whose messages are redacted with `secret_keys` (the service's list).
    pub(crate) fn redacting(mut self, secret_keys: crate::state::SecretKeys) -> Self {
        self.secret_keys = secret_keys;
        self
    }

    /// Appends an event.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let version = "v1.4.2";
    /// diag.events().record("deploy", format!("{version} rolled out"));
    /// assert_eq!(diag.events().since(0, Some("deploy"), 1)[0].message, "v1.4.2 rolled out");
    /// ```
    pub fn record(&self, kind: &str, message: impl Into<String>) {
        let kind = truncate(kind.to_owned());
        let message = message.into();
        let message = truncate(self.secret_keys.redact_text(&message).unwrap_or(message));
        let time_unix = crate::clock::unix_now();
        let mut ring = self.ring.lock();
        // The sequence number is taken under the lock, so the ring stays in order.
        let event = Event {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            time_unix,
            kind,
            message,
        };
        if ring.len() == self.capacity {
            ring.pop_front();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        ring.push_back(event);
    }

    /// The events kept, oldest first.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.events().record("feature_flag", "new_cart on");
    /// let kinds: Vec<String> = diag.events().recent().into_iter().map(|e| e.kind).collect();
    /// assert_eq!(kinds, ["start", "feature_flag"]);
    /// ```
    pub fn recent(&self) -> Vec<Event> {
        self.ring.lock().iter().cloned().collect()
    }

    /// The kept events after sequence number `since` (all with `0`), of `kind` when
    /// given, oldest first, at most `limit` (the newest ones when more match).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap(); // records `start` as seq 1
    /// diag.events().record("deploy", "v2");
    /// diag.events().record("feature_flag", "x on");
    /// let after_start = diag.events().since(1, None, 100);
    /// assert_eq!(after_start.len(), 2);
    /// assert_eq!(diag.events().since(0, Some("deploy"), 100)[0].message, "v2");
    /// ```
    pub fn since(&self, since: u64, kind: Option<&str>, limit: usize) -> Vec<Event> {
        let ring = self.ring.lock();
        // Sequence numbers increase along the ring: skip the older part by search.
        let start = ring.partition_point(|e| e.seq <= since);
        let mut out: Vec<Event> = ring
            .range(start..)
            .rev()
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// The kept events after sequence number `since`, of `kind` when given, oldest
    /// first, at most `limit`: the *oldest* ones when more match, so that a poller that
    /// passes the last `seq` it got as the next `since` misses nothing ([`since`](Self::since)
    /// keeps the newest).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap(); // records `start` as seq 1
    /// for v in ["v2", "v3", "v4"] {
    ///     diag.events().record("deploy", v);
    /// }
    /// let page = diag.events().after(1, None, 2);
    /// assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    /// let next = diag.events().after(page[1].seq, None, 2);
    /// assert_eq!(next.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
    /// ```
    pub fn after(&self, since: u64, kind: Option<&str>, limit: usize) -> Vec<Event> {
        let ring = self.ring.lock();
        let start = ring.partition_point(|e| e.seq <= since);
        ring.range(start..)
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .take(limit)
            .cloned()
            .collect()
    }

    /// How many events the ring holds now.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert_eq!(diag.events().len(), 1); // `start`
    /// diag.events().record("deploy", "v2");
    /// assert_eq!(diag.events().len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.ring.lock().len()
    }

    /// Whether the ring is empty.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert!(!diag.events().is_empty()); // building records `start`
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence number of the latest event (0 before any).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let seen = diag.events().last_seq();
    /// diag.events().record("deploy", "v2");
    /// // Poll for what came after the last event seen:
    /// let new = diag.events().since(seen, None, 100);
    /// assert_eq!(new.len(), 1);
    /// assert_eq!(diag.events().last_seq(), seen + 1);
    /// ```
    pub fn last_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// How many events the ring keeps at most.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().events_capacity(50).build().unwrap();
    /// assert_eq!(diag.events().capacity(), 50);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many events were pushed out of the ring.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().events_capacity(3).build().unwrap();
    /// for i in 0..5 {
    ///     diag.events().record("tick", format!("{i}"));
    /// }
    /// assert_eq!(diag.events().len(), 3);
    /// assert_eq!(diag.events().evicted(), 3); // `start` and the first two ticks
    /// ```
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
        assert_eq!(e.last_seq(), 5);
        assert_eq!(e.since(3, None, 10).len(), 2);
        assert_eq!(
            e.since(0, None, 2)[0].message,
            "m3",
            "limit keeps the newest"
        );
    }

    #[test]
    fn since_filters_by_kind_and_keeps_order() {
        let e = Events::new(10);
        for i in 0..6 {
            e.record(if i % 2 == 0 { "a" } else { "b" }, format!("m{i}"));
        }
        let b: Vec<_> = e
            .since(2, Some("b"), 10)
            .into_iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(b, [4, 6]);
        assert!(e.since(6, None, 10).is_empty());
        assert!(e.since(0, Some("nope"), 10).is_empty());
    }
}
