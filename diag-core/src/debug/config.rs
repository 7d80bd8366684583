//! The builder settings of per-request diagnostic mode, and their environment variables.

use std::time::Duration;

use super::redact::DEFAULT_FIELDS;
use crate::auth::Secret;
use crate::diag::{ConfigError, DiagBuilder};

/// Settings of per-request diagnostic mode, as the builder collects them.
#[derive(Clone, Debug)]
pub(crate) struct DebugConfig {
    pub(crate) header: String,
    pub(crate) token: Option<Secret>,
    /// `None`: the default, loopback only.
    pub(crate) networks: Option<Vec<String>>,
    pub(crate) per_second: f64,
    pub(crate) burst: u32,
    pub(crate) max_in_flight: u64,
    pub(crate) body_limit: usize,
    pub(crate) max_captures: usize,
    pub(crate) max_bytes: usize,
    pub(crate) redact_headers: Vec<String>,
    pub(crate) redact_fields: Vec<String>,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig {
            header: super::DEFAULT_HEADER.to_owned(),
            token: None,
            networks: None,
            per_second: 5.0,
            burst: 20,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            body_limit: 64 * 1024,
            max_captures: 100,
            max_bytes: 8 * 1024 * 1024,
            redact_headers: Vec::new(),
            redact_fields: DEFAULT_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl DiagBuilder {
    /// The request header that asks for diagnostic mode (default `x-debug`).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().token("s3cret").debug_header("X-Diag").build().unwrap();
    /// let ask = |name: &str| vec![(name.to_owned(), "s3cret".to_owned())];
    /// assert!(diag.debug_decision(&ask("x-diag"), None).is_debug());
    /// assert!(!diag.debug_decision(&ask("x-debug"), None).is_debug());
    /// ```
    pub fn debug_header(mut self, name: impl Into<String>) -> Self {
        self.debug.header = name.into().trim().to_ascii_lowercase();
        self
    }

    /// A token for `X-Debug` separate from the endpoint token. When set, it (and not
    /// the endpoint token) is what `X-Debug: <token>` must carry and what signed
    /// credentials are keyed with; so someone can be allowed to turn diagnostic mode
    /// on without being able to read `/debug/*`. Empty: none.
    ///
    /// ```
    /// use diag_core::debug::{Decision, RejectReason};
    /// let diag = diag_core::Diag::builder().token("ops-only").debug_token("support").build().unwrap();
    /// let ask = |value: &str| vec![("x-debug".to_owned(), value.to_owned())];
    /// assert!(diag.debug_decision(&ask("support"), None).is_debug());
    /// let refused = diag.debug_decision(&ask("ops-only"), None);
    /// assert_eq!(refused, Decision::Rejected(RejectReason::Invalid));
    /// ```
    pub fn debug_token(mut self, token: impl Into<String>) -> Self {
        self.debug.token = Secret::configured(token.into());
        self
    }

    /// Where `X-Debug: 1` is honoured from without a credential: addresses or CIDR
    /// networks, replacing the default (loopback only). An empty list: nowhere.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder()
    ///     .debug_networks(["127.0.0.1", "10.8.0.0/16"])
    ///     .build()
    ///     .unwrap();
    /// # let _ = diag;
    /// ```
    pub fn debug_networks<I, S>(mut self, nets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.debug.networks = Some(nets.into_iter().map(Into::into).collect());
        self
    }

    /// How many debug requests are admitted: `per_second` refilled continuously, up to
    /// `burst` at once (default 5/s, burst 20). Over budget, a request is served
    /// normally with `X-Debug-Status: budget-exhausted`.
    ///
    /// ```
    /// use diag_core::debug::Decision;
    /// let diag = diag_core::Diag::builder().token("s3cret").debug_budget(0.1, 2).build().unwrap();
    /// let ask = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// assert!(diag.debug_decision(&ask, None).is_debug());
    /// assert!(diag.debug_decision(&ask, None).is_debug());
    /// assert_eq!(diag.debug_decision(&ask, None), Decision::BudgetExhausted);
    /// assert!(diag_core::Diag::builder().debug_budget(0.0, 2).build().is_err());
    /// ```
    pub fn debug_budget(mut self, per_second: f64, burst: u32) -> Self {
        self.debug.per_second = per_second;
        self.debug.burst = burst;
        self
    }

    /// How many debug requests may run at once (default [`DEFAULT_MAX_IN_FLIGHT`]): the
    /// budget caps how fast they start, this how many are held open, each with its
    /// capture in memory until it ends. Beyond it, a request is served normally with
    /// `X-Debug-Status: busy`, counted in `diag_debug_busy_total`. Requests deciding
    /// at the same instant may pass it by one each.
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, Decision};
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().token("s3cret").debug_max_in_flight(1).build().unwrap();
    /// let ask = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// let view = RequestView { method: "GET", route: None, uri: "/", headers: &ask, peer: &|| None };
    /// let held = diag.begin(&view); // in diagnostic mode, its response not sent yet
    /// assert_eq!(diag.debug_decision(&ask, None), Decision::Busy);
    /// drop(held);
    /// assert!(diag.debug_decision(&ask, None).is_debug());
    /// ```
    pub fn debug_max_in_flight(mut self, n: u64) -> Self {
        self.debug.max_in_flight = n;
        self
    }

    /// How many bytes of each body a debug request captures (default 64 KiB).
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// let diag = diag_core::Diag::builder().capture_body_limit(4).build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.request_chunk(b"hello, world");
    /// debug.request_end();
    /// debug.finish_incomplete();
    /// let body = diag.debug_mode().recorder().get(debug.id()).unwrap().request.body.clone();
    /// assert_eq!((body.text.as_deref(), body.total_bytes, body.truncated), (Some("hell"), 12, true));
    /// ```
    pub fn capture_body_limit(mut self, bytes: usize) -> Self {
        self.debug.body_limit = bytes;
        self
    }

    /// The flight recorder's caps: at most `captures` finished debug requests and about
    /// `bytes` bytes (default 100 and 8 MiB); the oldest are evicted first.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().recorder_limits(20, 1 << 20).build().unwrap();
    /// let stats = diag.debug_mode().recorder().stats();
    /// assert_eq!((stats.max_captures, stats.max_bytes), (20, 1 << 20));
    /// ```
    pub fn recorder_limits(mut self, captures: usize, bytes: usize) -> Self {
        self.debug.max_captures = captures;
        self.debug.max_bytes = bytes;
        self
    }

    /// One more header whose value captures show as `[redacted]` (on top of
    /// `authorization`, `proxy-authorization`, `cookie`, `set-cookie` and the debug header).
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// let diag = diag_core::Diag::builder().redact_header("x-api-key").build().unwrap();
    /// let headers = vec![("x-api-key".to_owned(), "k-123".to_owned())];
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &headers, peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.finish_incomplete();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert_eq!(capture.request.headers[0].1, "[redacted]");
    /// ```
    pub fn redact_header(mut self, name: impl Into<String>) -> Self {
        self.debug.redact_headers.push(name.into());
        self
    }

    /// One more field redacted in JSON and form bodies, query strings, and span and log
    /// fields (on top of [`DEFAULT_FIELDS`](crate::debug::DEFAULT_FIELDS)). Also hidden,
    /// as a [`secret_key`](crate::DiagBuilder::secret_key) fragment, in the `config`
    /// and `errors` providers: one list of secrets for every view.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().redact_field("ssn").build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::error!(ssn = "078-05-1120", "identity check failed");
    /// });
    /// let fields = &diag.errors().latest()[0].fields;
    /// assert_eq!(fields[0], ("ssn".to_owned(), "***".to_owned()));
    /// ```
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// let diag = diag_core::Diag::builder().redact_field("ssn").build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/?ssn=123", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.request_chunk(br#"{"name":"Ada","ssn":"078-05-1120"}"#);
    /// debug.request_end();
    /// debug.finish_incomplete();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert_eq!(capture.request.uri, "/?ssn=[redacted]");
    /// assert_eq!(capture.request.body.text.as_deref(), Some(r#"{"name":"Ada","ssn":"[redacted]"}"#));
    /// ```
    pub fn redact_field(mut self, name: impl Into<String>) -> Self {
        self.debug.redact_fields.push(name.into());
        self
    }

    /// Reads the diagnostic-mode variables (see [`DiagBuilder::from_env`]).
    pub(crate) fn debug_from_env(mut self) -> Result<Self, ConfigError> {
        if let Ok(token) = std::env::var("DIAG_DEBUG_TOKEN") {
            self = self.debug_token(token);
        }
        if let Some(h) = env_nonempty("DIAG_DEBUG_HEADER") {
            self = self.debug_header(h);
        }
        if let Ok(list) = std::env::var("DIAG_DEBUG_NETWORKS") {
            self = self.debug_networks(split_list(&list));
        }
        if let Some(v) = env_nonempty("DIAG_DEBUG_BUDGET") {
            self.debug.per_second = v.parse().map_err(|_| {
                env_err(
                    "DIAG_DEBUG_BUDGET",
                    &v,
                    "a number of debug requests per second",
                )
            })?;
        }
        if let Some(v) = env_nonempty("DIAG_DEBUG_BURST") {
            self.debug.burst = v
                .parse()
                .map_err(|_| env_err("DIAG_DEBUG_BURST", &v, "a whole number"))?;
        }
        if let Some(v) = env_nonempty("DIAG_DEBUG_MAX_IN_FLIGHT") {
            self.debug.max_in_flight = v
                .parse()
                .map_err(|_| env_err("DIAG_DEBUG_MAX_IN_FLIGHT", &v, "a whole number"))?;
        }
        if let Some(v) = env_nonempty("DIAG_CAPTURE_BODY_BYTES") {
            self.debug.body_limit = v
                .parse()
                .map_err(|_| env_err("DIAG_CAPTURE_BODY_BYTES", &v, "a number of bytes"))?;
        }
        if let Some(v) = env_nonempty("DIAG_RECORDER_CAPTURES") {
            self.debug.max_captures = v
                .parse()
                .map_err(|_| env_err("DIAG_RECORDER_CAPTURES", &v, "a whole number"))?;
        }
        if let Some(v) = env_nonempty("DIAG_RECORDER_BYTES") {
            self.debug.max_bytes = v
                .parse()
                .map_err(|_| env_err("DIAG_RECORDER_BYTES", &v, "a number of bytes"))?;
        }
        if let Ok(list) = std::env::var("DIAG_REDACT_HEADERS") {
            self.debug.redact_headers.extend(split_list(&list));
        }
        if let Ok(list) = std::env::var("DIAG_REDACT_FIELDS") {
            self.debug.redact_fields.extend(split_list(&list));
        }
        Ok(self)
    }
}

impl DebugConfig {
    /// Checks what `build` cannot fix up on its own.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_in_flight == 0 {
            return Err(ConfigError::Debug(
                "at least one debug request must be allowed at once \
                 (DIAG_DEBUG_MAX_IN_FLIGHT, or `debug_max_in_flight`)"
                    .to_owned(),
            ));
        }
        if !(self.per_second.is_finite() && self.per_second > 0.0) || self.burst == 0 {
            return Err(ConfigError::Debug(format!(
                "the debug budget needs a positive rate and burst (got {}/s, burst {}; \
                 DIAG_DEBUG_BUDGET / DIAG_DEBUG_BURST, or `debug_budget`)",
                self.per_second, self.burst
            )));
        }
        if self.header.is_empty()
            || !self
                .header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::Debug(format!(
                "`{}` is not a usable header name (DIAG_DEBUG_HEADER, or `debug_header`)",
                self.header
            )));
        }
        // Headers every client or proxy sends for its own reasons: each request would be
        // a refused debug attempt, and the header's other readers would see the token.
        const TAKEN: [&str; 12] = [
            "authorization",
            "proxy-authorization",
            "cookie",
            "host",
            "content-type",
            "content-length",
            "transfer-encoding",
            "traceparent",
            "tracestate",
            "x-forwarded-for",
            "forwarded",
            "x-debug-level",
        ];
        if TAKEN.iter().any(|t| t.eq_ignore_ascii_case(&self.header)) {
            return Err(ConfigError::Debug(format!(
                "`{}` carries something else already; pick a header of diag's own \
                 (DIAG_DEBUG_HEADER, or `debug_header`)",
                self.header
            )));
        }
        Ok(())
    }
}

/// How many debug requests may run at once unless configured (see
/// [`DiagBuilder::debug_max_in_flight`](crate::DiagBuilder::debug_max_in_flight)).
///
/// ```
/// assert_eq!(diag_core::debug::DEFAULT_MAX_IN_FLIGHT, 32);
/// ```
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 32;

/// How often, at most, `debug_budget_exhausted` is recorded on the events timeline.
pub(crate) const BUDGET_EVENT_INTERVAL: Duration = Duration::from_secs(10);

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn env_err(name: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Env {
        name,
        reason: format!("`{value}` is not {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::Diag;
    use crate::debug::{Decision, RejectReason};

    const VARS: [(&str, &str); 8] = [
        ("DIAG_DEBUG_TOKEN", "env-debug-token"),
        ("DIAG_DEBUG_HEADER", "X-Dbg"),
        ("DIAG_DEBUG_NETWORKS", "10.0.0.0/8"),
        ("DIAG_DEBUG_BUDGET", "0.001"),
        ("DIAG_DEBUG_BURST", "2"),
        ("DIAG_CAPTURE_BODY_BYTES", "3"),
        ("DIAG_RECORDER_CAPTURES", "1"),
        ("DIAG_REDACT_FIELDS", "ssn"),
    ];

    #[test]
    fn environment_variables() {
        // SAFETY: these variables are read only by this test; no other test in this
        // binary reads or writes them.
        unsafe {
            for (k, v) in VARS {
                std::env::set_var(k, v);
            }
        }
        let built = Diag::builder().debug_from_env().and_then(|b| b.build());
        unsafe { std::env::set_var("DIAG_DEBUG_BURST", "many") };
        let bad = Diag::builder().debug_from_env();
        unsafe {
            for (k, _) in VARS {
                std::env::remove_var(k);
            }
        }
        assert!(matches!(
            bad,
            Err(crate::ConfigError::Env {
                name: "DIAG_DEBUG_BURST",
                ..
            })
        ));
        let diag = built.unwrap();
        let mode = diag.debug_mode();
        assert_eq!(mode.header(), "x-dbg");
        assert_eq!(mode.body_limit(), 3);
        assert_eq!(mode.recorder().stats().max_captures, 1);
        assert_eq!(mode.budget().burst(), 2);
        let ask = |v: &str, peer: &str| {
            let h = vec![("x-dbg".to_owned(), v.to_owned())];
            diag.debug_decision(
                &h,
                Some(std::net::SocketAddr::new(peer.parse().unwrap(), 1)),
            )
        };
        assert_eq!(
            ask("1", "127.0.0.1"),
            Decision::Rejected(RejectReason::UntrustedNetwork)
        );
        assert!(ask("1", "10.1.2.3").is_debug());
        assert!(ask("env-debug-token", "127.0.0.1").is_debug());
        assert_eq!(
            ask("env-debug-token", "127.0.0.1"),
            Decision::BudgetExhausted
        );
    }

    fn ask(diag: &Diag, header: &str, value: &str) -> Decision {
        let h = vec![(header.to_owned(), value.to_owned())];
        diag.debug_decision(&h, Some("10.9.9.9:1".parse().unwrap()))
    }

    #[test]
    fn a_token_from_a_secret_file_loses_its_newline() {
        let diag = Diag::builder().token("s3cret\n").build().unwrap();
        assert!(ask(&diag, "x-debug", "s3cret").is_debug());
        let diag = Diag::builder()
            .token("ops")
            .debug_token("  support\r\n")
            .build()
            .unwrap();
        assert!(ask(&diag, "x-debug", "support").is_debug());
        // Only whitespace: no token at all (endpoints loopback-only, no X-Debug token).
        let diag = Diag::builder().token(" \n").build().unwrap();
        assert_eq!(
            ask(&diag, "x-debug", "x"),
            Decision::Rejected(RejectReason::Invalid)
        );
    }

    #[test]
    fn tokens_no_header_can_carry_or_x_debug_would_misread_are_refused() {
        let refused = |b: crate::DiagBuilder| match b.build() {
            Err(crate::ConfigError::Token(reason)) => reason,
            other => panic!("built: {:?}", other.map(|_| ())),
        };
        assert!(refused(Diag::builder().token("two\nlines")).contains("DIAG_TOKEN"));
        assert!(refused(Diag::builder().token("nul\0")).contains("control character"));
        let debug = refused(Diag::builder().token("ok").debug_token("a\r\nb"));
        assert!(debug.contains("DIAG_DEBUG_TOKEN"), "{debug}");
        // What a header can carry stays usable: spaces, tabs, UTF-8.
        for token in ["two words", "tab\there", "caf\u{e9}"] {
            assert!(Diag::builder().token(token).build().is_ok(), "{token:?}");
        }
        for token in ["1", "v1.longrandomtoken"] {
            assert!(refused(Diag::builder().token(token)).contains("`v1.`"));
            assert!(refused(Diag::builder().token("ok").debug_token(token)).contains("`1`"));
        }
        // The endpoint token may be anything when X-Debug has a token of its own.
        assert!(
            Diag::builder()
                .token("v1.ops")
                .debug_token("support")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn a_debug_header_some_other_party_sends_is_refused() {
        for name in ["Authorization", "cookie", "TRACEPARENT", "x-debug-level"] {
            let err = Diag::builder().debug_header(name).build().unwrap_err();
            assert!(
                err.to_string().contains("carries something else"),
                "{name}: {err}"
            );
        }
        assert!(Diag::builder().debug_header("X-Diag").build().is_ok());
    }
}
