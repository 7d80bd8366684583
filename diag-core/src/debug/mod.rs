//! Per-request diagnostic mode: what one debug request collects while it runs.

mod session;

pub use session::{DebugLevel, DebugSession, LogLine, SpanTiming};
