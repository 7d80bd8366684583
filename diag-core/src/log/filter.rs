//! [`LogFilter`]: the service's own filter, OR "inside a debug request that logs this level".

use std::sync::Arc;

use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use super::level::FilterSlot;
use super::{in_flight, mark};

/// A per-layer [`Filter`] that enables a span or event when the service's own filter
/// does, **or** when it happens inside a debug request whose level admits it.
///
/// Made by [`Diag::log_filter`](crate::Diag::log_filter); put it on the layer that
/// writes the service's logs:
///
/// ```
/// use tracing_subscriber::{EnvFilter, fmt, prelude::*};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let subscriber = tracing_subscriber::registry()
///     .with(fmt::layer().with_filter(diag.log_filter(EnvFilter::new("info"))))
///     .with(diag.debug_recording_layer());
/// # let _ = subscriber;
/// ```
///
/// How it stays cheap:
/// - While no debug request is in flight anywhere in the process, callsite interest and
///   the max level hint are the service filter's own: a disabled `debug!` costs what it
///   costs without diag.
/// - While one is, a callsite the service's filter enables for good keeps
///   [`Interest::always`]; any other up to the debug requests' level (DEBUG, or TRACE
///   while a TRACE-level debug request runs) gets [`Interest::sometimes`], so it is
///   asked per event, and the max level hint rises to that level. (Crossing between the two rebuilds the
///   callsite interest cache; see the `in_flight` notes in the module docs.)
/// - Per event, a level above the service filter's most verbose level is turned away by
///   comparing with a cached level; then one relaxed load of the process-wide count of
///   debug requests in flight. Only when that is non-zero does it look for the request
///   (the thread's current [`RequestScope`](crate::request::RequestScope), then the
///   debug mark of the current span).
/// - The service's filter is behind an atomically swapped pointer (no lock, no
///   `reload` layer), so [`Diag::log_level`](crate::Diag::log_level) can replace it.
///
/// Every [`Filter`] callback (`on_new_span`, `on_enter`, ...) is forwarded to the
/// service's filter, which [`EnvFilter`](tracing_subscriber::EnvFilter) needs for span
/// directives such as `[checkout]=debug`.
#[derive(Clone)]
pub struct LogFilter {
    pub(crate) slot: Arc<FilterSlot>,
}

impl std::fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFilter")
            .field("directive", &self.slot.load().directive)
            .finish()
    }
}

impl<S> Filter<S> for LogFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[inline]
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if self.slot.may_enable(meta.level())
            && Filter::<S>::enabled(&self.slot.load().filter, meta, cx)
        {
            return true;
        }
        mark::debug_admits(meta.level(), cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        let interest = Filter::<S>::callsite_enabled(&self.slot.load().filter, meta);
        if interest.is_always() || !in_flight::interest_open_for(meta.level()) {
            interest
        } else {
            Interest::sometimes()
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        Filter::<S>::event_enabled(&self.slot.load().filter, event, cx)
            || mark::debug_admits(event.metadata().level(), cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let service = Filter::<S>::max_level_hint(&self.slot.load().filter);
        match in_flight::open_level() {
            // `None` (no hint) from the service's filter already admits everything.
            Some(open) => service.map(|s| s.max(open)),
            None => service,
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        mark::mark_new_span(id, &cx);
        Filter::<S>::on_new_span(&self.slot.load().filter, attrs, id, cx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        Filter::<S>::on_record(&self.slot.load().filter, id, values, cx);
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        Filter::<S>::on_enter(&self.slot.load().filter, id, cx);
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        Filter::<S>::on_exit(&self.slot.load().filter, id, cx);
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        Filter::<S>::on_close(&self.slot.load().filter, id, cx);
    }
}
