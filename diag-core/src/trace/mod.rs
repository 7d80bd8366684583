//! W3C trace context: the ids every request carries, and whether its trace is sampled.

mod context;

pub use context::{SpanId, TraceContext, TraceId};
