//! [`DiagBuilder`]: every setting of a [`Diag`], from code and from the environment.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use crate::auth::Secret;
use crate::events::Events;
use crate::metrics::registry::MetricsRegistry;
use crate::metrics::{DEFAULT_MAX_LABEL_SETS, LATENCY_BUCKETS, validate_buckets};
use crate::net::{Cidr, TrustedProxies};
use crate::state::StateRegistry;
use crate::state::config::ConfigState;
use crate::state::in_flight::InFlight;
use crate::state::queues::Queues;
use crate::state::{DEFAULT_SECRET_KEYS, ErrorRing, SecretKeys};
use crate::trace::Sampler;

use super::{ConfigError, Diag, Handle, Inner};

/// Builds a [`Diag`]. Every setting has a default; [`DiagBuilder::from_env`] reads the
/// documented environment variables on top of what code set.
///
/// ```
/// use std::time::Duration;
/// let diag = diag_core::Diag::builder()
///     .service("checkout")
///     .version("1.4.2")
///     .token("s3cret")
///     .provider_deadline(Duration::from_millis(200))
///     .build()
///     .unwrap();
/// assert_eq!((diag.service(), diag.version()), ("checkout", "1.4.2"));
/// ```
#[derive(Debug)]
#[must_use]
pub struct DiagBuilder {
    pub(super) service: String,
    pub(super) version: String,
    pub(super) instance: Option<String>,
    pub(super) token: Option<Secret>,
    pub(super) trusted_proxies: Vec<String>,
    pub(super) admin_addr: Option<String>,
    pub(super) metrics_public: bool,
    pub(super) process_metrics: bool,
    pub(super) traceparent_every_response: bool,
    pub(super) disabled: bool,
    pub(super) provider_deadline: Duration,
    pub(super) provider_max_bytes: usize,
    pub(super) events_capacity: usize,
    pub(crate) debug: crate::debug::DebugConfig,
    pub(super) state_max_total_bytes: usize,
    pub(super) git_sha: Option<String>,
    pub(super) build_info: std::collections::BTreeMap<String, String>,
    pub(super) secret_keys: SecretKeys,
    /// The fragments [`secret_key`](Self::secret_key) added: applied to captures too,
    /// even one that is also a default.
    pub(super) added_secret_keys: Vec<String>,
    pub(super) error_ring_capacity: usize,
    pub(super) sampling_ratio: f64,
    pub(super) http_duration_buckets: Vec<f64>,
    pub(super) max_label_sets: usize,
    pub(super) otlp_endpoint: Option<String>,
    /// gRPC methods known before any call: labels from the first call, even a failed one.
    pub(super) grpc_methods: Vec<String>,
    /// What the operator must know about an endpoint taken from (or refused from)
    /// OpenTelemetry's variables: logged as a WARN and recorded as a `start` event.
    pub(super) otlp_note: Option<String>,
    /// Whether a debug request's export holds the spans and log lines it recorded.
    pub(super) otlp_debug_spans: bool,
}

impl Default for DiagBuilder {
    fn default() -> Self {
        DiagBuilder {
            service: "unknown_service".to_owned(),
            version: "0.0.0".to_owned(),
            instance: None,
            token: None,
            trusted_proxies: Vec::new(),
            admin_addr: None,
            metrics_public: true,
            process_metrics: true,
            traceparent_every_response: true,
            disabled: false,
            provider_deadline: Duration::from_millis(500),
            provider_max_bytes: 256 * 1024,
            events_capacity: 500,
            debug: Default::default(),
            state_max_total_bytes: 1024 * 1024,
            git_sha: None,
            build_info: std::collections::BTreeMap::new(),
            secret_keys: SecretKeys::default(),
            added_secret_keys: Vec::new(),
            grpc_methods: Vec::new(),
            error_ring_capacity: 100,
            sampling_ratio: 1.0,
            http_duration_buckets: LATENCY_BUCKETS.to_vec(),
            max_label_sets: DEFAULT_MAX_LABEL_SETS,
            otlp_endpoint: None,
            otlp_note: None,
            otlp_debug_spans: true,
        }
    }
}

impl DiagBuilder {
    /// The service's name, shown on `/debug` and in metrics.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().service("checkout").build().unwrap();
    /// assert_eq!(diag.service(), "checkout");
    /// assert_eq!(diag_core::Diag::builder().build().unwrap().service(), "unknown_service");
    /// ```
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = name.into();
        self
    }

    /// The service's version, shown on `/debug` and by the `process` provider.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().version(env!("CARGO_PKG_VERSION")).build().unwrap();
    /// assert_eq!(diag.version(), env!("CARGO_PKG_VERSION"));
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// This process's name among the service's instances (default `<hostname>:<pid>`;
    /// see [`Diag::instance`]).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().instance("eu-west-1/checkout-0").build().unwrap();
    /// assert_eq!(diag.instance(), "eu-west-1/checkout-0");
    /// ```
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// The bearer token for `/debug/*`. Without one, only loopback clients get in.
    /// An empty string means no token. Surrounding whitespace (the newline a secret file
    /// ends with) is dropped; [`build`](Self::build) refuses a token with a control
    /// character inside (a line break), which no header could carry.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::EndpointRequest;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let mut req = EndpointRequest { method: "GET".into(), path: "/debug".into(), ..Default::default() };
    /// assert_eq!(diag.serve(req.clone()).await.status, 401);
    /// req.headers.push(("authorization".into(), "Bearer s3cret".into()));
    /// assert_eq!(diag.serve(req).await.status, 200);
    /// # }
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Secret::configured(token.into());
        self
    }

    /// A proxy (address or CIDR network) whose `X-Forwarded-For` is believed.
    /// None is trusted by default.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::{Diag, EndpointRequest};
    /// // No token: loopback clients only. This one comes through a proxy at 10.0.0.2.
    /// let req = EndpointRequest {
    ///     method: "GET".into(),
    ///     path: "/debug".into(),
    ///     headers: vec![("x-forwarded-for".into(), "127.0.0.1".into())],
    ///     peer: Some("10.0.0.2:41000".parse().unwrap()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(Diag::builder().build().unwrap().serve(req.clone()).await.status, 403);
    /// let diag = Diag::builder().trusted_proxy("10.0.0.0/24").build().unwrap();
    /// assert_eq!(diag.serve(req).await.status, 200);
    /// # }
    /// ```
    pub fn trusted_proxy(mut self, net: impl Into<String>) -> Self {
        self.trusted_proxies.push(net.into());
        self
    }

    /// Serve the endpoints on a separate listener at `addr` (e.g. `127.0.0.1:9901`)
    /// instead of, or as well as, the service's own router.
    ///
    /// ```
    /// use diag_core::{ConfigError, Diag};
    /// let diag = Diag::builder().admin_addr("127.0.0.1:9901").build().unwrap();
    /// assert_eq!(diag.admin_addr(), Some("127.0.0.1:9901".parse().unwrap()));
    /// let err = Diag::builder().admin_addr("localhost").build().unwrap_err();
    /// assert!(matches!(err, ConfigError::AdminAddr(_)));
    /// ```
    pub fn admin_addr(mut self, addr: impl Into<String>) -> Self {
        self.admin_addr = Some(addr.into());
        self
    }

    /// Whether `/metrics` (and `/metrics/`) is readable without the token (default
    /// `true`: Prometheus scrapers usually carry none). When `false`, `/metrics` is
    /// guarded like `/debug/*`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::EndpointRequest;
    /// let public = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// for path in ["/metrics", "/metrics/"] {
    ///     let scrape = EndpointRequest { method: "GET".into(), path: path.into(), ..Default::default() };
    ///     assert_eq!(public.serve(scrape).await.status, 200, "{path}");
    /// }
    /// let diag = diag_core::Diag::builder().token("s3cret").metrics_public(false).build().unwrap();
    /// let mut scrape =
    ///     EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// assert_eq!(diag.serve(scrape.clone()).await.status, 401);
    /// scrape.headers.push(("authorization".into(), "Bearer s3cret".into()));
    /// assert_eq!(diag.serve(scrape).await.status, 200);
    /// # }
    /// ```
    pub fn metrics_public(mut self, public: bool) -> Self {
        self.metrics_public = public;
        self
    }

    /// Whether `/metrics` carries the process collector (default `true`):
    /// `process_cpu_seconds_total`, `process_resident_memory_bytes`, open and maximum
    /// descriptors, threads, start time, `service_build_info` and the Tokio runtime's
    /// load, under the names Prometheus's client libraries use (see the
    /// [`metrics`](crate::metrics) module). Turn it off when another library in the
    /// service already writes these names to the same scrape. `DIAG_PROCESS_METRICS`
    /// sets it from the environment.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().process_metrics(false).build().unwrap();
    /// # let _ = diag;
    /// ```
    pub fn process_metrics(mut self, on: bool) -> Self {
        self.process_metrics = on;
        self
    }

    /// Whether every response carries a `traceparent` naming its request's trace
    /// (default `true`), so a client's log or a proxy's access log can match any
    /// response (a slow success too) with an exemplar or a trace. Off, only the
    /// responses someone asks about carry it: a debug request's, and an error's (an HTTP
    /// status of 400 or more, or a gRPC status other than `OK` in the response head), so
    /// a client reporting a failure can still quote its trace. Turn it off to save what
    /// it costs: its 70 bytes cost a small response about 2% of its server CPU on
    /// loopback (BENCHMARKS.md, the evening session of 2026-11-27), and it tells every
    /// client the service's trace ids. A `traceparent` the handler set
    /// itself is always kept. `DIAG_TRACEPARENT_EVERY_RESPONSE` sets it from the
    /// environment.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let answer = |diag: &diag_core::Diag, status| {
    ///     let guard = diag.begin(&RequestView {
    ///         method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
    ///     });
    ///     let mut headers: Vec<(String, String)> = Vec::new();
    ///     let _tap = guard.finish(status, &mut headers);
    ///     headers.iter().any(|(name, _)| name == "traceparent")
    /// };
    /// let default = diag_core::Diag::builder().build().unwrap();
    /// assert!(answer(&default, 200));
    /// let errors = diag_core::Diag::builder().traceparent_on_every_response(false).build().unwrap();
    /// assert!(!answer(&errors, 200));
    /// assert!(answer(&errors, 503), "an error names its trace");
    /// ```
    pub fn traceparent_on_every_response(mut self, on: bool) -> Self {
        self.traceparent_every_response = on;
        self
    }

    /// Starts with the kill switch on: the middleware is a pass-through.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().disabled(true).build().unwrap();
    /// assert!(diag.is_disabled());
    /// assert!(!diag.watches("/products/7")); // requests pass straight through
    /// ```
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// How long a state provider may take before it is reported as `timeout`
    /// (default 500 ms).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use diag_core::ProviderStatus;
    /// let diag = diag_core::Diag::builder()
    ///     .provider_deadline(Duration::from_millis(20))
    ///     .build()
    ///     .unwrap();
    /// diag.state().register_async("stuck", || std::future::pending::<()>()).unwrap();
    /// let report = diag.state().collect("stuck").await.unwrap();
    /// assert_eq!(report.status, ProviderStatus::Timeout);
    /// assert_eq!(report.error.as_deref(), Some("no answer within 20 ms"));
    /// # }
    /// ```
    pub fn provider_deadline(mut self, deadline: Duration) -> Self {
        self.provider_deadline = deadline;
        self
    }

    /// The largest serialized value one state provider may return (default 256 KiB);
    /// a larger one is reported as an error entry.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::ProviderStatus;
    /// let diag = diag_core::Diag::builder().provider_max_bytes(1024).build().unwrap();
    /// diag.state().register("dump", || vec![0u64; 1000]).unwrap();
    /// let report = diag.state().collect("dump").await.unwrap();
    /// assert_eq!(report.status, ProviderStatus::Error);
    /// # }
    /// ```
    pub fn provider_max_bytes(mut self, bytes: usize) -> Self {
        self.provider_max_bytes = bytes;
        self
    }

    /// How many events the "what changed" timeline keeps (default 500); older ones
    /// are evicted and counted.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().events_capacity(2).build().unwrap(); // records `start`
    /// diag.events().record("deploy", "v1.4.2");
    /// diag.events().record("feature_flag", "new_cart on");
    /// assert_eq!(diag.events().len(), 2);
    /// assert_eq!(diag.events().evicted(), 1);
    /// ```
    pub fn events_capacity(mut self, n: usize) -> Self {
        self.events_capacity = n;
        self
    }

    /// The largest whole `/debug/state` response (default 1 MiB). Over it, the largest
    /// provider entries are replaced by error entries saying so (each stays readable
    /// at `/debug/state/{name}`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::ProviderStatus;
    /// let diag = diag_core::Diag::builder().state_max_total_bytes(16 * 1024).build().unwrap();
    /// diag.state().register("routing_table", || "x".repeat(20_000)).unwrap();
    /// let all = diag.state().collect_all().await;
    /// assert_eq!(all["routing_table"].status, ProviderStatus::Error); // left out of the whole
    /// assert_eq!(all["process"].status, ProviderStatus::Ok);
    /// let alone = diag.state().collect("routing_table").await.unwrap();
    /// assert_eq!(alone.status, ProviderStatus::Ok);
    /// # }
    /// ```
    pub fn state_max_total_bytes(mut self, bytes: usize) -> Self {
        self.state_max_total_bytes = bytes;
        self
    }

    /// The git commit the service was built from, shown by the `process` provider and
    /// `/debug`. Read it when the *service* compiles:
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().git_sha(option_env!("GIT_SHA")).build().unwrap();
    /// # let _ = diag;
    /// ```
    pub fn git_sha(mut self, sha: Option<&str>) -> Self {
        self.git_sha = sha
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from);
        self
    }

    /// Another build fact for the `process` provider (`build_info("rustc", "1.95")`,
    /// `build_info("built_at", env!("BUILD_TIME"))`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let diag = diag_core::Diag::builder().build_info("profile", "release").build().unwrap();
    /// let process = diag.state().collect("process").await.unwrap().value.unwrap();
    /// assert_eq!(process["build"]["extra"]["profile"], "release");
    /// # }
    /// ```
    pub fn build_info(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_info.insert(key.into(), value.into());
        self
    }

    /// Adds a key fragment whose values are hidden in the `config` provider and in
    /// captured error fields (case-insensitive substring; see
    /// [`DEFAULT_SECRET_KEYS`](crate::state::DEFAULT_SECRET_KEYS) for those always on),
    /// and in debug captures: any header, body, query, span or log field whose name
    /// contains it. (The default fragments do not apply to captures, which redact
    /// [`DEFAULT_FIELDS`](crate::debug::DEFAULT_FIELDS) by name instead: `key` would hide
    /// every `cache_key` there.) A field named with
    /// [`redact_field`](Self::redact_field) is hidden here too.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// let diag = diag_core::Diag::builder().secret_key("session").build().unwrap();
    /// let headers = vec![("x-session-id".to_owned(), "s-42".to_owned())];
    /// # let view = RequestView { method: "POST", route: None, uri: "/?session_ref=7", headers: &headers, peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.request_chunk(br#"{"cache_key":"p:7","session_state":"s-42"}"#);
    /// debug.request_end();
    /// debug.finish_incomplete();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert_eq!(capture.request.headers[0].1, "[redacted]");
    /// assert_eq!(capture.request.uri, "/?session_ref=[redacted]");
    /// let body = capture.request.body.text.as_deref().unwrap();
    /// assert_eq!(body, r#"{"cache_key":"p:7","session_state":"[redacted]"}"#);
    /// ```
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().secret_key("session").build().unwrap();
    /// diag.config(&serde_json::json!({"session_id": "abc", "db_password": "x", "port": 80}))
    ///     .unwrap();
    /// let shown = diag.active_config().unwrap();
    /// assert_eq!(shown["session_id"], "***");
    /// assert_eq!(shown["db_password"], "***"); // the defaults stay on
    /// assert_eq!(shown["port"], 80);
    /// ```
    pub fn secret_key(mut self, fragment: &str) -> Self {
        self.secret_keys.add(fragment);
        self.added_secret_keys.push(fragment.to_ascii_lowercase());
        self
    }

    /// Replaces the whole list of secret key fragments (defaults included).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().secret_keys(["password"]).build().unwrap();
    /// diag.config(&serde_json::json!({"cache_key_prefix": "v2:", "password": "x"})).unwrap();
    /// let shown = diag.active_config().unwrap();
    /// assert_eq!(shown["cache_key_prefix"], "v2:"); // `key` is no longer a secret fragment
    /// assert_eq!(shown["password"], "***");
    /// ```
    pub fn secret_keys<I, S>(mut self, fragments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.secret_keys = SecretKeys::new(fragments);
        self
    }

    /// How many ERROR events the `errors` provider keeps (default 100); older ones are
    /// evicted and counted.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().error_ring_capacity(2).build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     for attempt in 1..=3 {
    ///         tracing::error!(attempt, "connect failed");
    ///     }
    /// });
    /// assert_eq!(diag.errors().latest().len(), 2);
    /// assert_eq!(diag.errors().evicted(), 1);
    /// ```
    pub fn error_ring_capacity(mut self, n: usize) -> Self {
        self.error_ring_capacity = n;
        self
    }

    /// The share of new traces (requests without a valid incoming `traceparent`) that
    /// are sampled, from 0.0 to 1.0 (clamped). Default 1.0, OpenTelemetry's default
    /// (`parentbased_always_on`): every request gets an exemplar-worthy trace. Lower it
    /// when the tracing backend cannot take every trace (with an
    /// [`otlp_endpoint`](Self::otlp_endpoint), every sampled request's server span is
    /// sent, so that every exemplar leads to a trace); incoming `traceparent` flags
    /// are honoured regardless, and debug-mode requests are always sampled.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().sampling_ratio(0.0).build().unwrap();
    /// let new_trace = diag.begin(&RequestView {
    ///     method: "GET",
    ///     route: Some("/health"),
    ///     uri: "/health",
    ///     headers: &(),
    ///     peer: &|| None,
    /// });
    /// assert!(!new_trace.trace().sampled);
    /// # let _ = new_trace.finish(200, &mut ());
    /// ```
    pub fn sampling_ratio(mut self, ratio: f64) -> Self {
        self.sampling_ratio = ratio;
        self
    }

    /// Bucket upper bounds, in seconds, of `http_server_request_duration_seconds`
    /// (default [`LATENCY_BUCKETS`], 5 ms to 10 s). Checked by [`DiagBuilder::build`].
    ///
    /// ```
    /// use diag_core::{ConfigError, Diag};
    /// // A service whose requests take seconds, not milliseconds:
    /// let diag = Diag::builder().http_duration_buckets([0.5, 1.0, 5.0, 30.0, 120.0]).build();
    /// assert!(diag.is_ok());
    /// let err = Diag::builder().http_duration_buckets([5.0, 1.0]).build().unwrap_err();
    /// assert!(matches!(err, ConfigError::Buckets(_)));
    /// ```
    pub fn http_duration_buckets(mut self, bounds: impl Into<Vec<f64>>) -> Self {
        self.http_duration_buckets = bounds.into();
        self
    }

    /// How many distinct label sets each metric family keeps (default 2,000); beyond
    /// it, observations fold into the `__overflow__` series and are counted in
    /// `diag_metrics_overflow_total`.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().max_label_sets(100).build().unwrap();
    /// let by_customer = diag.counter_family("customer_orders", "Orders.", ["customer"]).unwrap();
    /// for id in 0..150 {
    ///     by_customer.with([&id.to_string()]).inc();
    /// }
    /// assert_eq!((by_customer.len(), by_customer.overflowed()), (100, 50));
    /// ```
    pub fn max_label_sets(mut self, n: usize) -> Self {
        self.max_label_sets = n;
        self
    }

    /// A gRPC method the service implements (`/package.Service/Method`): its calls get
    /// their own `route` label from the first one, even when it fails. Without it a
    /// method becomes a label only once a call to it succeeds (an error may come from a
    /// layer in front of the router, for made-up paths too), so a method that has only
    /// failed since the process started counts under `unmatched`: after a deploy that
    /// breaks it, say. Call once per method; [`build`](Self::build) refuses a path that
    /// is not a method's.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder()
    ///     .grpc_method("/shop.Cart/Add")
    ///     .build()
    ///     .unwrap();
    /// let guard = diag.begin_grpc(&RequestView {
    ///     method: "POST", route: Some("/shop.Cart/Add"), uri: "/shop.Cart/Add", headers: &(), peer: &|| None,
    /// });
    /// let mut head = vec![
    ///     ("content-type".to_owned(), "application/grpc".to_owned()),
    ///     ("grpc-status".to_owned(), "14".to_owned()), // UNAVAILABLE, the first call
    /// ];
    /// let _ = guard.finish_grpc(200, &mut head);
    /// # let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let metrics = String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap();
    /// assert!(metrics.contains(r#"route="/shop.Cart/Add",status="UNAVAILABLE"} 1"#));
    /// assert!(diag_core::Diag::builder().grpc_method("Add").build().is_err());
    /// ```
    pub fn grpc_method(mut self, path: &str) -> Self {
        self.grpc_methods.push(path.to_owned());
        self
    }

    /// Sends traces to an OpenTelemetry collector: OTLP/HTTP with protobuf to `url`
    /// (`http://host:port`, path `/v1/traces` when none is given; plain HTTP only, so a
    /// collector or agent beside the service). Each request in diagnostic mode sends
    /// its whole recorded trace, redacted like the flight recorder's captures; every
    /// other request whose trace is sampled ([`sampling_ratio`](Self::sampling_ratio))
    /// sends its server span (method, route, status, timing; no path, headers or
    /// bodies). Sent in batches from a thread of diag's own, dropped and counted when
    /// its queues are full. See [`crate::otlp`].
    ///
    /// ```
    /// let diag = diag_core::Diag::builder()
    ///     .otlp_endpoint("http://127.0.0.1:4318")
    ///     .build()
    ///     .unwrap();
    /// # let _ = diag;
    /// assert!(diag_core::Diag::builder().otlp_endpoint("https://x").build().is_err());
    /// ```
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(url.into());
        self.otlp_note = None;
        self
    }

    /// Whether a debug request's trace sent to the [`otlp_endpoint`](Self::otlp_endpoint)
    /// holds the spans and log lines the request recorded (default `true`). Turn it off
    /// when the service's own OpenTelemetry SDK (tracing-opentelemetry) exports its
    /// `tracing` spans: those are the same spans, with ids of the SDK's, so the backend
    /// would show each one twice. Off, diag sends a debug request's server span alone
    /// (its status, timing, `diag.debug_id`), the root the SDK's spans hang under; the
    /// capture at `/debug/requests/{id}` keeps everything either way.
    /// `DIAG_OTLP_DEBUG_SPANS=0` does the same.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder()
    ///     .otlp_endpoint("http://127.0.0.1:4318")
    ///     .otlp_debug_spans(false) // tracing-opentelemetry sends them
    ///     .build()
    ///     .unwrap();
    /// # let _ = diag;
    /// ```
    pub fn otlp_debug_spans(mut self, on: bool) -> Self {
        self.otlp_debug_spans = on;
        self
    }

    /// Checks the settings and builds the handle.
    ///
    /// ```
    /// use diag_core::{ConfigError, Diag};
    /// let diag = Diag::builder().service("checkout").build().unwrap();
    /// assert_eq!(diag.service(), "checkout");
    /// let err = Diag::builder().trusted_proxy("10.0.0.0/33").build().unwrap_err();
    /// assert!(matches!(err, ConfigError::TrustedProxy(_)));
    /// ```
    pub fn build(mut self) -> Result<Diag, ConfigError> {
        let otlp_note = self.otlp_note.take();
        let grpc_methods = std::mem::take(&mut self.grpc_methods);
        if let Some(bad) = grpc_methods
            .iter()
            .find(|m| !crate::request::grpc::is_method_path(m))
        {
            return Err(ConfigError::GrpcMethod(bad.clone()));
        }
        let nets = self
            .trusted_proxies
            .iter()
            .map(|s| s.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()?;
        let admin_addr = self
            .admin_addr
            .map(|a| {
                a.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| ConfigError::AdminAddr(a))
            })
            .transpose()?;
        // A configured secret is secret everywhere: the operator's own key fragments in
        // captures too (not the defaults: `key` would hide every `cache_key` there), and
        // the fields captures redact in the `config` and `errors` providers too.
        let mut fragments: Vec<String> = self
            .secret_keys
            .fragments()
            .iter()
            .filter(|f| {
                !DEFAULT_SECRET_KEYS.contains(&f.as_str()) || self.added_secret_keys.contains(f)
            })
            .cloned()
            .collect();
        fragments.dedup();
        // (The operator's: the defaults are whole words, some of which, as fragments,
        // would hide whole sections of a config: `auth`.)
        for field in &self.debug.redact_fields {
            if !crate::debug::DEFAULT_FIELDS.contains(&field.as_str()) {
                self.secret_keys.add(field);
            }
        }
        if let Some(token) = &self.token {
            token.validate("the token (DIAG_TOKEN, or `token`)")?;
        }
        let debug = crate::debug::DebugMode::new(self.debug, self.token.as_ref(), fragments)?;
        validate_buckets(&self.http_duration_buckets)?;
        let instance = self.instance.unwrap_or_else(default_instance);
        let otlp = match &self.otlp_endpoint {
            None => None,
            Some(url) => {
                let endpoint = crate::otlp::Endpoint::parse(url).map_err(ConfigError::Otlp)?;
                let source = crate::otlp::Source {
                    service: self.service.clone(),
                    version: self.version.clone(),
                    instance: instance.clone(),
                    debug_spans: self.otlp_debug_spans,
                };
                let exporter = crate::otlp::OtlpExporter::start(
                    endpoint,
                    source,
                    debug.recorder().redactor().clone(),
                )
                .map_err(|e| ConfigError::Otlp(e.to_string()))?;
                Some(exporter)
            }
        };
        let (started, started_at) = (Instant::now(), SystemTime::now());
        let inner = Inner {
            endpoint_refused: Default::default(),
            pending_warnings: Default::default(),
            service: self.service,
            version: self.version,
            instance,
            token: self.token,
            trusted_proxies: TrustedProxies::new(nets),
            admin_addr,
            metrics_public: self.metrics_public,
            traceparent_every_response: self.traceparent_every_response,
            disabled: AtomicBool::new(self.disabled),
            kill_switch: crate::state::kill_switch::KillSwitchLog::new(
                self.disabled.then_some((started, started_at)),
            ),
            started,
            started_at,
            state: StateRegistry::new(self.provider_deadline, self.provider_max_bytes)
                .with_max_total_bytes(self.state_max_total_bytes),
            events: Events::new(self.events_capacity).redacting(self.secret_keys.clone()),
            debug,
            git_sha: self.git_sha,
            build_info: self.build_info,
            secret_keys: self.secret_keys,
            config: ConfigState::default(),
            errors: Arc::new(ErrorRing::new(self.error_ring_capacity)),
            queues: Queues::default(),
            in_flight: InFlight::new(),
            route_windows: Default::default(),
            dependency_windows: Default::default(),
            client_calls: Default::default(),
            log_level: crate::log::LogLevelControl::default(),
            metrics: MetricsRegistry::new(self.http_duration_buckets.into(), self.max_label_sets),
            sampler: Sampler::new(self.sampling_ratio),
            tracestate: Default::default(),
            otlp,
        };
        let diag = Diag {
            inner: Handle::Counted(Arc::new(inner)),
        };
        crate::state::process::register(&diag);
        crate::state::config::register(&diag);
        crate::state::errors::register(&diag);
        crate::state::queues::register(&diag);
        crate::state::in_flight::register(&diag);
        crate::state::routes::register(&diag);
        crate::state::events::register(&diag);
        crate::metrics::internals::register(&diag);
        if self.process_metrics {
            crate::metrics::process::register(&diag);
        }
        let sha = diag
            .git_sha()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        diag.inner
            .metrics
            .notifier
            .attach(Arc::downgrade(&diag.inner));
        // Known methods are labels from their first call (gRPC calls are POSTs).
        for method in &grpc_methods {
            diag.inner.metrics.http.active.series(["POST", method]);
        }
        if let Some(otlp) = &diag.inner.otlp {
            otlp.attach(Arc::downgrade(&diag.inner));
        }
        diag.events().record(
            "start",
            format!("{} {}{sha} started", diag.service(), diag.version()),
        );
        if diag.is_disabled() {
            let note =
                "kill switch on from the start: diagnostics off, requests pass straight through";
            diag.warn_at_start(note);
            diag.events()
                .record(crate::events::kinds::KILL_SWITCH, note);
        }
        if let Some(note) = otlp_note {
            diag.warn_at_start(&note);
            diag.events().record(crate::events::kinds::START, note);
        }
        Ok(diag)
    }
}

impl Diag {
    /// A WARN of [`DiagBuilder::build`]: written now when the process has a subscriber,
    /// else kept for [`Diag::init_tracing`] (a service usually builds diag first, and a
    /// line written before any subscriber is lost).
    fn warn_at_start(&self, note: &str) {
        if tracing::dispatcher::has_been_set() {
            tracing::warn!(target: "diag", "{note}");
        } else {
            self.inner.pending_warnings.lock().push(note.to_owned());
        }
    }
}

/// `<hostname>:<pid>`; the hostname from the kernel (`gethostname`), else `HOSTNAME`.
fn default_instance() -> String {
    let host = hostname()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

#[cfg(unix)]
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of its length; gethostname writes at most that
    // many bytes (NUL-terminated when it fits, which a 256-byte buffer always does on
    // Linux, whose host names are at most 64 bytes).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..len]).ok().map(str::to_owned)
}

#[cfg(not(unix))]
fn hostname() -> Option<String> {
    None
}
