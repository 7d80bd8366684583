//! The `/debug/state` provider registry.
//!
//! Components register what they believe; on-call reads it as JSON. Each provider is
//! called in isolation: a panic becomes an error entry, a provider past its deadline
//! becomes a `timeout` entry and does not hold the response, and every entry reports
//! how long it took.

pub(crate) mod process;
mod registry;
mod report;

pub use registry::{RegisterError, StateRegistry};
pub use report::{ProviderReport, ProviderStatus};
