//! The "what changed" timeline: start, configuration reloads, log-level changes, kill
//! switch flips, debug budget exhaustion, metric overflow, and whatever the service
//! records (feature flags, deploy markers).

mod timeline;

pub use timeline::{Event, Events};
