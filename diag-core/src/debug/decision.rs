//! Whether a request runs in diagnostic mode.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::DebugLevel;
use super::credential::RejectReason;
use crate::{Diag, HeaderView};

/// The answer to "does this request run in diagnostic mode?". Whatever it is, the
/// request is served normally: diag never fails a request because of `X-Debug`.
///
/// ```
/// use diag_core::debug::Decision;
/// let diag = diag_core::Diag::builder().token("s3cret").debug_budget(1.0, 1).build().unwrap();
/// let ask = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// assert!(diag.debug_decision(&ask, None).is_debug());
/// // The burst of one is spent: the request is served normally, and told why.
/// let spent = diag.debug_decision(&ask, None);
/// assert_eq!(spent, Decision::BudgetExhausted);
/// assert_eq!(spent.status_header(), Some(("x-debug-status", "budget-exhausted")));
/// diag.set_disabled(true);
/// assert_eq!(diag.debug_decision(&ask, None), Decision::Disabled);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The credential was good but the most debug requests allowed at once are running
    /// ([`DiagBuilder::debug_max_in_flight`](crate::DiagBuilder::debug_max_in_flight)).
    Busy,
    /// The kill switch is on. Only a direct caller of
    /// [`Diag::debug_decision`](crate::Diag::debug_decision) sees it: the shipped
    /// middleware passes a request straight through then, without asking, and adds no
    /// header at all.
    Disabled,
}

impl Decision {
    /// Whether the request runs in diagnostic mode.
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, Decision};
    /// assert!(Decision::Debug(DebugLevel::Trace).is_debug());
    /// assert!(!Decision::BudgetExhausted.is_debug());
    /// assert!(!Decision::NotRequested.is_debug());
    /// ```
    pub fn is_debug(&self) -> bool {
        matches!(self, Decision::Debug(_))
    }

    /// The `X-Debug-Status` header telling the client why it got no diagnostics
    /// (`budget-exhausted`, `busy`, `rejected; reason=expired`, `disabled`), for every outcome
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
            Decision::Busy => "busy",
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
        self.decide_debug(headers, &|| peer)
    }

    /// [`debug_decision`](Self::debug_decision) with the peer found only if the debug
    /// header is there.
    pub(crate) fn decide_debug(
        &self,
        headers: &dyn HeaderView,
        peer: &dyn Fn() -> Option<SocketAddr>,
    ) -> Decision {
        let mode = &self.inner.debug;
        let Some(value) = headers.get(&mode.header) else {
            return Decision::NotRequested;
        };
        if self.is_disabled() {
            return Decision::Disabled;
        }
        if let Err(reason) = mode
            .policy(&self.inner.trusted_proxies)
            .check(value, headers, peer())
        {
            mode.rejections.record(reason, peer);
            return Decision::Rejected(reason);
        }
        // Before the budget: a request refused here spends none of it.
        if mode.in_flight.load(Ordering::Relaxed) >= mode.max_in_flight {
            mode.busy.fetch_add(1, Ordering::Relaxed);
            return Decision::Busy;
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

#[cfg(test)]
mod tests {
    use crate::test_support::{headers, peer};
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::debug::{MAX_CREDENTIAL_BYTES, sign_credential};

    #[test]
    fn the_peer_is_looked_up_only_when_debug_is_asked_for() {
        let diag = Diag::builder().build().unwrap();
        let lookups = AtomicUsize::new(0);
        let find_peer = || {
            lookups.fetch_add(1, Ordering::Relaxed);
            peer("127.0.0.1")
        };
        let view = |headers| crate::request::RequestView {
            method: "GET",
            route: None,
            uri: "/",
            headers,
            peer: &find_peer,
        };
        let plain = headers(&[("accept", "*/*")]);
        diag.begin(&view(&plain)).finish(200, &mut ());
        assert_eq!(lookups.load(Ordering::Relaxed), 0);
        // `X-Debug: 1` is judged by the peer (loopback is trusted by default).
        let asking = headers(&[("x-debug", "1")]);
        let guard = diag.begin(&view(&asking));
        assert_eq!(lookups.load(Ordering::Relaxed), 1);
        assert!(
            guard.debug_id().is_some(),
            "loopback peer asked with X-Debug: 1"
        );
        let _ = guard.finish(200, &mut ());
    }

    fn now() -> u64 {
        crate::clock::unix_now_secs()
    }

    #[test]
    fn every_rejection_reason_is_counted() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let out = peer("203.0.113.9");
        let lo = peer("127.0.0.1");
        let ask = |v: &str, p| diag.debug_decision(&headers(&[("x-debug", v)]), p);
        let expired = sign_credential(b"tok", now() - 30);
        let cases: [(&str, Option<SocketAddr>, Decision); 8] = [
            ("wrong", out, Decision::Rejected(RejectReason::Invalid)),
            ("wrong-again", lo, Decision::Rejected(RejectReason::Invalid)),
            (&expired, out, Decision::Rejected(RejectReason::Expired)),
            (
                "v1.garbage",
                out,
                Decision::Rejected(RejectReason::Malformed),
            ),
            ("\u{1}", out, Decision::Rejected(RejectReason::Malformed)),
            (
                &"x".repeat(MAX_CREDENTIAL_BYTES + 1),
                out,
                Decision::Rejected(RejectReason::Oversized),
            ),
            ("1", out, Decision::Rejected(RejectReason::UntrustedNetwork)),
            ("1", lo, Decision::Debug(DebugLevel::Debug)),
        ];
        for (value, p, want) in cases {
            assert_eq!(ask(value, p), want, "{value:?}");
        }
        let mode = diag.debug_mode();
        let counts: Vec<u64> = RejectReason::ALL
            .iter()
            .map(|r| mode.rejected(*r))
            .collect();
        // oversized, malformed, invalid, expired, untrusted_network
        assert_eq!(counts, [1, 2, 2, 1, 1]);
        assert_eq!(mode.activated(), 1);
        assert_eq!(
            ask("wrong", out).status_header(),
            Some(("x-debug-status", "rejected; reason=invalid"))
        );
    }

    #[test]
    fn token_level_kill_switch_and_header_name() {
        let diag = Diag::builder()
            .token("tok")
            .debug_header("X-Diag-Me")
            .build()
            .unwrap();
        let h = headers(&[("x-diag-me", "tok"), ("x-debug-level", "TRACE")]);
        assert_eq!(
            diag.debug_decision(&h, None),
            Decision::Debug(DebugLevel::Trace)
        );
        // The default header name means nothing now.
        assert_eq!(
            diag.debug_decision(&headers(&[("x-debug", "tok")]), None),
            Decision::NotRequested
        );
        diag.set_disabled(true);
        assert_eq!(diag.debug_decision(&h, None), Decision::Disabled);
        assert_eq!(
            diag.debug_decision(&h, None).status_header(),
            Some(("x-debug-status", "disabled"))
        );
        assert_eq!(diag.debug_mode().activated(), 1);
    }

    #[test]
    fn a_separate_debug_token_replaces_the_endpoint_token() {
        let diag = Diag::builder()
            .token("endpoint")
            .debug_token("debugger")
            .build()
            .unwrap();
        let ask = |v: &str| diag.debug_decision(&headers(&[("x-debug", v)]), None);
        assert!(ask("debugger").is_debug());
        assert_eq!(ask("endpoint"), Decision::Rejected(RejectReason::Invalid));
        let minted = diag.mint_debug_credential(Duration::from_secs(60)).unwrap();
        assert!(ask(&minted).is_debug());
        let by_endpoint_key = sign_credential(b"endpoint", now() + 60);
        assert_eq!(
            ask(&by_endpoint_key),
            Decision::Rejected(RejectReason::Invalid)
        );
        assert_eq!(
            diag.mint_debug_credential(Duration::from_secs(2 * 86_400)),
            Err(crate::debug::MintError::TtlTooLong)
        );
        let keyless = Diag::builder().build().unwrap();
        assert_eq!(
            keyless.mint_debug_credential(Duration::from_secs(60)),
            Err(crate::debug::MintError::NoKey)
        );
    }

    #[test]
    fn budget_grants_exactly_burst_to_a_concurrent_flood() {
        let diag = Diag::builder()
            .token("tok")
            .debug_budget(0.001, 20)
            .build()
            .unwrap();
        let h = headers(&[("x-debug", "tok")]);
        let (granted, exhausted) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let start = std::sync::Barrier::new(20);
        std::thread::scope(|s| {
            for _ in 0..20 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..10 {
                        match diag.debug_decision(&h, None) {
                            Decision::Debug(_) => granted.fetch_add(1, Ordering::Relaxed),
                            Decision::BudgetExhausted => exhausted.fetch_add(1, Ordering::Relaxed),
                            other => panic!("unexpected {other:?}"),
                        };
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::Relaxed), 20);
        assert_eq!(exhausted.load(Ordering::Relaxed), 180);
        assert_eq!(diag.debug_mode().budget().exhausted(), 180);
        assert_eq!(diag.debug_mode().activated(), 20);
        let events = diag.events().recent();
        let budget_events = events
            .iter()
            .filter(|e| e.kind == "debug_budget_exhausted")
            .count();
        assert_eq!(budget_events, 1, "once per interval, not per request");
        assert_eq!(
            Decision::BudgetExhausted.status_header(),
            Some(("x-debug-status", "budget-exhausted"))
        );
    }

    #[test]
    fn bad_settings_are_refused_at_build() {
        assert!(Diag::builder().debug_budget(0.0, 5).build().is_err());
        assert!(Diag::builder().debug_budget(1.0, 0).build().is_err());
        assert!(Diag::builder().debug_networks(["nope"]).build().is_err());
        assert!(Diag::builder().debug_header("bad header").build().is_err());
        // An empty network list: `X-Debug: 1` is honoured from nowhere.
        let diag = Diag::builder()
            .debug_networks(Vec::<String>::new())
            .build()
            .unwrap();
        assert_eq!(
            diag.debug_decision(&headers(&[("x-debug", "1")]), peer("127.0.0.1")),
            Decision::Rejected(RejectReason::UntrustedNetwork)
        );
    }
}
