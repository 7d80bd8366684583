//! The [`Diag`] handle; [`DiagBuilder`] (in `builder`) makes one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::auth::Secret;
use crate::events::Events;
use crate::metrics::BucketsError;
use crate::metrics::registry::MetricsRegistry;
use crate::net::{CidrParseError, TrustedProxies};
use crate::state::StateRegistry;
use crate::state::config::ConfigState;
use crate::state::in_flight::InFlight;
use crate::state::queues::Queues;
use crate::state::{ErrorRing, SecretKeys};
use crate::trace::Sampler;

mod builder;
mod env;

pub use builder::DiagBuilder;

/// The handle a service keeps: cheap to clone, shared by the middleware, the endpoints
/// and the service's own code.
///
/// ```
/// let diag = diag_core::Diag::builder()
///     .service("checkout")
///     .version("1.4.2")
///     .token("s3cret")
///     .build()
///     .unwrap();
/// diag.state().register("flags", || serde_json::json!({"new_cart": true})).unwrap();
/// assert_eq!(diag.service(), "checkout");
/// ```
#[derive(Clone)]
pub struct Diag {
    pub(crate) inner: Handle,
}

/// How a [`Diag`] holds its state: reference-counted, or, after [`Diag::leak`], for the
/// rest of the process, so that cloning and dropping a handle (the middleware does both
/// on every request) writes no counter that every core shares.
pub(crate) enum Handle {
    Counted(Arc<Inner>),
    Process(&'static Arc<Inner>),
}

impl Clone for Handle {
    #[inline]
    fn clone(&self) -> Handle {
        match self {
            Handle::Counted(inner) => Handle::Counted(Arc::clone(inner)),
            Handle::Process(inner) => Handle::Process(inner),
        }
    }
}

impl std::ops::Deref for Handle {
    type Target = Arc<Inner>;

    #[inline]
    fn deref(&self) -> &Arc<Inner> {
        match self {
            Handle::Counted(inner) => inner,
            Handle::Process(inner) => inner,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) service: String,
    pub(crate) version: String,
    /// Which process this is among the service's instances (see [`Diag::instance`]).
    pub(crate) instance: String,
    pub(crate) token: Option<Secret>,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) admin_addr: Option<SocketAddr>,
    pub(crate) metrics_public: bool,
    /// Every response carries `traceparent`, not only debug and error ones.
    pub(crate) traceparent_every_response: bool,
    /// Requests for the endpoints refused: `[401, 403]`.
    pub(crate) endpoint_refused: [std::sync::atomic::AtomicU64; 3],
    /// WARN lines of `build` that found no subscriber to write to yet, for
    /// [`Diag::init_tracing`] to write once it installed one.
    pub(crate) pending_warnings: parking_lot::Mutex<Vec<String>>,
    pub(crate) disabled: AtomicBool,
    /// When `disabled` was on lately, for the views it leaves requests out of.
    pub(crate) kill_switch: crate::state::kill_switch::KillSwitchLog,
    pub(crate) started: Instant,
    pub(crate) started_at: SystemTime,
    pub(crate) state: StateRegistry,
    pub(crate) events: Events,
    pub(crate) debug: crate::debug::DebugMode,
    pub(crate) git_sha: Option<String>,
    pub(crate) build_info: std::collections::BTreeMap<String, String>,
    pub(crate) secret_keys: SecretKeys,
    pub(crate) config: ConfigState,
    pub(crate) errors: Arc<ErrorRing>,
    pub(crate) queues: Queues,
    pub(crate) in_flight: InFlight,
    pub(crate) route_windows: crate::state::routes::RouteWindows,
    pub(crate) dependency_windows: crate::state::routes::RouteWindows,
    pub(crate) client_calls: crate::metrics::client::ClientFamily,
    pub(crate) log_level: crate::log::LogLevelControl,
    pub(crate) metrics: MetricsRegistry,
    pub(crate) sampler: Sampler,
    /// Incoming `tracestate` headers, and the count of those not passed on.
    pub(crate) tracestate: crate::trace::IncomingTraceState,
    /// Where debug requests' traces go, when configured.
    pub(crate) otlp: Option<crate::otlp::OtlpExporter>,
}

/// A configuration value diag could not accept.
///
/// ```
/// use diag_core::{ConfigError, Diag};
/// let err = Diag::builder().admin_addr("localhost").build().unwrap_err();
/// assert!(matches!(err, ConfigError::AdminAddr(_)));
/// assert_eq!(
///     err.to_string(),
///     "admin address `localhost` is not a socket address (expected e.g. 127.0.0.1:9901)"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A trusted proxy entry is not an address or CIDR network.
    #[error("trusted proxy: {0}")]
    TrustedProxy(#[from] CidrParseError),
    /// A trusted debug network entry is not an address or CIDR network.
    #[error("debug network: {0}")]
    DebugNetwork(CidrParseError),
    /// A diagnostic-mode setting is out of range.
    #[error("debug mode: {0}")]
    Debug(String),
    /// The admin listener address does not parse.
    #[error("admin address `{0}` is not a socket address (expected e.g. 127.0.0.1:9901)")]
    AdminAddr(String),
    /// An environment variable holds a value diag cannot use.
    #[error("environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP duration buckets are unusable.
    #[error("http duration buckets: {0}")]
    Buckets(#[from] BucketsError),
    /// A token is unusable: bytes no header can carry, or, for `X-Debug`, a value that
    /// reads as another kind of credential (`1`, `v1.…`).
    #[error("{0}")]
    Token(String),
    /// The OTLP endpoint is not a plain `http://` URL, or its thread could not start.
    #[error("otlp endpoint: {0}")]
    Otlp(String),
    /// A gRPC method given to [`DiagBuilder::grpc_method`] is not a method path
    /// (`/package.Service/Method`).
    #[error("grpc method `{0}` is not a method path like /package.Service/Method")]
    GrpcMethod(String),
}

impl Diag {
    /// Starts a builder with defaults (no token, loopback-only endpoints, nothing trusted).
    ///
    /// ```
    /// use diag_core::Diag;
    /// let diag = Diag::builder().service("checkout").build().unwrap();
    /// assert_eq!(diag.service(), "checkout");
    /// assert!(!diag.is_disabled());
    /// ```
    pub fn builder() -> DiagBuilder {
        DiagBuilder::default()
    }

    /// A builder preloaded from the environment; see [`DiagBuilder::from_env`].
    ///
    /// ```
    /// # fn main() -> Result<(), diag_core::ConfigError> {
    /// // DIAG_TOKEN, DIAG_ADMIN_ADDR, ... override what code set before (nothing, here).
    /// let diag = diag_core::Diag::from_env()?.service("checkout").build()?;
    /// assert_eq!(diag.service(), "checkout");
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<DiagBuilder, ConfigError> {
        DiagBuilder::default().from_env()
    }

    /// Which of the service's instances this process is: `DIAG_INSTANCE`, or the builder's
    /// [`instance`](DiagBuilder::instance), or `<hostname>:<pid>` (in Kubernetes the
    /// hostname is the pod's name). Debug responses carry it as `X-Debug-Instance`: a
    /// capture lives in the memory of the instance that served the request, so behind a
    /// load balancer this names where to read it.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().instance("checkout-7f9c-x2").build().unwrap();
    /// assert_eq!(diag.instance(), "checkout-7f9c-x2");
    /// let default = diag_core::Diag::builder().build().unwrap();
    /// assert!(default.instance().ends_with(&format!(":{}", std::process::id())));
    /// ```
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The service name given to the builder.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().service("checkout").build().unwrap();
    /// assert_eq!(diag.service(), "checkout");
    /// ```
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The service version given to the builder.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().version("1.4.2").build().unwrap();
    /// assert_eq!(diag.version(), "1.4.2");
    /// ```
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The registry of `/debug/state` providers.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.state().register("cache", || serde_json::json!({"entries": 12})).unwrap();
    /// assert!(diag.state().names().contains(&"cache".to_owned()));
    /// ```
    pub fn state(&self) -> &StateRegistry {
        &self.inner.state
    }

    /// The "what changed" timeline.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.events().record("deploy", "v1.4.2 rolled out");
    /// assert_eq!(diag.events().recent().last().unwrap().message, "v1.4.2 rolled out");
    /// ```
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// How long ago this handle was built.
    ///
    /// ```
    /// use std::time::Duration;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert!(diag.uptime() < Duration::from_secs(60));
    /// ```
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// When this handle was built, as wall-clock time.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let age = SystemTime::now().duration_since(diag.started_at()).unwrap_or_default();
    /// assert!(age < Duration::from_secs(60));
    /// ```
    pub fn started_at(&self) -> SystemTime {
        self.inner.started_at
    }

    /// The separate admin listener's address, when one is configured.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert_eq!(diag.admin_addr(), None);
    /// let admin = diag_core::Diag::builder().admin_addr("127.0.0.1:9901").build().unwrap();
    /// assert_eq!(admin.admin_addr().unwrap().port(), 9901);
    /// ```
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.inner.admin_addr
    }

    /// Whether the kill switch is on: the middleware then passes requests straight through.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert!(!diag.is_disabled());
    /// diag.set_disabled(true);
    /// assert!(diag.is_disabled());
    /// ```
    pub fn is_disabled(&self) -> bool {
        self.inner.disabled.load(Ordering::Relaxed)
    }

    /// Whether a token guards `/debug/*` (`DIAG_TOKEN`, or [`DiagBuilder::token`]);
    /// without one, only loopback clients get in. An empty `DIAG_TOKEN` is none.
    ///
    /// ```
    /// assert!(diag_core::Diag::builder().token("s3cret").build().unwrap().has_token());
    /// assert!(!diag_core::Diag::builder().token("").build().unwrap().has_token());
    /// ```
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// Flips the kill switch at runtime; a change is recorded as a `kill_switch` event.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.set_disabled(true);
    /// assert_eq!(diag.events().recent().last().unwrap().kind, "kill_switch");
    /// ```
    pub fn set_disabled(&self, disabled: bool) {
        let changed = self.inner.kill_switch.set(
            &self.inner.disabled,
            disabled,
            Instant::now(),
            SystemTime::now(),
        );
        if changed {
            let message = if disabled {
                "kill switch on: diagnostics paused, requests pass straight through"
            } else {
                "kill switch off: diagnostics resumed"
            };
            tracing::warn!(target: "diag::kill_switch", "diag: {message}");
            self.events()
                .record(crate::events::kinds::KILL_SWITCH, message);
        }
    }

    /// The git sha given to the builder, if any.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().git_sha(Some("0123abc")).build().unwrap();
    /// assert_eq!(diag.git_sha(), Some("0123abc"));
    /// assert_eq!(diag_core::Diag::builder().git_sha(Some("")).build().unwrap().git_sha(), None);
    /// ```
    pub fn git_sha(&self) -> Option<&str> {
        self.inner.git_sha.as_deref()
    }

    /// Sends every trace waiting for the OTLP collector now, and waits for it, `timeout`
    /// at most: call it on the way out (after the server's graceful shutdown), or the
    /// server spans of the last second and any debug capture still queued are lost with
    /// the process. `true` when all of them reached the collector, or when no
    /// collector is configured; `false` on a timeout or a failed post (counted in
    /// `diag_otlp_exports_total{outcome="failed"}`). Blocks the calling thread: from
    /// async code, call it inside `spawn_blocking`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// // No collector configured: nothing to send.
    /// assert!(diag.flush_traces(Duration::from_secs(5)));
    /// ```
    pub fn flush_traces(&self, timeout: Duration) -> bool {
        self.inner
            .otlp
            .as_ref()
            .is_none_or(|otlp| otlp.flush(timeout))
    }

    /// [`flush_traces`](Self::flush_traces) for async code, the last line of a
    /// service's `main` after its graceful shutdown: runs it on Tokio's blocking pool
    /// (so await it on a Tokio runtime; actix-web's is one) and logs a warning when
    /// something did not reach the collector. Elsewhere, call `flush_traces` itself.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// // ... serve until shutdown, then:
    /// assert!(diag.flush_traces_on_exit(Duration::from_secs(5)).await);
    /// # }
    /// ```
    pub async fn flush_traces_on_exit(&self, timeout: Duration) -> bool {
        let diag = self.clone();
        let flushed = tokio::task::spawn_blocking(move || diag.flush_traces(timeout))
            .await
            .unwrap_or(false);
        if !flushed {
            tracing::warn!("some traces did not reach the OTLP collector before exit");
        }
        flushed
    }
}

impl Diag {
    /// For the `Diag` a service builds at start and serves with until it exits: this
    /// handle, and every clone made from it from now on, refers to diag's state without
    /// a reference count. The middleware clones the handle into every request (axum's
    /// router clones the layered service, the request's guard keeps one) and drops it at
    /// the end: with a count, that is four atomic writes to one cache line per request,
    /// which every core serving requests pulls back and forth (see BENCHMARKS.md,
    /// "Metrics"). The price: the state is never freed and diag's threads run until the
    /// process ends, so call it once, not on a `Diag` per test or per tenant.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().service("checkout").build().unwrap().leak();
    /// let for_the_router = diag.clone(); // no reference count written
    /// assert_eq!(for_the_router.service(), "checkout");
    /// ```
    pub fn leak(self) -> Diag {
        match self.inner {
            Handle::Process(_) => self,
            Handle::Counted(inner) => Diag {
                inner: Handle::Process(Box::leak(Box::new(inner))),
            },
        }
    }
}

impl std::fmt::Debug for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diag")
            .field("service", &self.inner.service)
            .field("version", &self.inner.version)
            .field("token", &self.inner.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaked_diag_is_cloned_without_counting_and_still_shares_its_state() {
        let diag = Diag::builder().build().unwrap();
        let counted = diag.clone();
        let before = Arc::strong_count(&diag.inner);
        assert_eq!(Arc::strong_count(&counted.clone().inner), before + 1);
        let leaked = diag.leak();
        let clones: Vec<Diag> = (0..3).map(|_| leaked.clone()).collect();
        assert_eq!(
            Arc::strong_count(&leaked.inner),
            before,
            "clones of a leaked Diag take no reference"
        );
        drop(clones);
        assert_eq!(Arc::strong_count(&leaked.inner), before);
        // The same state as the counted handles, and leaking twice changes nothing.
        leaked.clone().leak().set_disabled(true);
        assert!(counted.is_disabled());
    }

    /// A fragment the operator adds hides names containing it in captures too, also
    /// one that is a default fragment of the config view (there, defaults do not apply
    /// to captures: `key` would hide every `cache_key`).
    #[test]
    fn an_added_secret_key_applies_to_captures_even_when_it_is_a_default() {
        use crate::debug::DebugLevel;
        use crate::request::RequestView;
        use crate::trace::TraceId;
        let capture_uri = |diag: &Diag| {
            let view = RequestView {
                method: "POST",
                route: None,
                uri: "/login?DBPWD=hunter2&mysqlpwd=x&cache_key=p7",
                headers: &(),
                peer: &|| None,
            };
            let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
            debug.finish_incomplete();
            let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
            capture.request.uri.clone()
        };
        let added = Diag::builder().secret_key("pwd").build().unwrap();
        assert_eq!(
            capture_uri(&added),
            "/login?DBPWD=[redacted]&mysqlpwd=[redacted]&cache_key=p7"
        );
        let defaults = Diag::builder().build().unwrap();
        assert_eq!(
            capture_uri(&defaults),
            "/login?DBPWD=hunter2&mysqlpwd=x&cache_key=p7",
            "`pwd` as a whole word only, by default"
        );
    }
}
