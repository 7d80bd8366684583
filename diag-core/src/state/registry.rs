use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use parking_lot::RwLock;
use serde::Serialize;

use super::{ProviderReport, ProviderStatus};

type BoxFuture = Pin<Box<dyn Future<Output = Result<serde_json::Value, ValueError>> + Send>>;

enum Provider {
    Sync(Arc<dyn Fn() -> Result<serde_json::Value, ValueError> + Send + Sync>),
    Async(Arc<dyn Fn() -> BoxFuture + Send + Sync>),
}

/// The most providers one registry holds (the built-ins included), which also bounds
/// the `provider` label of `diag_state_provider_calls_total`.
///
/// ```
/// use diag_core::state::{MAX_PROVIDERS, RegisterError};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let mut i = 0;
/// while diag.state().register(&format!("shard-{i}"), || "ok").is_ok() {
///     i += 1;
/// }
/// assert_eq!(diag.state().names().len(), MAX_PROVIDERS); // the built-ins count too
/// let err = diag.state().register("one-more", || "ok").unwrap_err();
/// assert_eq!(err, RegisterError::TooMany { what: "state providers", cap: MAX_PROVIDERS });
/// ```
pub const MAX_PROVIDERS: usize = 256;

/// A provider and how its calls ended, by [`ProviderStatus`] (in `ProviderStatus::ALL`
/// order).
struct Entry {
    provider: Provider,
    outcomes: [AtomicU64; 3],
    /// Set while a call of the provider runs. One call at a time: a provider that hangs
    /// (a lock held by a stuck thread, in the incident being looked at) then holds one
    /// blocking thread, not one more per read of `/debug/state`, which would drain the
    /// runtime's blocking pool the service itself needs.
    running: Arc<AtomicBool>,
}

/// The right to call a provider, released when the call ends however it ends (returned,
/// panicked, or, for an async provider past its deadline, cancelled).
struct Running(Arc<AtomicBool>);

impl Running {
    fn claim(flag: &Arc<AtomicBool>) -> Option<Running> {
        flag.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Running(flag.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Why a provider could not be registered.
///
/// ```
/// use diag_core::RegisterError;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.state().register("cache", || 0).unwrap();
/// assert_eq!(diag.state().register("cache", || 1), Err(RegisterError::Duplicate("cache".into())));
/// assert_eq!(
///     diag.state().register("My Cache", || 1),
///     Err(RegisterError::InvalidName("My Cache".into()))
/// );
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A provider of that name exists already.
    #[error("a state provider named `{0}` is already registered")]
    Duplicate(String),
    /// The name is empty, too long, or has characters other than `a-z 0-9 _ - .`.
    #[error("`{0}` is not a valid provider name: use 1 to 64 of a-z, 0-9, `_`, `-`, `.`")]
    InvalidName(String),
    /// The table of such things is full.
    #[error("at most {cap} {what} can be registered")]
    TooMany {
        /// What is full, e.g. `queues`.
        what: &'static str,
        /// How many it holds.
        cap: usize,
    },
}

/// The registry behind `/debug/state`. Get it from [`Diag::state`](crate::Diag::state).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.state().register("pool", || serde_json::json!({"size": 8, "idle": 3})).unwrap();
/// diag.state()
///     .register_async("upstream", || async { serde_json::json!({"healthy": true}) })
///     .unwrap();
/// let report = diag.state().collect("pool").await.unwrap();
/// assert_eq!(report.value.unwrap()["idle"], 3);
/// # }
/// ```
pub struct StateRegistry {
    providers: RwLock<BTreeMap<String, Arc<Entry>>>,
    deadline: Duration,
    max_bytes: usize,
    max_total_bytes: usize,
    /// Reports replaced by an error entry to keep a whole answer under
    /// `max_total_bytes`.
    left_out: AtomicU64,
}

impl StateRegistry {
    pub(crate) fn new(deadline: Duration, max_bytes: usize) -> Self {
        StateRegistry {
            providers: RwLock::new(BTreeMap::new()),
            deadline,
            max_bytes,
            max_total_bytes: usize::MAX,
            left_out: AtomicU64::new(0),
        }
    }

    /// Caps the whole `collect_all` answer (see `response_cap`).
    pub(crate) fn with_max_total_bytes(mut self, bytes: usize) -> Self {
        self.max_total_bytes = bytes;
        self
    }

    /// Registers a provider called on every read of `/debug/state`. It runs on a
    /// blocking thread, so it may take locks; it must not assume any particular thread.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::{Arc, Mutex};
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let sessions = Arc::new(Mutex::new(vec!["ada", "grace"]));
    /// let seen = sessions.clone();
    /// diag.state()
    ///     .register("sessions", move || serde_json::json!({"open": seen.lock().unwrap().len()}))
    ///     .unwrap();
    /// let report = diag.state().collect("sessions").await.unwrap();
    /// assert_eq!(report.value.unwrap()["open"], 2);
    /// # }
    /// ```
    pub fn register<F, T>(&self, name: &str, f: F) -> Result<(), RegisterError>
    where
        F: Fn() -> T + Send + Sync + 'static,
        T: Serialize,
    {
        let max = self.max_bytes;
        self.insert(
            name,
            Provider::Sync(Arc::new(move || capped_value(&f(), max))),
        )
    }

    /// Registers an async provider; it is polled on the Tokio runtime serving the
    /// endpoint.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.state()
    ///     .register_async("pricing", || async {
    ///         tokio::time::sleep(Duration::from_millis(5)).await; // e.g. a health check
    ///         serde_json::json!({"reachable": true})
    ///     })
    ///     .unwrap();
    /// let report = diag.state().collect("pricing").await.unwrap();
    /// assert_eq!(report.value.unwrap()["reachable"], true);
    /// # }
    /// ```
    pub fn register_async<F, Fut, T>(&self, name: &str, f: F) -> Result<(), RegisterError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Serialize,
    {
        let max = self.max_bytes;
        self.insert(
            name,
            Provider::Async(Arc::new(move || {
                let fut = f();
                Box::pin(async move { capped_value(&fut.await, max) })
            })),
        )
    }

    /// Removes a provider; returns whether it existed.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.state().register("migration", || "running").unwrap();
    /// assert!(diag.state().unregister("migration"));
    /// assert!(!diag.state().unregister("migration"));
    /// assert!(!diag.state().names().contains(&"migration".to_owned()));
    /// ```
    pub fn unregister(&self, name: &str) -> bool {
        self.providers.write().remove(name).is_some()
    }

    /// The registered names, sorted.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.state().register("cache", || 0).unwrap();
    /// let names = diag.state().names();
    /// assert!(names.contains(&"cache".to_owned()));
    /// assert!(names.contains(&"process".to_owned())); // a built-in
    /// assert!(names.is_sorted());
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.providers.read().keys().cloned().collect()
    }

    /// Calls one provider, or `None` when no provider has that name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::ProviderStatus;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.state().register("flags", || serde_json::json!({"new_cart": true})).unwrap();
    /// let report = diag.state().collect("flags").await.unwrap();
    /// assert_eq!(report.status, ProviderStatus::Ok);
    /// assert_eq!(report.value.unwrap()["new_cart"], true);
    /// assert!(diag.state().collect("nope").await.is_none());
    /// # }
    /// ```
    pub async fn collect(&self, name: &str) -> Option<ProviderReport> {
        let entry = self.providers.read().get(name).cloned()?;
        Some(self.call(entry).await)
    }

    /// Calls every provider concurrently and returns the reports by name. When they
    /// add up to more than the response cap
    /// ([`DiagBuilder::state_max_total_bytes`](crate::DiagBuilder::state_max_total_bytes)),
    /// the largest are replaced by error entries saying so.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::collections::HashMap;
    /// use diag_core::ProviderStatus;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.state().register("cache", || serde_json::json!({"entries": 12})).unwrap();
    /// // Not JSON (map keys must be strings): an error entry; the others are unaffected.
    /// diag.state().register("broken", || HashMap::from([((1, 2), "x")])).unwrap();
    /// let all = diag.state().collect_all().await;
    /// assert_eq!(all["cache"].value.as_ref().unwrap()["entries"], 12);
    /// assert_eq!(all["broken"].status, ProviderStatus::Error);
    /// assert!(all.contains_key("process"));
    /// # }
    /// ```
    pub async fn collect_all(&self) -> BTreeMap<String, ProviderReport> {
        let providers: Vec<(String, Arc<Entry>)> = self
            .providers
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let calls = providers
            .into_iter()
            .map(|(name, p)| async move { (name, self.call(p).await) });
        let mut reports = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect();
        let left_out = super::response_cap::apply(&mut reports, self.max_total_bytes);
        self.left_out.fetch_add(left_out, Ordering::Relaxed);
        reports
    }

    /// How many reports [`collect_all`](Self::collect_all) replaced by an error entry
    /// to keep its answer under the cap, since start.
    pub(crate) fn left_out(&self) -> u64 {
        self.left_out.load(Ordering::Relaxed)
    }

    fn insert(&self, name: &str, provider: Provider) -> Result<(), RegisterError> {
        if !valid_name(name) {
            return Err(RegisterError::InvalidName(name.to_owned()));
        }
        let mut map = self.providers.write();
        if map.contains_key(name) {
            return Err(RegisterError::Duplicate(name.to_owned()));
        }
        if map.len() >= MAX_PROVIDERS {
            return Err(RegisterError::TooMany {
                what: "state providers",
                cap: MAX_PROVIDERS,
            });
        }
        let outcomes = std::array::from_fn(|_| AtomicU64::new(0));
        let running = Arc::new(AtomicBool::new(false));
        let entry = Entry {
            provider,
            outcomes,
            running,
        };
        map.insert(name.to_owned(), Arc::new(entry));
        Ok(())
    }

    /// How each registered provider's calls ended since it was registered, by name and
    /// then in [`ProviderStatus::ALL`] order.
    pub(crate) fn outcomes(&self) -> Vec<(String, [u64; 3])> {
        self.providers
            .read()
            .iter()
            .map(|(name, e)| {
                let counts = std::array::from_fn(|i| e.outcomes[i].load(Ordering::Relaxed));
                (name.clone(), counts)
            })
            .collect()
    }

    async fn call(&self, entry: Arc<Entry>) -> ProviderReport {
        let report = self.call_provider(&entry).await;
        let slot = ProviderStatus::ALL
            .iter()
            .position(|s| *s == report.status)
            .unwrap_or(0);
        entry.outcomes[slot].fetch_add(1, Ordering::Relaxed);
        report
    }

    async fn call_provider(&self, entry: &Entry) -> ProviderReport {
        let start = Instant::now();
        // Microsecond precision is plenty, and keeps the JSON readable.
        let ms = |start: Instant| (start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        // Another read's call still running: wait for it within this read's deadline
        // (two people reading at once each get an answer), never start a second one.
        let claim = loop {
            if let Some(claim) = Running::claim(&entry.running) {
                break claim;
            }
            if start.elapsed() >= self.deadline {
                return ProviderReport::failed(
                    ProviderStatus::Timeout,
                    format!(
                        "an earlier read's call has not returned after {} ms; \
                         not called again until it does",
                        self.deadline.as_millis()
                    ),
                    ms(start),
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        // Both kinds run as their own task, so a panic or a hang stays inside it; the
        // task holds the claim until it ends.
        let task = match &entry.provider {
            Provider::Sync(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || {
                    let _claim = claim;
                    crate::log::as_provider(|| f())
                })
            }
            Provider::Async(f) => {
                let f = f.clone();
                // Building the future may itself panic: catch that too.
                match std::panic::catch_unwind(AssertUnwindSafe(|| crate::log::as_provider(|| f())))
                {
                    Ok(mut fut) => tokio::spawn(async move {
                        let _claim = claim;
                        std::future::poll_fn(|cx| crate::log::as_provider(|| fut.as_mut().poll(cx)))
                            .await
                    }),
                    Err(panic) => {
                        return ProviderReport::failed(
                            ProviderStatus::Error,
                            panic_message(&*panic),
                            ms(start),
                        );
                    }
                }
            }
        };
        let abort = task.abort_handle();
        let left = self.deadline.saturating_sub(start.elapsed());
        let outcome = tokio::time::timeout(left, task.map(|r| r)).await;
        let elapsed = ms(start);
        match outcome {
            Err(_) => {
                // An async provider is cancelled; a blocking one cannot be, and finishes
                // on its own thread with nobody waiting.
                abort.abort();
                ProviderReport::failed(
                    ProviderStatus::Timeout,
                    format!("no answer within {} ms", self.deadline.as_millis()),
                    elapsed,
                )
            }
            Ok(Err(join)) => {
                let msg = match join.try_into_panic() {
                    Ok(panic) => panic_message(&*panic),
                    Err(e) => format!("provider task failed: {e}"),
                };
                ProviderReport::failed(ProviderStatus::Error, msg, elapsed)
            }
            Ok(Ok(Err(ValueError::Serialize(e)))) => ProviderReport::failed(
                ProviderStatus::Error,
                format!("could not serialize: {e}"),
                elapsed,
            ),
            Ok(Ok(Err(ValueError::TooLarge))) => ProviderReport::failed(
                ProviderStatus::Error,
                format!(
                    "value is over the {} byte cap (left out unread past it)",
                    self.max_bytes
                ),
                elapsed,
            ),
            Ok(Ok(Ok(value))) => ProviderReport::ok(value, elapsed),
        }
    }
}

impl std::fmt::Debug for StateRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRegistry")
            .field("providers", &self.names())
            .finish()
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    format!("provider panicked: {detail}")
}

/// Why a provider's value is not shown.
enum ValueError {
    Serialize(serde_json::Error),
    /// Its JSON is longer than the registry's cap.
    TooLarge,
}

/// `value` as JSON, unless its JSON passes `max` bytes: then serialization stops there,
/// so a provider returning a huge value costs diag at most `max` bytes (a JSON tree of
/// it could take several times the value's own memory).
fn capped_value(value: &impl Serialize, max: usize) -> Result<serde_json::Value, ValueError> {
    struct Capped {
        bytes: Vec<u8>,
        max: usize,
    }
    impl std::io::Write for Capped {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.bytes.len() + buf.len() > self.max {
                return Err(std::io::Error::other("over the cap"));
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Serialized once (a value read from live state may differ on a second pass), into
    // bytes that never pass `max`, then parsed.
    let mut out = Capped {
        bytes: Vec::new(),
        max,
    };
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => serde_json::from_slice(&out.bytes).map_err(ValueError::Serialize),
        Err(e) if e.is_io() => Err(ValueError::TooLarge),
        Err(e) => Err(ValueError::Serialize(e)),
    }
}

pub(crate) fn serialized_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, value);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generous deadline: only the timeout test wants a short one, and a panic that
    /// prints a backtrace (RUST_BACKTRACE=1) on a busy machine can take a while.
    fn registry() -> StateRegistry {
        StateRegistry::new(Duration::from_secs(10), 1024)
    }

    #[tokio::test]
    async fn panicking_provider_is_an_error_entry_and_others_still_render() {
        let r = registry();
        r.register("good", || 42).unwrap();
        r.register("bad", || -> u32 { panic!("cache lock poisoned") })
            .unwrap();
        let all = r.collect_all().await;
        assert_eq!(all["good"].status, ProviderStatus::Ok);
        assert_eq!(all["good"].value, Some(serde_json::json!(42)));
        assert_eq!(all["bad"].status, ProviderStatus::Error);
        assert!(
            all["bad"]
                .error
                .as_deref()
                .unwrap()
                .contains("cache lock poisoned")
        );
    }

    #[tokio::test]
    async fn slow_providers_time_out_without_holding_the_response() {
        let r = StateRegistry::new(Duration::from_millis(200), 1024);
        r.register("stuck", || std::thread::sleep(Duration::from_millis(1500)))
            .unwrap();
        r.register_async("stuck_async", std::future::pending::<u8>)
            .unwrap();
        r.register("quick", || "fine").unwrap();
        let start = Instant::now();
        let all = r.collect_all().await;
        assert!(
            start.elapsed() < Duration::from_millis(1000),
            "took {:?}",
            start.elapsed()
        );
        assert_eq!(all["stuck"].status, ProviderStatus::Timeout);
        assert_eq!(all["stuck_async"].status, ProviderStatus::Timeout);
        assert_eq!(all["quick"].status, ProviderStatus::Ok);
    }

    /// A provider that hangs holds one blocking thread however often `/debug/state` is
    /// read, and is called again once it returns; readers at once each get an answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_provider_is_not_called_again_until_it_returns() {
        let r = StateRegistry::new(Duration::from_millis(100), 1024);
        let calls = Arc::new(AtomicU64::new(0));
        let released = Arc::new(AtomicBool::new(false));
        let (c, rel) = (calls.clone(), released.clone());
        r.register("hung", move || {
            c.fetch_add(1, Ordering::SeqCst);
            while !rel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            "back"
        })
        .unwrap();
        for _ in 0..5 {
            let rep = r.collect("hung").await.unwrap();
            assert_eq!(rep.status, ProviderStatus::Timeout);
        }
        let concurrent = futures_util::future::join_all((0..5).map(|_| r.collect("hung"))).await;
        assert!(
            concurrent
                .iter()
                .all(|rep| rep.as_ref().unwrap().status == ProviderStatus::Timeout)
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one thread stuck, not eleven"
        );
        let rep = r.collect("hung").await.unwrap();
        assert!(rep.error.unwrap().contains("not called again"));

        released.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        let rep = loop {
            let rep = r.collect("hung").await.unwrap();
            if rep.status == ProviderStatus::Ok || Instant::now() > deadline {
                break rep;
            }
        };
        assert_eq!(rep.value, Some(serde_json::json!("back")));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // A quick provider read by ten at once: each reader gets its value.
        r.register("quick", || 7).unwrap();
        let all = futures_util::future::join_all((0..10).map(|_| r.collect("quick"))).await;
        assert!(
            all.iter()
                .all(|rep| rep.as_ref().unwrap().status == ProviderStatus::Ok)
        );
    }

    #[tokio::test]
    async fn oversized_values_are_refused() {
        let r = registry();
        r.register("huge", || "x".repeat(4096)).unwrap();
        let rep = r.collect("huge").await.unwrap();
        assert_eq!(rep.status, ProviderStatus::Error);
        assert!(rep.error.unwrap().contains("byte cap"));
    }

    /// A value whose JSON passes the cap is not turned into a JSON tree: serializing it
    /// stops at the cap.
    #[test]
    fn serializing_a_huge_value_stops_at_the_cap() {
        struct Endless(std::sync::atomic::AtomicUsize);
        impl Serialize for Endless {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(None)?;
                for i in 0..10_000_000u64 {
                    self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    seq.serialize_element(&i)?;
                }
                seq.end()
            }
        }
        let endless = Endless(Default::default());
        assert!(matches!(
            capped_value(&endless, 1024),
            Err(ValueError::TooLarge)
        ));
        let elements = endless.0.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            elements < 1000,
            "stopped early: {elements} elements serialized"
        );
        assert_eq!(
            capped_value(&[1, 2], 5).ok(),
            Some(serde_json::json!([1, 2]))
        );
        assert!(matches!(
            capped_value(&[1, 2], 4),
            Err(ValueError::TooLarge)
        ));
    }

    #[test]
    fn names_are_validated_and_unique() {
        let r = registry();
        r.register("cache", || 1).unwrap();
        assert_eq!(
            r.register("cache", || 2),
            Err(RegisterError::Duplicate("cache".into()))
        );
        assert!(matches!(
            r.register("", || 1),
            Err(RegisterError::InvalidName(_))
        ));
        assert!(matches!(
            r.register("Has Space", || 1),
            Err(RegisterError::InvalidName(_))
        ));
        assert_eq!(r.names(), vec!["cache".to_owned()]);
    }

    fn endpoint(path: &str) -> crate::EndpointRequest {
        crate::EndpointRequest {
            method: "GET".into(),
            path: path.into(),
            query: Some("pretty".into()),
            peer: Some("127.0.0.1:1".parse().unwrap()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn panicking_and_hanging_providers_over_the_endpoint() {
        // Room for the panic hook (a backtrace under RUST_BACKTRACE on a busy machine
        // took over 100 ms), and still a bound on the hanging one.
        let diag = crate::Diag::builder()
            .provider_deadline(Duration::from_millis(1000))
            .build()
            .unwrap();
        diag.state()
            .register("explodes", || -> u8 { panic!("index out of bounds") })
            .unwrap();
        diag.state()
            .register_async("hangs", std::future::pending::<u8>)
            .unwrap();
        diag.state().register("fine", || "ok").unwrap();
        let start = Instant::now();
        let resp = diag.serve(endpoint("/debug/state")).await;
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(resp.status, 200);
        assert!(resp.body.windows(3).any(|w| w == b"\n  "), "pretty-printed");
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["explodes"]["status"], "error");
        assert!(
            v["explodes"]["error"]
                .as_str()
                .unwrap()
                .contains("index out of bounds")
        );
        assert_eq!(v["hangs"]["status"], "timeout");
        assert_eq!(v["fine"]["value"], "ok");
        assert_eq!(v["process"]["status"], "ok");

        let one = diag.serve(endpoint("/debug/state/hangs")).await;
        assert_eq!(one.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&one.body).unwrap();
        assert_eq!(v["status"], "timeout");
    }

    #[tokio::test]
    async fn whole_response_cap_leaves_out_the_largest_over_the_endpoint() {
        let diag = crate::Diag::builder()
            .state_max_total_bytes(8 * 1024)
            .build()
            .unwrap();
        diag.state()
            .register("blob", || "z".repeat(20_000))
            .unwrap();
        let resp = diag.serve(endpoint("/debug/state")).await;
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["blob"]["status"], "error");
        let msg = v["blob"]["error"].as_str().unwrap();
        assert!(
            msg.contains("capped at 8192 bytes") && msg.contains("/debug/state/blob"),
            "{msg}"
        );
        assert_eq!(v["process"]["status"], "ok");
        // Alone, it is still readable (only the per-provider cap applies).
        let one = diag.serve(endpoint("/debug/state/blob")).await;
        let v: serde_json::Value = serde_json::from_slice(&one.body).unwrap();
        assert_eq!(v["status"], "ok");
        // The replacement is counted where an operator can alert on it.
        assert_eq!(diag.state().left_out(), 1);
        let metrics = diag.serve(endpoint("/metrics")).await;
        let text = String::from_utf8(metrics.body).unwrap();
        assert!(
            text.lines()
                .any(|l| l == "diag_state_reports_left_out_total 1"),
            "{text}"
        );
    }
}
