//! The event kinds diag records itself, so every part spells them the same way.

/// The [`Diag`](crate::Diag) was built.
pub const START: &str = "start";
/// The service reloaded its configuration.
pub const CONFIG_RELOAD: &str = "config_reload";
/// The runtime log level changed (or its TTL ran out).
pub const LOG_LEVEL: &str = "log_level";
/// The kill switch was turned on or off.
pub const KILL_SWITCH: &str = "kill_switch";
/// Debug requests are being refused: the budget ran out.
pub const DEBUG_BUDGET_EXHAUSTED: &str = "debug_budget_exhausted";
/// A metric family hit its label-set cap; further label sets fold into `__overflow__`.
pub const METRIC_OVERFLOW: &str = "metric_overflow";
