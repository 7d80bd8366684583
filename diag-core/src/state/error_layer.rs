//! The `tracing` layer that feeds the `errors` provider.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{Filtered, LevelFilter};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::errors::{ErrorRecord, ErrorRing, MAX_ERROR_FIELDS, MAX_ERROR_TEXT};
use super::{REDACTED, SecretKeys};
use crate::Diag;

/// Records every ERROR event into the `errors` provider's ring: time, target, message,
/// fields (secret-looking ones hidden) and the trace id of the request being served.
///
/// Get it from [`Diag::error_layer`], which wraps it in a per-layer
/// [`LevelFilter::ERROR`] so that WARN..TRACE callsites are never offered to it and the
/// other layers' filtering is unchanged.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::warn!("not an error: not kept");
///     tracing::error!(user = "ada", api_key = "k-123", "upstream rejected the key");
/// });
/// let e = &diag.errors().latest()[0];
/// assert_eq!(e.message, "upstream rejected the key");
/// assert_eq!(e.fields, [("user".into(), "ada".into()), ("api_key".into(), "***".into())]);
/// ```
#[derive(Clone, Debug)]
pub struct ErrorLayer {
    ring: Arc<ErrorRing>,
    secret_keys: SecretKeys,
}

impl Diag {
    /// The layer that feeds the `errors` provider; add it next to the service's own
    /// layers. It needs `tracing_subscriber`'s `Registry` (per-layer filtering).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(tracing_subscriber::fmt::layer().with_test_writer())
    ///     .with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::info!("not kept");
    ///     tracing::error!(order = 42, "payment failed");
    /// });
    /// let latest = diag.errors().latest();
    /// assert_eq!(latest.len(), 1);
    /// assert_eq!(latest[0].message, "payment failed");
    /// ```
    pub fn error_layer<S>(&self) -> Filtered<ErrorLayer, LevelFilter, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        ErrorLayer {
            ring: self.inner.errors.clone(),
            secret_keys: self.inner.secret_keys.clone(),
        }
        .with_filter(LevelFilter::ERROR)
    }
}

impl<S: Subscriber> Layer<S> for ErrorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Also correct when someone adds the layer without its filter.
        if *meta.level() != Level::ERROR {
            return;
        }
        // A field's `Debug` may panic; that must not reach the code that logged.
        let record = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut fields = FieldCollector {
                secret_keys: &self.secret_keys,
                message: String::new(),
                fields: Vec::new(),
                dropped: 0,
            };
            event.record(&mut fields);
            if fields.dropped > 0 {
                fields
                    .fields
                    .push(("diag.fields_dropped".into(), fields.dropped.to_string()));
            }
            let mut location = meta
                .file()
                .map(|f| format!("{f}:{}", meta.line().unwrap_or(0)));
            // A panic logged by `log_panics`: where it panicked, not where it was logged.
            if meta.target() == crate::log::PANIC_TARGET
                && let Some(at) = fields.fields.iter().position(|(k, _)| k == "location")
            {
                location = Some(fields.fields.remove(at).1);
            }
            ErrorRecord {
                time_unix: crate::clock::unix_now(),
                target: meta.target().to_owned(),
                message: fields.message,
                fields: fields.fields,
                trace_id: crate::request::with_current(|s| s.map(|s| s.trace.trace_id.to_string())),
                location,
            }
        }));
        match record {
            Ok(record) => self.ring.push(record),
            Err(_) => self.ring.count_capture_failure(),
        }
    }
}

struct FieldCollector<'a> {
    secret_keys: &'a SecretKeys,
    message: String,
    fields: Vec<(String, String)>,
    dropped: usize,
}

impl FieldCollector<'_> {
    fn put(&mut self, field: &Field, value: String) {
        // A message or a value may carry a secret of its own (`connect to
        // postgres://app:pw@db failed`, a `Debug`-printed config, a panic's text).
        let value = self.secret_keys.redact_text(&value).unwrap_or(value);
        if field.name() == "message" {
            self.message = cut(value);
        } else if self.fields.len() >= MAX_ERROR_FIELDS {
            self.dropped += 1;
        } else if self.secret_keys.is_secret(field.name()) {
            self.fields
                .push((field.name().to_owned(), REDACTED.to_owned()));
        } else {
            self.fields.push((field.name().to_owned(), cut(value)));
        }
    }
}

impl Visit for FieldCollector<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_ERROR_TEXT {
        let mut at = MAX_ERROR_TEXT;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::prelude::*;

    use super::*;
    use crate::request::RequestScope;
    use crate::trace::{SpanId, TraceContext, TraceId};

    /// Counts the events it sees, to show the error layer leaves others alone.
    struct Counting(Arc<AtomicUsize>);
    impl<S: Subscriber> Layer<S> for Counting {
        fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn captures_error_with_trace_id_fields_and_redaction() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = Diag::builder().build().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(Counting(seen.clone()).with_filter(LevelFilter::DEBUG))
            .with(diag.error_layer());
        let scope = RequestScope::new(
            TraceContext {
                trace_id: TraceId([0xab; 16]),
                span_id: SpanId([1; 8]),
                sampled: true,
            },
            None,
            None,
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("debug reaches the other layer only");
            tracing::warn!("so does warn");
            {
                let _in = scope.enter();
                tracing::error!(target: "payments", order_id = 7, api_token = "tok-123", "charge failed: {}", "declined");
            }
            tracing::error!(target: "payments", "outside any request");
        });
        assert_eq!(
            seen.load(Ordering::Relaxed),
            4,
            "other layer saw every event"
        );
        let latest = diag.errors().latest();
        assert_eq!(latest.len(), 2);
        let e = &latest[0];
        assert_eq!(e.target, "payments");
        assert_eq!(e.message, "charge failed: declined");
        assert_eq!(
            e.trace_id.as_deref(),
            Some("abababababababababababababababab")
        );
        assert!(e.fields.contains(&("order_id".into(), "7".into())));
        assert!(e.fields.contains(&("api_token".into(), "***".into())));
        assert!(e.location.as_deref().unwrap().contains("error_layer.rs"));
        assert_eq!(latest[1].trace_id, None);
        assert_eq!(diag.errors().count_for("payments"), Some(2));
    }

    #[test]
    fn non_error_callsites_are_never_offered_to_the_layer() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = Diag::builder().build().unwrap();
        let subscriber = tracing_subscriber::registry().with(diag.error_layer());
        tracing::subscriber::with_default(subscriber, || {
            // With only this layer, the subscriber's max level is ERROR: the macros'
            // static level check rejects INFO before any callsite is consulted.
            assert_eq!(
                tracing::level_filters::LevelFilter::current(),
                LevelFilter::ERROR
            );
            assert!(!tracing::enabled!(tracing::Level::WARN));
            assert!(tracing::enabled!(tracing::Level::ERROR));
        });
    }

    #[test]
    fn a_panicking_field_is_contained_and_counted() {
        let _serial = crate::test_support::tracing_test_lock();
        struct Bomb;
        impl fmt::Debug for Bomb {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                panic!("boom in Debug")
            }
        }
        let diag = Diag::builder().build().unwrap();
        let subscriber = tracing_subscriber::registry().with(diag.error_layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(bad = ?Bomb, "will not be kept");
        });
        assert!(diag.errors().latest().is_empty());
        assert_eq!(diag.errors().capture_failures(), 1);
    }

    /// A secret inside a message or a value (a URL's password, a `password=` pair, a
    /// `Debug`-printed config) is hidden, not only a field named like one; and so is one
    /// an event's message carries.
    #[test]
    fn secrets_inside_messages_and_values_are_hidden() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = Diag::builder().build().unwrap();
        let subscriber = tracing_subscriber::registry().with(diag.error_layer());
        let url = "postgres://app:hunter2@db:5432/app";
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(db_url = %url, dsn = "host=db password=KV1", "connect to {url} failed");
        });
        let e = &diag.errors().latest()[0];
        assert_eq!(
            e.message,
            "connect to postgres://app:***@db:5432/app failed"
        );
        assert!(
            e.fields
                .contains(&("db_url".into(), "postgres://app:***@db:5432/app".into()))
        );
        assert!(
            e.fields
                .contains(&("dsn".into(), "host=db password=***".into()))
        );
        diag.events()
            .record("deploy", format!("v2 with DATABASE_URL={url}"));
        let event = diag.events().recent().pop().unwrap();
        assert_eq!(
            event.message,
            "v2 with DATABASE_URL=postgres://app:***@db:5432/app"
        );
    }
}
