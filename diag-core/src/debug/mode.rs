//! The runtime state of per-request diagnostic mode, one per [`Diag`]: the resolved
//! settings, the budget, the refusal counters and the flight recorder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::budget::DebugBudget;
use super::config::{BUDGET_EVENT_INTERVAL, DebugConfig};
use super::credential::{CredentialPolicy, RejectReason, Rejections};
use super::recorder::FlightRecorder;
use super::redact::Redactor;
use super::signed::{MAX_TTL, sign_credential};
use super::throttle::Throttle;
use crate::Diag;
use crate::auth::Secret;
use crate::diag::ConfigError;
use crate::net::{Cidr, TrustedProxies};

/// Diagnostic mode's state and counters, reached through [`Diag::debug_mode`].
///
/// ```
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let ask = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// assert!(diag.debug_decision(&ask, None).is_debug());
/// let mode = diag.debug_mode();
/// assert_eq!(mode.header(), "x-debug");
/// assert_eq!(mode.activated(), 1);
/// assert_eq!(mode.budget().burst(), 20);
/// ```
#[derive(Debug)]
pub struct DebugMode {
    pub(crate) header: String,
    key: Option<Secret>,
    /// Where the key comes from: `debug_token`, `token` or `none`.
    key_source: &'static str,
    networks: Vec<Cidr>,
    pub(crate) body_limit: usize,
    budget: DebugBudget,
    pub(crate) rejections: Rejections,
    recorder: FlightRecorder,
    next_id: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    /// The debug requests running now (about `max_in_flight` at most: concurrent starts
    /// may pass it by one each), and ended ones until the next start or read drops them,
    /// for a look at one before it ends.
    running: parking_lot::Mutex<Vec<std::sync::Weak<super::DebugRequest>>>,
    pub(crate) max_in_flight: u64,
    /// Requests refused because `max_in_flight` were running.
    pub(crate) busy: AtomicU64,
    /// Whether the newest debug request found its DEBUG events dropped by the
    /// subscriber, and whether that was logged.
    pub(crate) logs_blocked: [std::sync::atomic::AtomicBool; 2],
    /// Spans, log lines and fields debug requests dropped (or cut) over their caps, in
    /// all.
    pub(crate) records_dropped: [AtomicU64; 3],
    pub(crate) activated: AtomicU64,
    pub(crate) budget_event: Throttle,
}

/// Why a debug credential could not be minted.
///
/// ```
/// use std::time::Duration;
/// use diag_core::debug::MintError;
/// let keyless = diag_core::Diag::builder().build().unwrap();
/// let ttl = Duration::from_secs(300);
/// assert_eq!(keyless.mint_debug_credential(ttl), Err(MintError::NoKey));
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let week = Duration::from_secs(7 * 24 * 3600);
/// assert_eq!(diag.mint_debug_credential(week), Err(MintError::TtlTooLong));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// Neither a debug token nor an endpoint token is configured: there is no key.
    #[error("no debug token or endpoint token is configured to sign with")]
    NoKey,
    /// The lifetime asked for is longer than [`MAX_TTL`].
    #[error("a debug credential lives at most {} s", MAX_TTL.as_secs())]
    TtlTooLong,
}

/// Why a debug request has no DEBUG lines when the subscriber drops them.
const LOGS_BLOCKED: &str = "diagnostic mode gets no DEBUG lines: the service's subscriber \
    drops DEBUG events before diag's per-request filter sees them (a filter over the whole \
    subscriber, such as an EnvFilter or reload layer added with .with(..), or no \
    diag.log_filter installed, or tracing's max_level_*/release_max_level_* features \
    compiling DEBUG out); give your EnvFilter to diag.log_filter(..) as the filter of your \
    output layer instead (README: Beside an OpenTelemetry SDK)";

impl DebugMode {
    pub(crate) fn new(
        config: DebugConfig,
        endpoint_token: Option<&Secret>,
        secret_fragments: Vec<String>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let key_source = match (&config.token, endpoint_token) {
            (Some(_), _) => "debug_token",
            (None, Some(_)) => "token",
            (None, None) => "none",
        };
        let key = config.token.or_else(|| endpoint_token.cloned());
        if let Some(key) = &key {
            key.validate("the debug token (DIAG_DEBUG_TOKEN, or `debug_token`)")?;
            if key.expose() == b"1" || key.expose().starts_with(b"v1.") {
                return Err(ConfigError::Token(
                    "the token X-Debug carries (DIAG_DEBUG_TOKEN, else DIAG_TOKEN) cannot be \
                     `1` or begin with `v1.`: X-Debug reads those as a trusted-network request \
                     and a signed credential"
                        .to_owned(),
                ));
            }
        }
        let networks = match &config.networks {
            None => Cidr::loopback().to_vec(),
            Some(list) => list
                .iter()
                .map(|s| s.parse::<Cidr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(ConfigError::DebugNetwork)?,
        };
        let redactor = Redactor::new(
            &config.header,
            &config.redact_headers,
            &config.redact_fields,
        )
        .with_fragments(secret_fragments);
        Ok(DebugMode {
            key,
            key_source,
            networks,
            body_limit: config.body_limit,
            budget: DebugBudget::new(config.per_second, config.burst),
            rejections: Rejections::new(),
            recorder: FlightRecorder::with_redactor(
                config.max_captures,
                config.max_bytes,
                redactor,
            ),
            next_id: AtomicU64::new(1),
            in_flight: AtomicU64::new(0),
            running: Default::default(),
            max_in_flight: config.max_in_flight,
            busy: AtomicU64::new(0),
            logs_blocked: Default::default(),
            records_dropped: Default::default(),
            activated: AtomicU64::new(0),
            budget_event: Throttle::new(BUDGET_EVENT_INTERVAL),
            header: config.header,
        })
    }

    pub(crate) fn policy<'a>(&'a self, proxies: &'a TrustedProxies) -> CredentialPolicy<'a> {
        CredentialPolicy {
            key: self.key.as_ref(),
            networks: &self.networks,
            proxies,
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The debug id the next debug request will get, without taking it.
    pub(crate) fn peek_next_id(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// The request header that asks for diagnostic mode, lower-case.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().debug_header("X-Diag").build().unwrap();
    /// assert_eq!(diag.debug_mode().header(), "x-diag");
    /// let default = diag_core::Diag::builder().build().unwrap();
    /// assert_eq!(default.debug_mode().header(), "x-debug");
    /// ```
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Which token `X-Debug` carries and signed credentials are keyed with:
    /// `"debug_token"` (its own), `"token"` (the endpoint token) or `"none"`.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().token("ops").build().unwrap();
    /// assert_eq!(diag.debug_mode().key_source(), "token");
    /// let diag = diag_core::Diag::builder().token("ops").debug_token("support").build().unwrap();
    /// assert_eq!(diag.debug_mode().key_source(), "debug_token");
    /// ```
    pub fn key_source(&self) -> &'static str {
        self.key_source
    }

    /// The networks `X-Debug: 1` is honoured from (loopback unless configured).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let nets: Vec<String> = diag.debug_mode().networks().iter().map(|n| n.to_string()).collect();
    /// assert_eq!(nets, ["127.0.0.0/8", "::1/128"]);
    /// ```
    pub fn networks(&self) -> &[Cidr] {
        &self.networks
    }

    /// How many `X-Debug` headers were refused for `reason`
    /// (for `diag_debug_rejected_total{reason}`).
    ///
    /// ```
    /// use diag_core::debug::RejectReason;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let guess = vec![("x-debug".to_owned(), "letmein".to_owned())];
    /// diag.debug_decision(&guess, None);
    /// diag.debug_decision(&guess, None);
    /// assert_eq!(diag.debug_mode().rejected(RejectReason::Invalid), 2);
    /// assert_eq!(diag.debug_mode().rejected(RejectReason::Expired), 0);
    /// ```
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejections.count(reason)
    }

    /// The activation budget; [`DebugBudget::exhausted`] counts refusals.
    ///
    /// ```
    /// use diag_core::debug::Decision;
    /// let diag = diag_core::Diag::builder().token("s3cret").debug_budget(1.0, 1).build().unwrap();
    /// let ask = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// assert!(diag.debug_decision(&ask, None).is_debug());
    /// assert_eq!(diag.debug_decision(&ask, None), Decision::BudgetExhausted);
    /// assert_eq!(diag.debug_mode().budget().exhausted(), 1);
    /// ```
    pub fn budget(&self) -> &DebugBudget {
        &self.budget
    }

    /// The finished debug requests.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().recorder_limits(10, 1 << 20).build().unwrap();
    /// let recorder = diag.debug_mode().recorder();
    /// assert!(recorder.recent().is_empty());
    /// assert_eq!(recorder.stats().max_captures, 10);
    /// ```
    pub fn recorder(&self) -> &FlightRecorder {
        &self.recorder
    }

    /// Pins the capture of debug request `id` (its `X-Debug-Id`), so the flight
    /// recorder keeps it until [`unpin`](Self::unpin), whatever comes after; a request
    /// still running is pinned as it ends. At most a quarter of the recorder's count
    /// cap can be pinned at once, in at most half its byte cap
    /// ([`RecorderStats::max_pinned`](super::RecorderStats::max_pinned)).
    /// `PUT /debug/requests/{id}/pin` calls it.
    ///
    /// ```
    /// # use diag_core::debug::{DebugLevel, PinOutcome};
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// let diag = diag_core::Diag::builder().recorder_limits(4, 1 << 20).build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// let run = || {
    ///     let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    ///     debug.response_end();
    ///     debug.id()
    /// };
    /// let mode = diag.debug_mode();
    /// let first = run();
    /// assert_eq!(mode.pin(first), PinOutcome::Pinned);
    /// assert_eq!(mode.pin(run()), PinOutcome::TooMany, "a quarter of 4");
    /// for _ in 0..10 {
    ///     run();
    /// }
    /// assert!(mode.recorder().get(first).is_some(), "pinned: never evicted");
    /// assert_eq!(mode.recorder().stats().kept, 4);
    /// ```
    pub fn pin(&self, id: u64) -> super::PinOutcome {
        // A request is stored before it leaves the running ones; whether its capture is
        // still to come is decided under the recorder's lock, by its `kept` flag.
        let running = self.running_now();
        let request = running.iter().find(|r| r.id() == id);
        self.recorder.pin(id, request.map(|r| r.kept_flag()))
    }

    /// Unpins the capture `id` (or the pin waiting for a running request): the
    /// recorder keeps it like any other again, in the place it was stored in, and
    /// evicts it in its turn (the next capture stored may evict it, when it is the
    /// oldest). Whether it was pinned. `DELETE /debug/requests/{id}/pin` calls it.
    ///
    /// ```
    /// # use diag_core::debug::{DebugLevel, PinOutcome};
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_end();
    /// let mode = diag.debug_mode();
    /// assert_eq!(mode.pin(debug.id()), PinOutcome::Pinned);
    /// assert!(mode.unpin(debug.id()));
    /// assert!(!mode.recorder().is_pinned(debug.id()) && !mode.unpin(debug.id()));
    /// assert!(mode.recorder().get(debug.id()).is_some(), "still kept, unpinned");
    /// ```
    pub fn unpin(&self, id: u64) -> bool {
        self.recorder.unpin(id)
    }

    /// How many requests ran in diagnostic mode since start.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let ask = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// assert_eq!(diag.debug_mode().activated(), 0);
    /// diag.debug_decision(&ask, None);
    /// diag.debug_decision(&(), None); // not asked for: not counted
    /// assert_eq!(diag.debug_mode().activated(), 1);
    /// ```
    pub fn activated(&self) -> u64 {
        self.activated.load(Ordering::Relaxed)
    }

    /// How many debug requests are running now (started, not yet dropped).
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None,
    /// });
    /// assert_eq!(diag.debug_mode().in_flight(), 1);
    /// drop(guard); // the client went away
    /// assert_eq!(diag.debug_mode().in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Remembers a debug request that started (only debug requests: a normal one never
    /// comes here), and forgets those that ended. A request never takes this lock as it
    /// ends: its `Drop` may run wherever its last reference goes, this lock held or not.
    pub(crate) fn track(&self, request: &std::sync::Arc<super::DebugRequest>) {
        let mut running = self.running.lock();
        running.retain(|r| r.strong_count() > 0);
        running.push(std::sync::Arc::downgrade(request));
    }

    /// The debug requests running now, oldest first: until its capture is in the
    /// recorder, a request that ended is still here (so a reader finds it in one place
    /// or the other, never in neither).
    pub(crate) fn running_now(&self) -> Vec<std::sync::Arc<super::DebugRequest>> {
        let alive: Vec<_> = {
            let mut running = self.running.lock();
            running.retain(|r| r.strong_count() > 0);
            running
                .iter()
                .filter_map(std::sync::Weak::upgrade)
                .collect()
        };
        // Outside the lock: the last reference to one that just ended may be ours, and
        // dropping it ends the request here.
        alive.into_iter().filter(|r| !r.is_kept()).collect()
    }

    /// How many debug requests were refused because the most allowed at once
    /// ([`DiagBuilder::debug_max_in_flight`](crate::DiagBuilder::debug_max_in_flight))
    /// were running.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert_eq!(diag.debug_mode().busy(), 0);
    /// ```
    pub fn busy(&self) -> u64 {
        self.busy.load(Ordering::Relaxed)
    }

    /// Notes whether a debug request's DEBUG events reach diag (`blocked`: the
    /// subscriber drops them first); the first time they do not, a WARN says why.
    pub(crate) fn note_logs(&self, session: &super::DebugSession, blocked: bool) {
        self.logs_blocked[0].store(blocked, Ordering::Relaxed);
        if blocked {
            session.mark_logs_blocked();
            if !self.logs_blocked[1].swap(true, Ordering::Relaxed) {
                tracing::warn!(target: "diag", "{LOGS_BLOCKED}");
            }
        }
    }

    /// What `/debug` says while the newest debug request found its DEBUG events
    /// dropped by the subscriber.
    pub(crate) fn logs_hint(&self) -> Option<&'static str> {
        self.logs_blocked[0]
            .load(Ordering::Relaxed)
            .then_some(LOGS_BLOCKED)
    }

    /// How many bytes of each body a debug request captures.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().capture_body_limit(4096).build().unwrap();
    /// assert_eq!(diag.debug_mode().body_limit(), 4096);
    /// assert_eq!(diag_core::Diag::builder().build().unwrap().debug_mode().body_limit(), 64 * 1024);
    /// ```
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }
}

impl Diag {
    /// Per-request diagnostic mode: counters, budget and flight recorder.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let mode = diag.debug_mode();
    /// assert_eq!((mode.activated(), mode.in_flight()), (0, 0));
    /// assert_eq!(mode.budget().per_second(), 5.0);
    /// ```
    pub fn debug_mode(&self) -> &DebugMode {
        &self.inner.debug
    }

    /// A signed `X-Debug` credential valid for `ttl` (at most 24 h), keyed by the debug
    /// token, or the endpoint token when there is no separate one. Hand it to whoever
    /// needs diagnostic mode for a while without giving them the token.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diag_core::debug::Decision;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let credential = diag.mint_debug_credential(Duration::from_secs(300)).unwrap();
    /// let headers = vec![("x-debug".to_owned(), credential)];
    /// assert!(matches!(diag.debug_decision(&headers, None), Decision::Debug(_)));
    /// ```
    pub fn mint_debug_credential(&self, ttl: Duration) -> Result<String, MintError> {
        if ttl > MAX_TTL {
            return Err(MintError::TtlTooLong);
        }
        let key = self.inner.debug.key.as_ref().ok_or(MintError::NoKey)?;
        let now = crate::clock::unix_now_secs();
        Ok(sign_credential(key.expose(), now + ttl.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use crate::Diag;
    use crate::debug::DebugLevel;
    use crate::request::RequestView;
    use crate::trace::TraceId;

    /// A reader of the running requests may hold the last reference to one that just
    /// ended, and so end it: that must not wait on the list's lock it took (it did,
    /// and every later debug request with it). Debug requests start and end on one
    /// thread while another lists and looks at them.
    #[test]
    fn reading_running_requests_while_they_end_never_deadlocks() {
        let diag = Diag::builder()
            .token("t")
            .debug_max_in_flight(1000)
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let requests = {
            let (diag, stop) = (diag.clone(), stop.clone());
            std::thread::spawn(move || {
                let view = RequestView {
                    method: "GET",
                    route: Some("/"),
                    uri: "/",
                    headers: &(),
                    peer: &|| None,
                };
                while !stop.load(Ordering::Relaxed) {
                    let r = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
                    r.response_end();
                }
            })
        };
        let reader = {
            let (diag, stop, reads) = (diag.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for r in diag.debug_mode().running_now() {
                        let _ = r.look_head();
                        let _ = r.look();
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let mut last = 0;
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(300));
            let now = reads.load(Ordering::Relaxed);
            assert!(now > last, "no read for 300 ms after {now}: deadlocked");
            last = now;
        }
        stop.store(true, Ordering::Relaxed);
        requests.join().unwrap();
        reader.join().unwrap();
        assert!(diag.debug_mode().running_now().is_empty());
    }

    /// A request that just ended is in the running list or in the recorder, at every
    /// moment: a reader never finds it in neither (it did, between the start of its
    /// store and its capture reaching the recorder).
    #[test]
    fn a_request_that_ends_is_always_running_or_kept() {
        let diag = Diag::builder().token("t").build().unwrap();
        let current = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let misses = Arc::new(AtomicU64::new(0));
        let n = 2000u64;
        let reader = {
            let (diag, current, done, misses) =
                (diag.clone(), current.clone(), done.clone(), misses.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                while last < n {
                    let id = current.load(Ordering::Acquire);
                    if id == last {
                        std::hint::spin_loop();
                        continue;
                    }
                    loop {
                        if diag.debug_mode().recorder().get(id).is_some() {
                            break;
                        }
                        let running = diag.debug_mode().running_now();
                        if !running.iter().any(|r| r.id() == id)
                            && diag.debug_mode().recorder().get(id).is_none()
                        {
                            misses.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    last = id;
                    done.store(id, Ordering::Release);
                }
            })
        };
        let view = RequestView {
            method: "GET",
            route: Some("/"),
            uri: "/",
            headers: &(),
            peer: &|| None,
        };
        for k in 1..=n {
            let r = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
            assert_eq!(r.id(), k);
            current.store(k, Ordering::Release);
            for _ in 0..(k % 50) {
                std::hint::spin_loop();
            }
            r.response_end();
            while done.load(Ordering::Acquire) != k {
                std::hint::spin_loop();
            }
        }
        reader.join().unwrap();
        assert_eq!(misses.load(Ordering::Relaxed), 0);
    }
}
