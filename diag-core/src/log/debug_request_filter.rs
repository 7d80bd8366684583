//! [`DebugRequestFilter`]: enables exactly what happens inside a debug request.

use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use super::level::SharedSlot;
use super::{in_flight, mark};

/// A per-layer [`Filter`] that enables a span or event only inside a debug request,
/// and only at the levels that request logs. It filters
/// [`DebugRecordingLayer`](super::DebugRecordingLayer), so that layer is not even
/// called for anything else.
///
/// While a debug request is in flight, every callsite is [`Interest::sometimes`] (which
/// request an event belongs to is known per event, not per callsite), and the check
/// ends after one relaxed atomic load for anything outside a debug request.
///
/// While none is, it mirrors the interest of the service's filter installed with
/// [`Diag::log_filter`](crate::Diag::log_filter) (`never` without one): per-layer
/// filters that disagree on a callsite make tracing ask both per event, so agreeing
/// keeps an enabled `info!` as cheap as without diag. For callsites cached `always`
/// the recording layer is then called and returns after that same atomic load.
///
/// ```
/// use diag_core::log::{DebugRecordingLayer, DebugRequestFilter};
/// use tracing_subscriber::{EnvFilter, Registry, filter::Filtered};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// // The type to name when a struct holds the recording layer:
/// let layer: Filtered<DebugRecordingLayer, DebugRequestFilter, Registry> =
///     diag.debug_recording_layer();
/// assert!(format!("{:?}", layer.filter()).contains("service_filter: false"));
/// // Installed later, the service's filter is still the one it mirrors while idle.
/// let _service = diag.log_filter(EnvFilter::new("info"));
/// assert!(format!("{:?}", layer.filter()).contains("service_filter: true"));
/// ```
#[derive(Clone, Default)]
pub struct DebugRequestFilter {
    /// The service's filter, once installed: while idle, this filter asks for exactly
    /// the callsites the service's filter asks for, so the two per-layer filters agree
    /// and tracing can cache `always`/`never` instead of asking per event.
    service: SharedSlot,
}

impl DebugRequestFilter {
    pub(crate) fn new(service: SharedSlot) -> Self {
        DebugRequestFilter { service }
    }
}

impl std::fmt::Debug for DebugRequestFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugRequestFilter")
            .field("service_filter", &self.service.get().is_some())
            .finish()
    }
}

impl<S> Filter<S> for DebugRequestFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[inline]
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        mark::debug_admits(meta.level(), cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if in_flight::interest_open_for(meta.level()) {
            return Interest::sometimes();
        }
        match self.service.get() {
            Some(slot) => Filter::<S>::callsite_enabled(&slot.load().filter, meta),
            None => Interest::never(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        if let Some(open) = in_flight::open_level() {
            return Some(open);
        }
        match self.service.get() {
            Some(slot) => Filter::<S>::max_level_hint(&slot.load().filter),
            None => Some(LevelFilter::OFF),
        }
    }

    fn on_new_span(&self, _attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        mark::mark_new_span(id, &cx);
    }
}
