//! The built-in `events` provider: the latest entries of the "what changed" timeline.

use std::sync::Arc;

use serde::Serialize;

use crate::Diag;
use crate::events::Event;

/// How many events the provider shows; `/debug/events` pages through all of them.
pub const EVENTS_SHOWN: usize = 50;

#[derive(Serialize)]
struct EventsReport {
    /// Latest first.
    latest: Vec<Event>,
    kept: usize,
    capacity: usize,
    evicted: u64,
    last_seq: u64,
}

/// Registers `events`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    let weak = Arc::downgrade(&diag.inner);
    let _ = diag.state().register("events", move || {
        weak.upgrade().map(|inner| {
            let events = &inner.events;
            let mut latest = events.since(0, None, EVENTS_SHOWN);
            latest.reverse();
            EventsReport {
                latest,
                kept: events.len(),
                capacity: events.capacity(),
                evicted: events.evicted(),
                last_seq: events.last_seq(),
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shows_latest_first_with_counts() {
        let diag = Diag::builder().events_capacity(3).build().unwrap();
        for i in 0..4 {
            diag.events().record("deploy", format!("v{i}"));
        }
        let v = diag.state().collect("events").await.unwrap().value.unwrap();
        assert_eq!(v["latest"][0]["message"], "v3");
        assert_eq!(v["latest"].as_array().unwrap().len(), 3);
        assert_eq!(v["evicted"], 2, "start and v0 went");
        assert_eq!(v["last_seq"], 5);
    }
}
