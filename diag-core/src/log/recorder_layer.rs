//! [`DebugRecordingLayer`]: what a debug request's record shows of its spans and logs.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::MonoTime;

use tracing::span;
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::debug_request_filter::DebugRequestFilter;
use super::fields::FieldRecorder;
use super::in_flight;
use super::mark::{self, DebugMark, OpenSpan};
use crate::Diag;
use crate::debug::{DebugSession, LogLine, SpanTiming, StaticText};

/// A [`Layer`] that writes, for spans and events inside a debug request, into that
/// request's [`DebugSession`]: each span's start offset, duration, parent, name, target
/// and fields when it closes, and each event's level, target, message, fields and span.
///
/// Use it filtered by [`DebugRequestFilter`], as [`Diag::debug_recording_layer`]
/// returns it: inside debug requests it records; elsewhere it is either not called or
/// returns after one relaxed atomic load. It is separate from the
/// service's log output: the record is kept even when the service logs nowhere.
///
/// ```
/// use diag_core::request::RequestView;
/// use tracing_subscriber::prelude::*;
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(diag.debug_recording_layer());
/// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// tracing::subscriber::with_default(subscriber, || {
///     let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None };
///     let guard = diag.begin(&view);
///     let _entered = guard.enter();
///     tracing::debug!(product_id = 7, "cache miss");
///     let session = guard.scope().debug.as_ref().expect("a debug request");
///     assert_eq!(session.logs()[0].message, "cache miss");
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DebugRecordingLayer;

impl Diag {
    /// The layer that records spans and logs of debug requests into their
    /// [`DebugSession`], filtered so it sees nothing else. Add it next to the service's
    /// log layer:
    ///
    /// ```
    /// use tracing_subscriber::{EnvFilter, fmt, prelude::*};
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(fmt::layer().with_filter(diag.log_filter(EnvFilter::new("info"))))
    ///     .with(diag.debug_recording_layer());
    /// # let _ = subscriber;
    /// ```
    pub fn debug_recording_layer<S>(&self) -> Filtered<DebugRecordingLayer, DebugRequestFilter, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        DebugRecordingLayer.with_filter(DebugRequestFilter::new(self.inner.log_level.shared_slot()))
    }
}

impl<S> Layer<S> for DebugRecordingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        // Callsites cached `always` reach here outside debug requests too.
        if !in_flight::any() {
            return;
        }
        let Some(span) = cx.span(id) else { return };
        // The filter marked it just before (filters see new spans before their layer).
        let Some(session) = mark::marked(&span) else {
            return;
        };
        let mut fields = FieldRecorder::default();
        attrs.record(&mut fields);
        session.count_cut_fields(fields.cut);
        let meta = span.metadata();
        let parent = span
            .parent()
            .filter(|p| in_session(p, &session))
            .map(|p| p.id().into_u64());
        let opened = MonoTime::now();
        // Kept in the session while open: a capture stored before the span closes still
        // shows it (a root span a layer's body keeps open, say), so the parent chain of
        // the spans that did close is whole.
        let kept = session.span_opened(SpanTiming {
            id: id.into_u64(),
            parent,
            name: StaticText::Borrowed(meta.name()),
            target: StaticText::Borrowed(meta.target()),
            start_offset: session.since_start(opened),
            duration: Duration::ZERO,
            fields: fields.fields,
        });
        if kept && let Some(mark) = span.extensions_mut().get_mut::<DebugMark>() {
            mark.open = Some(OpenSpan { opened });
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        if !in_flight::any() {
            return;
        }
        let Some(span) = cx.span(id) else { return };
        // Held while the fields are recorded: one `record` of a span at a time.
        let mut ext = span.extensions_mut();
        let Some(mark) = ext.get_mut::<DebugMark>().filter(|m| m.open.is_some()) else {
            return;
        };
        let id = id.into_u64();
        if let Some(fields) = mark.session.take_open_fields(id) {
            // Rendered outside the session's lock: a value's `Debug` may log.
            let mut fields = FieldRecorder::with_fields(fields);
            values.record(&mut fields);
            mark.session.count_cut_fields(fields.cut);
            mark.session.put_open_fields(id, fields.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        if !in_flight::any() {
            return;
        }
        // The event's own span (its explicit parent, or the current one): a root event
        // (`parent: None`, as a panic's) reads no span at all.
        let span = cx.event_span(event);
        let session = match mark::scope_session() {
            Some(s) => s,
            None => match span.as_ref().and_then(mark::marked) {
                Some(s) => s,
                None => return,
            },
        };
        let meta = event.metadata();
        if !session.admits(meta.level()) {
            return;
        }
        let mut fields = FieldRecorder::default();
        event.record(&mut fields);
        session.count_cut_fields(fields.cut);
        session.record_log(LogLine {
            offset: session.elapsed(),
            level: StaticText::Borrowed(meta.level().as_str()),
            target: StaticText::Borrowed(meta.target()),
            message: fields.message.unwrap_or_default(),
            fields: fields.fields,
            span: span
                .as_ref()
                .and_then(|s| in_session(s, &session).then(|| s.id().into_u64())),
        });
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        let Some(span) = cx.span(&id) else { return };
        // A read lock first: most spans closing were never part of a debug request.
        if span
            .extensions()
            .get::<DebugMark>()
            .is_none_or(|m| m.open.is_none())
        {
            return;
        }
        let (session, open) = {
            let mut ext = span.extensions_mut();
            let Some(mark) = ext.get_mut::<DebugMark>() else {
                return;
            };
            let Some(open) = mark.open.take() else { return };
            (mark.session.clone(), open)
        };
        let closed = MonoTime::now();
        session.span_closed(
            id.into_u64(),
            Duration::from_nanos(closed.nanos_since(open.opened)),
        );
    }
}

fn in_session<S>(span: &SpanRef<'_, S>, session: &Arc<DebugSession>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    mark::marked(span).is_some_and(|s| Arc::ptr_eq(&s, session))
}
