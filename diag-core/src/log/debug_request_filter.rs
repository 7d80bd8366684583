//! [`DebugRequestFilter`]: enables exactly what happens inside a debug request.

use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use super::mark;

/// A per-layer [`Filter`] that enables a span or event only inside a debug request,
/// and only at the levels that request logs. It filters
/// [`DebugRecordingLayer`](super::DebugRecordingLayer), so that layer is not even
/// called for anything else.
///
/// Every callsite is [`Interest::sometimes`]: whether a debug request is running is
/// known per event, not per callsite. The per-event check is one relaxed atomic load
/// while no debug request is in flight.
#[derive(Clone, Copy, Debug, Default)]
pub struct DebugRequestFilter;

impl<S> Filter<S> for DebugRequestFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[inline]
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        mark::debug_admits(meta.level(), cx)
    }

    fn callsite_enabled(&self, _meta: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn on_new_span(&self, _attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        mark::mark_new_span(id, &cx);
    }
}
