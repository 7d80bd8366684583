//! [`DebugRequestFilter`]: enables exactly what happens inside a debug request.

use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use super::{in_flight, mark};

/// A per-layer [`Filter`] that enables a span or event only inside a debug request,
/// and only at the levels that request logs. It filters
/// [`DebugRecordingLayer`](super::DebugRecordingLayer), so that layer is not even
/// called for anything else.
///
/// While no debug request is in flight it wants nothing ([`Interest::never`], max level
/// `OFF`); while one is, every callsite is [`Interest::sometimes`] (which request an
/// event belongs to is known per event, not per callsite), and the check ends after
/// one relaxed atomic load for anything outside a debug request.
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
        if in_flight::any() {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        if in_flight::any() {
            Some(LevelFilter::TRACE)
        } else {
            Some(LevelFilter::OFF)
        }
    }

    fn on_new_span(&self, _attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        mark::mark_new_span(id, &cx);
    }
}
