//! The event kinds diag records itself, so every part spells them the same way.
//!
//! ```
//! use diag_core::events::kinds;
//! let diag = diag_core::Diag::builder().build().unwrap();
//! diag.set_disabled(true);
//! let seen: Vec<String> = diag.events().recent().into_iter().map(|e| e.kind).collect();
//! assert_eq!(seen, [kinds::START, kinds::KILL_SWITCH]);
//! ```

/// The [`Diag`](crate::Diag) was built.
///
/// ```
/// use diag_core::events::kinds;
/// let diag = diag_core::Diag::builder().service("checkout").build().unwrap();
/// let first = &diag.events().recent()[0];
/// assert_eq!((first.seq, first.kind.as_str()), (1, kinds::START));
/// ```
pub const START: &str = "start";
/// The service reloaded its configuration.
///
/// ```
/// use diag_core::events::kinds;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.config(&serde_json::json!({"pool": 8})).unwrap();
/// diag.reload_config(&serde_json::json!({"pool": 16})).unwrap();
/// let reloads = diag.events().since(0, Some(kinds::CONFIG_RELOAD), 10);
/// assert_eq!(reloads[0].message, "configuration reloaded; changed: pool");
/// ```
pub const CONFIG_RELOAD: &str = "config_reload";
/// The runtime log level changed (or its TTL ran out).
///
/// ```
/// use diag_core::events::kinds;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let _filter = diag.log_filter(tracing_subscriber::EnvFilter::new("info"));
/// diag.log_level().set("info,sqlx=debug", None).unwrap();
/// assert_eq!(diag.events().recent().last().unwrap().kind, kinds::LOG_LEVEL);
/// ```
pub const LOG_LEVEL: &str = "log_level";
/// The kill switch was turned on or off.
///
/// ```
/// use diag_core::events::kinds;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.set_disabled(true);
/// diag.set_disabled(false);
/// assert_eq!(diag.events().since(0, Some(kinds::KILL_SWITCH), 10).len(), 2);
/// ```
pub const KILL_SWITCH: &str = "kill_switch";
/// Debug requests are being refused: the budget ran out.
///
/// ```
/// use diag_core::events::kinds;
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().token("s3cret").debug_budget(0.01, 1).build().unwrap();
/// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// for _ in 0..2 {
///     let req = RequestView { method: "GET", route: None, uri: "/", headers: &headers, peer: &|| None };
///     let _ = diag.begin(&req).finish(200, &mut ());
/// }
/// assert_eq!(diag.events().since(0, Some(kinds::DEBUG_BUDGET_EXHAUSTED), 10).len(), 1);
/// ```
pub const DEBUG_BUDGET_EXHAUSTED: &str = "debug_budget_exhausted";
/// A metric family hit its label-set cap; further label sets fold into `__overflow__`.
///
/// ```
/// use diag_core::events::kinds;
/// let diag = diag_core::Diag::builder().max_label_sets(1).build().unwrap();
/// let by_user = diag.counter_family("user_logins", "Logins per user.", ["user"]).unwrap();
/// by_user.with(["ada"]).inc();
/// by_user.with(["grace"]).inc();
/// let overflow = diag.events().since(0, Some(kinds::METRIC_OVERFLOW), 10);
/// assert!(overflow[0].message.contains("user_logins"));
/// ```
pub const METRIC_OVERFLOW: &str = "metric_overflow";
