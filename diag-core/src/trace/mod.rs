//! W3C trace context: the ids every request carries, and whether its trace is sampled.

mod context;
mod hex;
mod id;
mod sampler;

pub use context::{SpanId, TraceContext, TraceId, Traceparent};
pub use sampler::Sampler;
