//! The RED metrics of the calls a service makes: during an incident the first question
//! is often "is it us or the payment provider?", and the server-side metrics cannot
//! tell. Each outgoing call is timed from its start to its response head in
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_client_request_duration_seconds` | histogram ([`LATENCY_BUCKETS`](super::LATENCY_BUCKETS)), exemplars | `method`, `server_address`, `status` |
//!
//! - `server_address`: the host, with the port when the URI names one (`pricing:8080`);
//!   never the path, and never user information. Its values are the services the
//!   process calls, a small set; the family's own label-set cap
//!   ([`MAX_CLIENT_LABEL_SETS`]) holds when they are not (a webhook sender), folding the
//!   rest into `__overflow__`.
//! - `status`: the response's numeric code; `error` when no response came (refused,
//!   reset, the client's own error); `cancelled` when the caller gave up first (its
//!   timeout dropped the call).
//! - The exemplar is the trace of the request the call was made for, when sampled:
//!   a slow dependency bucket leads to the request that waited on it.
//!
//! [`diag_tower::PropagateLayer`] records its calls here when given the `Diag`
//! (`with_metrics`); any other client calls [`Diag::client_call`] around its calls.
//!
//! [`diag_tower::PropagateLayer`]: https://docs.rs/diag-tower

use std::sync::Arc;
use std::sync::OnceLock;

use super::histogram::LATENCY_BUCKETS;
use super::http::method_label;
use super::{Family, Histogram};
use crate::Diag;
use crate::clock::MonoTime;
use crate::request::with_current;
use crate::trace::TraceContext;

/// The client duration histogram's name.
const CLIENT_DURATION: &str = "http_client_request_duration_seconds";

/// The most `(method, server_address, status)` label sets of
/// `http_client_request_duration_seconds` (or `max_label_sets`, when lower): a service
/// that calls hosts its users name (webhooks) must not mint a series per host. Past it,
/// calls fold into the `__overflow__` series, counted in
/// `diag_metrics_overflow_total{family="http_client_request_duration_seconds"}`.
///
/// ```
/// use diag_core::metrics::MAX_CLIENT_LABEL_SETS;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// for i in 0..MAX_CLIENT_LABEL_SETS + 3 {
///     diag.client_call("POST", &format!("hook{i}.example")).finish(200);
/// }
/// let family = diag
///     .histogram_family("http_client_request_duration_seconds", "", &[1.0], ["method", "server_address", "status"])
///     .unwrap();
/// assert_eq!(family.len(), MAX_CLIENT_LABEL_SETS);
/// assert_eq!(family.overflowed(), 3);
/// ```
pub const MAX_CLIENT_LABEL_SETS: usize = 256;

/// The family, made on the first call (so a service that calls nothing shows none).
pub(crate) type ClientFamily = OnceLock<Option<Arc<Family<Histogram, 3>>>>;

impl Diag {
    /// Starts timing an outgoing HTTP call to `server_address` (`host` or `host:port`)
    /// for `http_client_request_duration_seconds`; end it with
    /// [`ClientCall::finish`] when the response head arrives, or [`ClientCall::fail`]
    /// when none will. Dropped unended, the call counts as `cancelled`. The current
    /// request's trace (when sampled) becomes the exemplar.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let call = diag.client_call("GET", "pricing:8080");
    /// // ... send the request, get the response head ...
    /// call.finish(503);
    /// diag.client_call("POST", "payments.example").fail(); // connection refused
    ///
    /// let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// let text = String::from_utf8(diag.serve(req).await.body).unwrap();
    /// assert!(text.contains(r#"http_client_request_duration_seconds_count{method="GET",server_address="pricing:8080",status="503"} 1"#));
    /// assert!(text.contains(r#"server_address="payments.example",status="error"} 1"#));
    /// # }
    /// ```
    pub fn client_call(&self, method: &str, server_address: &str) -> ClientCall {
        let family = self
            .inner
            .client_calls
            .get_or_init(|| {
                let bounds: Arc<[f64]> = LATENCY_BUCKETS.into();
                self.inner
                    .metrics
                    .family_capped(
                        CLIENT_DURATION,
                        &|| "Duration of outgoing HTTP calls, to the response head.".to_owned(),
                        ["method", "server_address", "status"],
                        MAX_CLIENT_LABEL_SETS,
                        move || Histogram::with_bounds(bounds.clone()),
                    )
                    .ok()
            })
            .clone();
        ClientCall {
            family,
            method: method_label(method),
            server_address: server_address.into(),
            trace: with_current(|s| s.map(|s| s.trace)),
            start: MonoTime::now(),
            ended: false,
        }
    }
}

/// One outgoing call being timed; see [`Diag::client_call`].
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// {
///     let _call = diag.client_call("GET", "slow-dependency:9000");
///     // the caller's timeout fires and drops the call
/// }
/// let family = diag
///     .histogram_family("http_client_request_duration_seconds", "", &[1.0], ["method", "server_address", "status"])
///     .unwrap();
/// let h = family.with(["GET", "slow-dependency:9000", "cancelled"]);
/// assert_eq!(h.snapshot().cumulative.last(), Some(&1));
/// ```
#[must_use = "end the call with finish() or fail(); dropped, it counts as cancelled"]
#[derive(Debug)]
pub struct ClientCall {
    family: Option<Arc<Family<Histogram, 3>>>,
    method: &'static str,
    server_address: Box<str>,
    trace: Option<TraceContext>,
    start: MonoTime,
    ended: bool,
}

impl ClientCall {
    /// The response head arrived with `status`.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.client_call("GET", "pricing").finish(200);
    /// ```
    pub fn finish(mut self, status: u16) {
        self.end(itoa::Buffer::new().format(status));
    }

    /// No response will come: the connection was refused or reset, or the client
    /// failed otherwise.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.client_call("GET", "pricing").fail();
    /// ```
    pub fn fail(mut self) {
        self.end("error");
    }

    fn end(&mut self, status: &str) {
        self.ended = true;
        let Some(family) = &self.family else { return };
        family
            .with([self.method, &self.server_address, status])
            .record_since(self.start, self.trace.as_ref());
    }
}

impl Drop for ClientCall {
    fn drop(&mut self) {
        if !self.ended {
            self.end("cancelled");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Diag;
    use crate::request::RequestView;

    async fn scrape(diag: &Diag) -> String {
        let req = crate::EndpointRequest {
            method: "GET".into(),
            path: "/metrics".into(),
            headers: vec![("accept".into(), "application/openmetrics-text".into())],
            ..Default::default()
        };
        String::from_utf8(diag.serve(req).await.body).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn calls_are_counted_by_outcome_with_the_request_as_exemplar() {
        let diag = Diag::builder().build().unwrap();
        assert!(
            !scrape(&diag).await.contains("http_client"),
            "no family before the first call"
        );
        let guard = diag.begin(&RequestView {
            method: "GET",
            route: Some("/checkout"),
            uri: "/checkout",
            headers: &(),
            peer: &|| None,
        });
        {
            let _entered = guard.enter();
            diag.client_call("GET", "pricing:8080").finish(200);
            diag.client_call("GET", "pricing:8080").finish(200);
            diag.client_call("POST", "payments").fail();
            drop(diag.client_call("BREW", "teapot"));
        }
        let trace = guard.trace().trace_id.to_string();
        let _ = guard.finish(200, &mut Vec::<(String, String)>::new());
        // Outside any request: counted, no exemplar.
        diag.client_call("GET", "pricing:8080").finish(503);
        let text = scrape(&diag).await;
        let count = |labels: &str| {
            let line = format!("http_client_request_duration_seconds_count{{{labels}}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&line))
                .unwrap_or_else(|| panic!("no {line} in\n{text}"))
                .to_owned()
        };
        assert_eq!(
            count(r#"method="GET",server_address="pricing:8080",status="200""#),
            "2"
        );
        assert_eq!(
            count(r#"method="POST",server_address="payments",status="error""#),
            "1"
        );
        assert_eq!(
            count(r#"method="_OTHER",server_address="teapot",status="cancelled""#),
            "1"
        );
        let exemplar_lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("http_client_request_duration_seconds_bucket") && l.contains(" # {")
            })
            .collect();
        assert!(
            exemplar_lines
                .iter()
                .all(|l| l.contains(&format!("trace_id=\"{trace}\""))),
            "{exemplar_lines:#?}"
        );
        assert!(
            exemplar_lines
                .iter()
                .any(|l| l.contains("status=\"error\"")),
            "{exemplar_lines:#?}"
        );
        assert!(
            !exemplar_lines.iter().any(|l| l.contains("status=\"503\"")),
            "no request, no exemplar: {exemplar_lines:#?}"
        );
    }
}
