//! Whether a request runs in diagnostic mode.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::DebugLevel;
use super::credential::RejectReason;
use crate::{Diag, HeaderView};

/// The answer to "does this request run in diagnostic mode?". Whatever it is, the
/// request is served normally: diag never fails a request because of `X-Debug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No debug header: the normal, free path.
    NotRequested,
    /// Diagnostic mode at this level; one unit of budget was taken. Follow with
    /// [`Diag::start_debug`](crate::Diag::start_debug).
    Debug(DebugLevel),
    /// The credential was refused (counted and, rate-limited, logged).
    Rejected(RejectReason),
    /// The credential was good but the budget is spent.
    BudgetExhausted,
    /// The kill switch is on.
    Disabled,
}

impl Decision {
    /// Whether the request runs in diagnostic mode.
    pub fn is_debug(&self) -> bool {
        matches!(self, Decision::Debug(_))
    }

    /// The `X-Debug-Status` header telling the client why it got no diagnostics
    /// (`budget-exhausted`, `rejected; reason=expired`, `disabled`), for every outcome
    /// but [`Decision::NotRequested`] and [`Decision::Debug`].
    ///
    /// ```
    /// use diag_core::debug::Decision;
    /// assert_eq!(
    ///     Decision::BudgetExhausted.status_header(),
    ///     Some(("x-debug-status", "budget-exhausted"))
    /// );
    /// assert_eq!(Decision::NotRequested.status_header(), None);
    /// ```
    pub fn status_header(&self) -> Option<(&'static str, &'static str)> {
        let value = match self {
            Decision::NotRequested | Decision::Debug(_) => return None,
            Decision::BudgetExhausted => "budget-exhausted",
            Decision::Disabled => "disabled",
            Decision::Rejected(RejectReason::Oversized) => "rejected; reason=oversized",
            Decision::Rejected(RejectReason::Malformed) => "rejected; reason=malformed",
            Decision::Rejected(RejectReason::Invalid) => "rejected; reason=invalid",
            Decision::Rejected(RejectReason::Expired) => "rejected; reason=expired",
            Decision::Rejected(RejectReason::UntrustedNetwork) => {
                "rejected; reason=untrusted_network"
            }
        };
        Some(("x-debug-status", value))
    }
}

impl Diag {
    /// Decides whether a request runs in diagnostic mode, from its headers and TCP peer.
    /// Without the debug header this is one header lookup.
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, Decision, RejectReason};
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let ask = |v: &str| vec![("x-debug".to_owned(), v.to_owned())];
    /// assert_eq!(diag.debug_decision(&ask("s3cret"), None), Decision::Debug(DebugLevel::Debug));
    /// assert_eq!(diag.debug_decision(&ask("guess"), None), Decision::Rejected(RejectReason::Invalid));
    /// assert_eq!(diag.debug_decision(&(), None), Decision::NotRequested);
    /// assert_eq!(diag.debug_mode().rejected(RejectReason::Invalid), 1);
    /// ```
    pub fn debug_decision(&self, headers: &dyn HeaderView, peer: Option<SocketAddr>) -> Decision {
        let mode = &self.inner.debug;
        let Some(value) = headers.get(&mode.header) else {
            return Decision::NotRequested;
        };
        if self.is_disabled() {
            return Decision::Disabled;
        }
        if let Err(reason) = mode
            .policy(&self.inner.trusted_proxies)
            .check(value, headers, peer)
        {
            mode.rejections.record(reason);
            return Decision::Rejected(reason);
        }
        if !mode.budget().try_acquire() {
            if mode.budget_event.ready() {
                let message = format!(
                    "debug budget exhausted ({}/s, burst {}); {} refused so far",
                    mode.budget().per_second(),
                    mode.budget().burst(),
                    mode.budget().exhausted()
                );
                tracing::warn!("diag: {message}");
                self.events().record("debug_budget_exhausted", message);
            }
            return Decision::BudgetExhausted;
        }
        mode.activated.fetch_add(1, Ordering::Relaxed);
        let trace = headers
            .get("x-debug-level")
            .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"trace"));
        Decision::Debug(if trace {
            DebugLevel::Trace
        } else {
            DebugLevel::Debug
        })
    }
}
