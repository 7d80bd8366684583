//! The sampling decision: which requests start a recorded trace.
//!
//! A request that arrives with a valid `traceparent` keeps its caller's trace id and
//! sampled flag (parent-based, as OpenTelemetry's default sampler does), and gets a span
//! id of its own. Any other request starts a new trace, sampled with the configured
//! ratio. The decision is a function of the trace id (its low 8 bytes against a
//! threshold, like OpenTelemetry's `TraceIdRatioBased`), so services that see the same
//! trace id and use the same ratio agree about it. A trace id reaches another service
//! only through `traceparent`: a tracer in the same process that starts its own traces
//! (an OpenTelemetry SDK) disagrees unless it continues diag's (README, "Beside an
//! OpenTelemetry SDK").

use super::{SpanId, TraceContext, TraceId};
use crate::HeaderView;

/// Decides which new traces are sampled.
///
/// ```
/// use diag_core::trace::Sampler;
/// let always = Sampler::new(1.0);
/// let t = always.trace_for(&(), false);
/// assert!(t.sampled);
/// // A caller's decision wins.
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
/// let headers = vec![("traceparent".to_owned(), tp.to_owned())];
/// let t = always.trace_for(&headers, false);
/// assert!(!t.sampled);
/// assert_eq!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Sampler {
    ratio: f64,
    /// A new trace is sampled when its low 64 bits are below this; `u64::MAX` with
    /// `always` covers ratio 1.0 exactly.
    threshold: u64,
    always: bool,
}

impl Sampler {
    /// Samples `ratio` of new traces (clamped to `0.0..=1.0`; NaN counts as 0).
    ///
    /// ```
    /// use diag_core::trace::Sampler;
    /// assert_eq!(Sampler::new(0.25).ratio(), 0.25);
    /// assert_eq!(Sampler::new(7.0).ratio(), 1.0);
    /// assert_eq!(Sampler::new(f64::NAN).ratio(), 0.0);
    /// ```
    pub fn new(ratio: f64) -> Sampler {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        Sampler {
            ratio,
            // f64 → u64 casts saturate, so 1.0 would give u64::MAX; `always` makes
            // 1.0 exact even for the one id equal to u64::MAX.
            threshold: (ratio * u64::MAX as f64) as u64,
            always: ratio >= 1.0,
        }
    }

    /// The configured ratio.
    ///
    /// ```
    /// use diag_core::trace::Sampler;
    /// assert_eq!(Sampler::new(0.1).ratio(), 0.1);
    /// assert_eq!(Sampler::default().ratio(), 1.0);
    /// ```
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// Whether a new trace with this id is sampled. `force` (a debug-mode request)
    /// always samples.
    ///
    /// ```
    /// use diag_core::trace::{Sampler, TraceId};
    /// let half = Sampler::new(0.5);
    /// // The decision reads the id's low 8 bytes: the same id, the same answer everywhere.
    /// assert!(half.should_sample(&TraceId([0; 16]), false));
    /// assert!(!half.should_sample(&TraceId([0xff; 16]), false));
    /// // A debug request's trace is always sampled.
    /// assert!(Sampler::new(0.0).should_sample(&TraceId([0xff; 16]), true));
    /// ```
    pub fn should_sample(&self, trace_id: &TraceId, force: bool) -> bool {
        if force || self.always {
            return true;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id.0[8..]);
        u64::from_be_bytes(low) < self.threshold
    }

    /// The trace context for an incoming request: the caller's trace (same id and
    /// sampled flag, a new span id) when `headers` carry a valid `traceparent`,
    /// otherwise a new trace sampled by ratio. `force_sample` marks the request as
    /// sampled either way (debug-mode requests: their trace must exist).
    ///
    /// ```
    /// use diag_core::trace::Sampler;
    /// let never = Sampler::new(0.0);
    /// assert!(!never.trace_for(&(), false).sampled);
    /// assert!(never.trace_for(&(), true).sampled, "debug requests are always sampled");
    /// let headers = vec![(
    ///     "traceparent".to_owned(),
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    /// )];
    /// let continued = never.trace_for(&headers, false);
    /// assert!(continued.sampled, "the caller's decision wins");
    /// assert_ne!(continued.span_id.to_string(), "00f067aa0ba902b7", "a span of its own");
    /// ```
    pub fn trace_for(&self, headers: &dyn HeaderView, force_sample: bool) -> TraceContext {
        self.context_for(headers, force_sample).0
    }

    /// [`trace_for`](Self::trace_for), with the caller's span id when the request
    /// continues its trace.
    pub(crate) fn context_for(
        &self,
        headers: &dyn HeaderView,
        force_sample: bool,
    ) -> (TraceContext, Option<SpanId>) {
        if let Some(parent) = headers
            .get("traceparent")
            .and_then(TraceContext::from_traceparent)
        {
            let own = TraceContext {
                trace_id: parent.trace_id,
                span_id: SpanId::random(),
                sampled: parent.sampled || force_sample,
            };
            return (own, Some(parent.span_id));
        }
        let trace_id = TraceId::random();
        let own = TraceContext {
            trace_id,
            span_id: SpanId::random(),
            sampled: self.should_sample(&trace_id, force_sample),
        };
        (own, None)
    }
}

impl Default for Sampler {
    /// Samples every new trace, like OpenTelemetry's default `parentbased_always_on`.
    fn default() -> Self {
        Sampler::new(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(tp: &str) -> Vec<(String, String)> {
        vec![("traceparent".to_owned(), tp.to_owned())]
    }

    #[test]
    fn honours_a_valid_traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let never = Sampler::new(0.0);
        let t = never.trace_for(&headers(tp), false);
        assert_eq!(t.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            t.span_id.to_string(),
            "00f067aa0ba902b7",
            "a span of our own"
        );
        assert!(
            t.sampled,
            "the caller sampled it; ratio 0 must not undo that"
        );

        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(
            !Sampler::new(1.0)
                .trace_for(&headers(unsampled), false)
                .sampled
        );
        assert!(
            Sampler::new(1.0)
                .trace_for(&headers(unsampled), true)
                .sampled
        );
    }

    #[test]
    fn invalid_traceparent_starts_a_new_trace() {
        let bad = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        let t = Sampler::new(0.0).trace_for(&headers(bad), false);
        assert_ne!(t.trace_id.0, [0; 16]);
        assert!(!t.sampled);
    }

    #[test]
    fn ratios_zero_and_one_are_exact() {
        let (never, always) = (Sampler::new(0.0), Sampler::new(1.0));
        for _ in 0..20_000 {
            assert!(!never.trace_for(&(), false).sampled);
            assert!(always.trace_for(&(), false).sampled);
        }
        let edge = TraceId([0xff; 16]);
        assert!(always.should_sample(&edge, false));
        assert!(!never.should_sample(&TraceId([0; 16]), false));
        assert!(never.should_sample(&edge, true), "force wins");
    }

    #[test]
    fn intermediate_ratio_is_statistically_right() {
        let s = Sampler::new(0.25);
        let n = 40_000;
        let hits = (0..n).filter(|_| s.trace_for(&(), false).sampled).count();
        // Binomial sd = sqrt(n p (1-p)) ≈ 87; allow 6 sd.
        let expected = n as f64 * 0.25;
        assert!(
            (hits as f64 - expected).abs() < 6.0 * 87.0,
            "{hits} of {n} sampled at ratio 0.25"
        );
    }

    #[test]
    fn out_of_range_ratios_are_clamped() {
        assert_eq!(Sampler::new(7.0).ratio(), 1.0);
        assert_eq!(Sampler::new(-1.0).ratio(), 0.0);
        assert_eq!(Sampler::new(f64::NAN).ratio(), 0.0);
    }
}
