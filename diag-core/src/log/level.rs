//! The runtime log level: the service's filter behind an atomically swapped pointer,
//! replaced by [`LogLevel::set`] and put back by [`LogLevel::reset`] or when a TTL runs
//! out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use parking_lot::{Condvar, Mutex};
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use super::filter::LogFilter;
use crate::Diag;
use crate::diag::Inner;
use crate::events::Events;

/// The longest TTL [`LogLevel::set`] accepts.
///
/// ```
/// use std::time::Duration;
/// use diag_core::log::{LogLevelError, MAX_TTL};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// # let _filter = diag.log_filter(tracing_subscriber::EnvFilter::new("info"));
/// let longer = MAX_TTL + Duration::from_secs(1);
/// assert_eq!(diag.log_level().set("debug", Some(longer)), Err(LogLevelError::TtlOutOfRange));
/// assert!(diag.log_level().set("debug", Some(MAX_TTL)).is_ok());
/// ```
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest directive [`LogLevel::set`] accepts, in bytes.
///
/// ```
/// use diag_core::log::{LogLevelError, MAX_DIRECTIVE_BYTES};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// # let _filter = diag.log_filter(tracing_subscriber::EnvFilter::new("info"));
/// let huge = format!("info,{}=debug", "a".repeat(MAX_DIRECTIVE_BYTES));
/// let refused = diag.log_level().set(&huge, None);
/// assert!(matches!(refused, Err(LogLevelError::InvalidDirective { .. })));
/// ```
pub const MAX_DIRECTIVE_BYTES: usize = 4096;

/// The service's filter as it is now; replaced whole on every change.
pub(crate) struct ActiveFilter {
    pub(crate) filter: EnvFilter,
    pub(crate) directive: String,
    is_default: bool,
    expiry: Option<Expiry>,
}

struct Expiry {
    at: Instant,
    revert_to: Revert,
}

#[derive(Clone)]
enum Revert {
    Default,
    Directive(String),
}

/// What [`LogFilter`] reads on every check: the active filter, and its most verbose
/// level so that an event above it is turned away without loading the filter.
pub(crate) struct FilterSlot {
    active: ArcSwap<ActiveFilter>,
    max_level: AtomicUsize,
}

impl FilterSlot {
    fn new(active: Arc<ActiveFilter>) -> Self {
        let max = level_filter_rank(active.filter.max_level_hint());
        FilterSlot {
            active: ArcSwap::new(active),
            max_level: AtomicUsize::new(max),
        }
    }

    #[inline]
    pub(crate) fn load(&self) -> Guard<Arc<ActiveFilter>> {
        self.active.load()
    }

    /// Whether the active filter could enable anything at `level`.
    #[inline]
    pub(crate) fn may_enable(&self, level: &Level) -> bool {
        level_rank(level) <= self.max_level.load(Ordering::Relaxed)
    }

    fn store(&self, active: Arc<ActiveFilter>) {
        let max = level_filter_rank(active.filter.max_level_hint());
        self.active.store(active);
        self.max_level.store(max, Ordering::Relaxed);
        // Callsites cached `always` under the old filter must be asked again, and the
        // new EnvFilter learns the span callsites its directives name.
        super::in_flight::rebuild_interest();
    }
}

fn level_rank(level: &Level) -> usize {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_filter_rank(filter: Option<LevelFilter>) -> usize {
    // No hint means "could be anything".
    filter.map_or(5, |f| f.into_level().map_or(0, |l| level_rank(&l)))
}

/// Why a log level change was refused.
///
/// ```
/// use diag_core::log::LogLevelError;
/// use tracing_subscriber::EnvFilter;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// // Nothing to change until the service's filter goes through `log_filter`.
/// assert_eq!(diag.log_level().current(), Err(LogLevelError::NotInstalled));
/// let _filter = diag.log_filter(EnvFilter::new("info"));
/// assert_eq!(diag.log_level().set("  ", None), Err(LogLevelError::Empty));
/// let err = diag.log_level().set("checkout=loud", None).unwrap_err();
/// assert!(err.to_string().starts_with("invalid directive `checkout=loud`"));
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogLevelError {
    /// The service never called [`Diag::log_filter`], so there is no filter to change.
    #[error("no log filter installed: build the subscriber with diag.log_filter(EnvFilter::...)")]
    NotInstalled,
    /// The directive is empty (use reset to go back to the default).
    #[error("empty directive; use DELETE (reset) to go back to the default")]
    Empty,
    /// The directive does not parse as an `EnvFilter` directive list.
    #[error("invalid directive `{directive}`: {reason}")]
    InvalidDirective {
        /// What was given.
        directive: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The TTL is zero or longer than [`MAX_TTL`].
    #[error("ttl must be between 1 s and {} s", MAX_TTL.as_secs())]
    TtlOutOfRange,
}

/// The active log filter, as [`LogLevel::current`] and the endpoint report it.
///
/// ```
/// use std::time::Duration;
/// use tracing_subscriber::EnvFilter;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let _filter = diag.log_filter(EnvFilter::new("info"));
/// let ttl = Duration::from_secs(600);
/// let state = diag.log_level().set("info,checkout=debug", Some(ttl)).unwrap();
/// assert_eq!(state.directive, "info,checkout=debug");
/// assert_eq!(state.default, "info");
/// assert!(state.expires_in.is_some_and(|left| left <= ttl));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLevelState {
    /// The active directive list, e.g. `info,checkout=debug`.
    pub directive: String,
    /// The service's own filter, which reset and TTL expiry go back to.
    pub default: String,
    /// How long until the active directive reverts by itself, if it was set with a TTL.
    pub expires_in: Option<Duration>,
}

/// Changes the service's log filter at runtime; from [`Diag::log_level`].
///
/// A change swaps the filter atomically (no lock on the event path) and rebuilds
/// tracing's callsite interest cache. A TTL is reverted by one background thread
/// (started on the first TTL, gone when none is pending; no async runtime needed),
/// and at the latest by the next [`LogLevel::current`] read.
///
/// ```
/// use std::time::Duration;
/// use tracing_subscriber::EnvFilter;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let filter = diag.log_filter(EnvFilter::new("info"));
/// // ... `filter` goes on the service's fmt layer ...
/// # let _ = filter;
/// diag.log_level().set("info,checkout=debug", Some(Duration::from_secs(300))).unwrap();
/// assert_eq!(diag.log_level().current().unwrap().directive, "info,checkout=debug");
/// assert!(diag.log_level().set("checkout=loud", None).is_err());
/// diag.log_level().reset().unwrap();
/// assert_eq!(diag.log_level().current().unwrap().directive, "info");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LogLevel<'a> {
    diag: &'a Diag,
}

/// The filter slot once [`Diag::log_filter`] installed one; shared with
/// [`DebugRequestFilter`](super::DebugRequestFilter), which may be built first.
pub(crate) type SharedSlot = Arc<OnceLock<Arc<FilterSlot>>>;

/// Lives in the [`Diag`]: the slot shared with the installed [`LogFilter`], and what
/// changes need to serialize on.
#[derive(Default)]
pub(crate) struct LogLevelControl {
    slot: SharedSlot,
    changes: Mutex<Changes>,
    wakeup: Condvar,
}

#[derive(Default)]
struct Changes {
    default: Option<DefaultFilter>,
    reverter_running: bool,
}

struct DefaultFilter {
    directive: String,
    /// Whether `directive` parses back into the same filter. When it does, going back to
    /// the default builds a fresh `EnvFilter` (the old one's span bookkeeping went stale
    /// while it was swapped out); otherwise the original instance is reused.
    reparses: bool,
    original: Arc<ActiveFilter>,
}

impl LogLevelControl {
    pub(crate) fn shared_slot(&self) -> SharedSlot {
        self.slot.clone()
    }

    /// Whether a runtime change replaces the service's own filter now (a TTL that ran
    /// out but was not put back yet counts as over).
    pub(crate) fn override_active(&self) -> bool {
        self.slot.get().is_some_and(|slot| {
            let active = slot.load();
            !active.is_default && active.expiry.as_ref().is_none_or(|e| e.at > Instant::now())
        })
    }
}

impl std::fmt::Debug for LogLevelControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLevelControl")
            .field("installed", &self.slot.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Diag {
    /// Wraps the service's usual filter into one that also lets a debug request's own
    /// DEBUG/TRACE lines through, and makes it changeable at runtime with
    /// [`Diag::log_level`]. Put the result on the layer that writes the logs.
    ///
    /// It takes an [`EnvFilter`] (not any `Filter`) because runtime changes are
    /// `EnvFilter` directive strings, and the default is shown and restored through
    /// `EnvFilter`'s `Display`. Calling it again replaces the default.
    ///
    /// ```
    /// use tracing_subscriber::{EnvFilter, fmt, prelude::*};
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(fmt::layer().with_filter(diag.log_filter(EnvFilter::from_default_env())))
    ///     .with(diag.debug_recording_layer());
    /// # let _ = subscriber; // a service ends with `.init()`
    /// ```
    pub fn log_filter(&self, service_filter: EnvFilter) -> LogFilter {
        let control = &self.inner.log_level;
        let directive = service_filter.to_string();
        let reparses = EnvFilter::builder()
            .parse(&directive)
            .is_ok_and(|f| f.to_string() == directive);
        let active = Arc::new(ActiveFilter {
            filter: service_filter,
            directive: directive.clone(),
            is_default: true,
            expiry: None,
        });
        let mut changes = control.changes.lock();
        changes.default = Some(DefaultFilter {
            directive,
            reparses,
            original: active.clone(),
        });
        let slot = match control.slot.get() {
            Some(slot) => {
                slot.store(active);
                slot.clone()
            }
            None => {
                // Built under the lock, so `get` then `set` cannot race another caller.
                let slot = Arc::new(FilterSlot::new(active));
                let _ = control.slot.set(slot.clone());
                slot
            }
        };
        LogFilter { slot }
    }

    /// Changes the log filter at runtime (needs [`Diag::log_filter`] installed).
    ///
    /// ```
    /// use tracing_subscriber::EnvFilter;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let _filter = diag.log_filter(EnvFilter::new("warn"));
    /// assert_eq!(diag.log_level().current().unwrap().directive, "warn");
    /// ```
    pub fn log_level(&self) -> LogLevel<'_> {
        LogLevel { diag: self }
    }
}

impl LogLevel<'_> {
    /// Replaces the active filter with `directive` (an `EnvFilter` directive list such as
    /// `info,checkout=debug`). With a `ttl`, the filter active before goes back by
    /// itself when it runs out (a TTL set on top of another TTL goes back to what was
    /// active before the first). Records a `log_level` event, and logs it at WARN under
    /// the filter active before the change.
    ///
    /// A directive with no level for every target (`sqlx=debug`, not `info,sqlx=debug`
    /// or `off,sqlx=debug`) goes on top of the service's default filter: alone it would
    /// turn every other target off, the service's errors included.
    ///
    /// ```
    /// use std::time::Duration;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let _filter = diag.log_filter(tracing_subscriber::EnvFilter::new("info"));
    /// let state = diag.log_level().set("info,sqlx=debug", Some(Duration::from_secs(60))).unwrap();
    /// assert_eq!(state.directive, "info,sqlx=debug");
    /// assert!(state.expires_in.is_some());
    /// let events = diag.events().since(0, Some("log_level"), 10);
    /// assert!(events[0].message.starts_with("log level set to `info,sqlx=debug` for 60 s"));
    ///
    /// // Without a level of its own, the directive keeps the default for the rest.
    /// let state = diag.log_level().set("sqlx=trace", None).unwrap();
    /// assert_eq!(state.directive, "info,sqlx=trace");
    /// ```
    pub fn set(
        &self,
        directive: &str,
        ttl: Option<Duration>,
    ) -> Result<LogLevelState, LogLevelError> {
        let directive = directive.trim();
        if directive.is_empty() {
            return Err(LogLevelError::Empty);
        }
        if ttl.is_some_and(|t| t.is_zero() || t > MAX_TTL) {
            return Err(LogLevelError::TtlOutOfRange);
        }
        if directive.len() > MAX_DIRECTIVE_BYTES {
            return Err(LogLevelError::InvalidDirective {
                directive: directive.chars().take(200).collect(),
                reason: format!("longer than {MAX_DIRECTIVE_BYTES} bytes"),
            });
        }
        parse(directive)?;
        let control = self.control();
        let slot = control.slot.get().ok_or(LogLevelError::NotInstalled)?;
        let mut changes = control.changes.lock();
        let previous = slot.load_full_active();
        // `checkout=debug` alone would turn every other target off, the service's own
        // warnings and errors with them: without a level of its own, a directive goes on
        // top of the service's default.
        let given = directive;
        let directive = match &changes.default {
            Some(default) if !has_default_level(given) => {
                format!("{},{given}", default.directive)
            }
            _ => given.to_owned(),
        };
        let filter = parse(&directive)?;
        let expiry = ttl.map(|ttl| Expiry {
            at: Instant::now() + ttl,
            revert_to: match &previous.expiry {
                Some(e) => e.revert_to.clone(),
                None if previous.is_default => Revert::Default,
                None => Revert::Directive(previous.directive.clone()),
            },
        });
        let over_default = if directive == given {
            String::new()
        } else {
            format!(" (`{given}` over the default)")
        };
        let message = match ttl {
            Some(ttl) => format!(
                "log level set to `{directive}`{over_default} for {} s (was `{}`)",
                ttl.as_secs_f64(),
                previous.directive
            ),
            None => format!(
                "log level set to `{directive}`{over_default} (was `{}`)",
                previous.directive
            ),
        };
        // Said before the change, under the filter that asked for it: the new one may
        // turn diag's own target off.
        announce(self.diag.events(), message);
        slot.store(Arc::new(ActiveFilter {
            filter,
            directive,
            is_default: false,
            expiry,
        }));
        if ttl.is_some() {
            self.ensure_reverter(&mut changes);
        }
        drop(changes);
        self.current()
    }

    /// Goes back to the service's own filter. Records a `log_level` event.
    ///
    /// ```
    /// use tracing_subscriber::EnvFilter;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let _filter = diag.log_filter(EnvFilter::new("info"));
    /// diag.log_level().set("trace", None).unwrap();
    /// let state = diag.log_level().reset().unwrap();
    /// assert_eq!(state.directive, "info");
    /// assert_eq!(state.expires_in, None);
    /// ```
    pub fn reset(&self) -> Result<LogLevelState, LogLevelError> {
        let control = self.control();
        let slot = control.slot.get().ok_or(LogLevelError::NotInstalled)?;
        let changes = control.changes.lock();
        let previous = slot.load_full_active();
        if let Some(default) = &changes.default {
            slot.store(default.fresh());
            announce(
                self.diag.events(),
                format!(
                    "log level reset to the default `{}` (was `{}`)",
                    default.directive, previous.directive
                ),
            );
        }
        drop(changes);
        self.current()
    }

    /// The active directive, the default, and the time left before a TTL reverts it.
    ///
    /// ```
    /// use tracing_subscriber::EnvFilter;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let _filter = diag.log_filter(EnvFilter::new("info"));
    /// let now = diag.log_level().current().unwrap();
    /// assert_eq!((now.directive.as_str(), now.default.as_str()), ("info", "info"));
    /// assert_eq!(now.expires_in, None, "no TTL pending");
    /// ```
    pub fn current(&self) -> Result<LogLevelState, LogLevelError> {
        let control = self.control();
        let slot = control.slot.get().ok_or(LogLevelError::NotInstalled)?;
        // Reading never waits for the reverter thread: a TTL that ran out is applied here.
        revert_if_expired(control, &self.diag.inner.events);
        let active = slot.load();
        let default = control
            .changes
            .lock()
            .default
            .as_ref()
            .map(|d| d.directive.clone())
            .unwrap_or_default();
        Ok(LogLevelState {
            directive: active.directive.clone(),
            default,
            expires_in: active
                .expiry
                .as_ref()
                .map(|e| e.at.saturating_duration_since(Instant::now())),
        })
    }

    fn control(&self) -> &LogLevelControl {
        &self.diag.inner.log_level
    }

    /// Starts the one thread that reverts TTLs, unless it runs already. Decided under
    /// the `changes` lock, as is the thread's decision to stop, so a TTL set while it
    /// stops is never missed.
    fn ensure_reverter(&self, changes: &mut Changes) {
        self.control().wakeup.notify_all();
        if changes.reverter_running {
            return;
        }
        let weak = Arc::downgrade(&self.diag.inner);
        let spawned = std::thread::Builder::new()
            .name("diag-log-level-ttl".into())
            .spawn(move || run_reverter(weak));
        match spawned {
            Ok(_) => changes.reverter_running = true,
            // Without the thread the TTL still runs out on the next `current()` read
            // (the endpoint's GET), just not on its own.
            Err(e) => self.diag.events().record(
                "log_level",
                format!("could not start the TTL thread ({e}); the TTL applies on the next read"),
            ),
        }
    }
}

impl FilterSlot {
    fn load_full_active(&self) -> Arc<ActiveFilter> {
        self.active.load_full()
    }
}

impl DefaultFilter {
    fn fresh(&self) -> Arc<ActiveFilter> {
        match (self.reparses, parse(&self.directive)) {
            (true, Ok(filter)) => Arc::new(ActiveFilter {
                filter,
                directive: self.directive.clone(),
                is_default: true,
                expiry: None,
            }),
            _ => self.original.clone(),
        }
    }
}

/// Whether `directive` sets a level for every target (`info`, `off`, `warn,db=debug`),
/// not only for the targets it names.
fn has_default_level(directive: &str) -> bool {
    directive
        .split(',')
        .any(|part| part.trim().parse::<LevelFilter>().is_ok())
}

fn parse(directive: &str) -> Result<EnvFilter, LogLevelError> {
    EnvFilter::builder()
        .parse(directive)
        .map_err(|e| LogLevelError::InvalidDirective {
            directive: directive.chars().take(200).collect(),
            reason: e.to_string(),
        })
}

/// Records a change of the log level in the events timeline and in the service's own
/// log (at WARN, so that a service logging at WARN shows it too): whoever reads the log
/// later sees why its verbosity changed.
fn announce(events: &Events, message: String) {
    tracing::warn!(target: "diag::log_level", "{message}");
    events.record("log_level", message);
}

/// Puts back what was active before, if the active filter's TTL has run out.
/// Returns when the active one runs out next, if it has a TTL.
fn revert_if_expired(control: &LogLevelControl, events: &Events) -> Option<Instant> {
    let slot = control.slot.get()?;
    let changes = control.changes.lock();
    revert_locked(slot, &changes, events)
}

fn revert_locked(slot: &FilterSlot, changes: &Changes, events: &Events) -> Option<Instant> {
    let active = slot.load_full_active();
    let expiry = active.expiry.as_ref()?;
    if expiry.at > Instant::now() {
        return Some(expiry.at);
    }
    let default = changes.default.as_ref()?;
    let next = match &expiry.revert_to {
        Revert::Default => default.fresh(),
        Revert::Directive(d) => match parse(d) {
            Ok(filter) => Arc::new(ActiveFilter {
                filter,
                directive: d.clone(),
                is_default: false,
                expiry: None,
            }),
            Err(_) => default.fresh(),
        },
    };
    let message = format!(
        "log level `{}` expired; back to `{}`",
        active.directive, next.directive
    );
    // Said after the change, under the filter put back: the one that ran out may have
    // turned diag's own target off.
    slot.store(next);
    announce(events, message);
    None
}

/// The TTL thread: sleeps until the active filter's TTL runs out (or a change wakes it),
/// reverts, and stops when no TTL is pending. It holds the `Diag` only while awake, and
/// wakes at least once a second, so a dropped `Diag` ends it.
fn run_reverter(diag: Weak<Inner>) {
    loop {
        let Some(inner) = diag.upgrade() else { return };
        let control = &inner.log_level;
        let Some(slot) = control.slot.get() else {
            return;
        };
        let mut changes = control.changes.lock();
        match revert_locked(slot, &changes, &inner.events) {
            None => {
                changes.reverter_running = false;
                return;
            }
            Some(at) => {
                let wake = at.min(Instant::now() + Duration::from_secs(1));
                let _ = control.wakeup.wait_until(&mut changes, wake);
            }
        }
    }
}
