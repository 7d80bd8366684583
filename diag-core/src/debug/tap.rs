use std::sync::Arc;

use super::DebugRequest;
use crate::body::Polled;

/// Which body a [`BodyTap`] watches.
///
/// ```
/// use diag_core::body::Polled;
/// use diag_core::debug::{BodySide, BodyTap};
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "POST", route: Some("/cart"), uri: "/cart", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// let mut request_body = BodyTap::new(debug.clone(), BodySide::Request);
/// request_body.observe(Polled::Data(b"{\"sku\":42}"));
/// request_body.observe(Polled::End);
/// debug.response_head(204, &());
/// debug.response_end();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert_eq!(capture.request.body.text.as_deref(), Some("{\"sku\":42}"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodySide {
    /// The request body, as the handler reads it.
    Request,
    /// The response body, as it is sent.
    Response,
}

/// What an adapter's body wrapper holds for a debug request: it copies each data frame
/// into the capture as the frame passes, and ends the capture exactly once, at the
/// body's end or, when the body is dropped first, as incomplete.
///
/// An adapter's body wrapper does type conversion only: it polls the body it wraps
/// inside [`in_scope`](Self::in_scope) (so what the body's stream logs belongs to the
/// debug request), hands every poll result to [`observe`](Self::observe) as a
/// [`Polled`] (without consuming the frame), states the body's exact size when its
/// framework knows it up front with [`with_exact_size`](Self::with_exact_size), and
/// simply drops the tap with the body otherwise.
///
/// ```
/// use diag_core::Diag;
/// use diag_core::body::Polled;
/// use diag_core::request::RequestView;
///
/// let diag = Diag::builder().token("s3cret").build().unwrap();
/// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// let guard = diag.begin(&RequestView {
///     method: "GET",
///     route: Some("/hello"),
///     uri: "/hello",
///     headers: &headers,
///     peer: &|| None,
/// });
/// let id = guard.debug_id().expect("a debug request");
/// let mut response_headers: Vec<(String, String)> = Vec::new();
/// let mut tap = guard.finish(200, &mut response_headers).expect("a debug request has a tap");
///
/// // What the response body wrapper does with each poll of the body:
/// tap.observe(Polled::Data(b"hello, "));
/// tap.observe(Polled::Data(b"world"));
/// tap.observe(Polled::End);
///
/// let capture = diag.debug_mode().recorder().get(id).expect("stored at the body's end");
/// assert!(capture.complete);
/// let body = &capture.response.as_ref().unwrap().body;
/// assert_eq!(body.text.as_deref(), Some("hello, world"));
/// ```
#[derive(Debug)]
pub struct BodyTap {
    request: Arc<DebugRequest>,
    side: BodySide,
    ended: bool,
    /// Bytes still to come, for a body whose exact size was stated: frameworks stop
    /// polling such a body once that many bytes passed, so its end may never be polled.
    remaining: Option<u64>,
    /// Keeps the request counted as a debug request in flight until the body is done.
    _in_flight: Option<crate::log::DebugInFlight>,
    /// The request's root span, entered with its scope around each poll until the body
    /// ends (when the taps from the request path hold it).
    span: Option<tracing::Span>,
}

impl BodyTap {
    /// A tap on one side of a debug request's bodies.
    ///
    /// ```
    /// use diag_core::body::Polled;
    /// use diag_core::debug::{BodySide, BodyTap};
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_head(200, &());
    /// let mut tap = BodyTap::new(debug.clone(), BodySide::Response);
    /// tap.observe(Polled::Data(b"ok"));
    /// tap.observe(Polled::End);
    /// assert!(diag.debug_mode().recorder().get(debug.id()).unwrap().complete);
    /// ```
    pub fn new(request: Arc<DebugRequest>, side: BodySide) -> Self {
        BodyTap {
            request,
            side,
            ended: false,
            remaining: None,
            _in_flight: None,
            span: None,
        }
    }

    /// Keeps `in_flight` alive as long as the tap: logs written while the response
    /// body streams still belong to the debug request.
    pub(crate) fn holding(mut self, in_flight: crate::log::DebugInFlight) -> Self {
        self._in_flight = Some(in_flight);
        self
    }

    /// Enters `span` (the request's root span) with the request's scope in
    /// [`in_scope`](Self::in_scope), until the body ends: what is logged while the body
    /// is polled shows the request's trace id, and spans opened then hang under it.
    pub(crate) fn entering(mut self, span: tracing::Span) -> Self {
        if !self.ended {
            self.span = Some(span);
        }
        self
    }

    /// Runs `poll` (one poll of the body this tap watches) with the debug request
    /// current, as the handler ran: its [`RequestScope`](crate::request::RequestScope)
    /// entered and, for a tap from the request path, its root span. Logs written while
    /// a response body streams (an SSE stream's items, a `Body::from_stream` closure),
    /// or while a request body is read in a task of its own, then belong to the debug
    /// request: the log filter lets its DEBUG lines through, and the capture records
    /// them. Only a debug request's body has a tap: other bodies skip this entirely.
    ///
    /// ```
    /// use diag_core::body::Polled;
    /// use diag_core::request::RequestView;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.debug_recording_layer());
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let view = RequestView { method: "GET", route: Some("/events"), uri: "/events", headers: &headers, peer: &|| None };
    ///     let guard = diag.begin(&view);
    ///     let id = guard.debug_id().unwrap();
    ///     let mut tap = guard.finish(200, &mut Vec::<(String, String)>::new()).unwrap();
    ///     // The handler is done; its response body streams, logging as it goes.
    ///     for tick in 0..3 {
    ///         let chunk = tap.in_scope(|| {
    ///             tracing::debug!(tick, "tick");
    ///             format!("data: {tick}\n\n")
    ///         });
    ///         tap.observe(Polled::Data(chunk.as_bytes()));
    ///     }
    ///     tap.observe(Polled::End);
    ///     let capture = diag.debug_mode().recorder().get(id).unwrap();
    ///     assert_eq!(capture.logs.len(), 3);
    ///     assert!(capture.logs.iter().all(|l| l.message == "tick" && l.level == "DEBUG"));
    /// });
    /// ```
    #[inline]
    pub fn in_scope<R>(&self, poll: impl FnOnce() -> R) -> R {
        // A request body read by the handler's own future is polled inside the handler's
        // poll, where the request is current already, span and all: entering the span
        // again is a registry lookup each way for nothing.
        let session = self.request.session();
        let current = crate::request::with_current(|s| {
            s.and_then(|s| s.debug.as_ref())
                .is_some_and(|d| Arc::ptr_eq(d, session))
        });
        if current {
            return poll();
        }
        let _scope = self.request.scope().enter();
        let _span = self.span.as_ref().map(tracing::Span::enter);
        poll()
    }

    /// States the body's exact size in bytes, as its framework reports it before the
    /// first frame (`None`: not known, e.g. a stream). The tap then ends the capture of
    /// this body, complete, as soon as that many bytes were observed, and at once for
    /// `Some(0)` (an empty body, the body of a `HEAD` response), since a framework
    /// stops polling a body of known size when it is all sent and may never poll the
    /// body's final end. Give the size the body has before its first poll: the tap
    /// counts down from it.
    ///
    /// ```
    /// use diag_core::Diag;
    /// use diag_core::body::Polled;
    /// use diag_core::request::RequestView;
    ///
    /// let diag = Diag::builder().token("s3cret").build().unwrap();
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET",
    ///     route: None,
    ///     uri: "/file",
    ///     headers: &headers,
    ///     peer: &|| None,
    /// });
    /// let id = guard.debug_id().unwrap();
    /// let tap = guard.finish(200, &mut Vec::<(String, String)>::new()).unwrap();
    ///
    /// let mut tap = tap.with_exact_size(Some(5));
    /// tap.observe(Polled::Data(b"abc"));
    /// assert!(diag.debug_mode().recorder().get(id).is_none(), "2 bytes still to come");
    /// tap.observe(Polled::Data(b"de"));
    /// // No `Polled::End` came (the server stopped polling), yet the body is complete.
    /// assert!(diag.debug_mode().recorder().get(id).unwrap().complete);
    /// ```
    pub fn with_exact_size(mut self, size: Option<u64>) -> Self {
        self.remaining = size;
        if size == Some(0) {
            self.end(Ended::Complete);
        }
        self
    }

    /// Takes in what one poll of the body produced: copies data (up to the capture
    /// cap), and ends the capture at the body's end (complete) or at its error (not
    /// complete). Only the first end counts. See the example on [`BodyTap`].
    ///
    /// ```
    /// use diag_core::body::Polled;
    /// use diag_core::debug::{BodySide, BodyTap};
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_head(200, &());
    /// let mut tap = BodyTap::new(debug.clone(), BodySide::Response);
    /// tap.observe(Polled::Data(b"partial"));
    /// tap.observe(Polled::Error); // the body failed mid-way
    /// tap.observe(Polled::End); // too late: only the first end counts
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert!(!capture.complete);
    /// assert_eq!(capture.response.as_ref().unwrap().body.text.as_deref(), Some("partial"));
    /// ```
    pub fn observe(&mut self, polled: Polled<'_>) {
        match polled {
            Polled::Data(data) => {
                self.copy(data);
                self.count_down(data.len() as u64);
            }
            Polled::Unseen(n) => {
                match self.side {
                    BodySide::Request => self.request.request_skipped(n),
                    BodySide::Response => self.request.response_skipped(n),
                }
                self.count_down(n);
            }
            Polled::Error => self.end(Ended::Failed),
            Polled::End => self.end(Ended::Complete),
        }
    }

    /// The body's trailers went by (a response's are kept in the capture; a request's
    /// are not).
    ///
    /// ```
    /// use diag_core::body::Polled;
    /// use diag_core::debug::{BodySide, BodyTap};
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/shop.Cart/Add", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_head(200, &vec![("content-type".to_owned(), "application/grpc".to_owned())]);
    /// let mut tap = BodyTap::new(debug.clone(), BodySide::Response);
    /// tap.trailers(&vec![("grpc-status".to_owned(), "5".to_owned())]);
    /// tap.observe(Polled::End);
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// let trailers = &capture.response.as_ref().unwrap().trailers;
    /// assert_eq!(trailers, &[("grpc-status".to_owned(), "5".to_owned())]);
    /// ```
    pub fn trailers(&mut self, trailers: &dyn crate::HeaderView) {
        if let BodySide::Response = self.side {
            self.request.response_trailers(trailers);
        }
    }

    /// With an exact size known, ends the capture once that many bytes went by.
    fn count_down(&mut self, n: u64) {
        let Some(left) = self.remaining.as_mut() else {
            return;
        };
        *left = left.saturating_sub(n);
        if *left == 0 {
            self.end(Ended::Complete);
        }
    }

    fn copy(&self, data: &[u8]) {
        match self.side {
            BodySide::Request => self.request.request_chunk(data),
            BodySide::Response => self.request.response_chunk(data),
        }
    }

    /// The body ended: `complete` is false when it failed. Only the first call counts.
    fn end(&mut self, how: Ended) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        // The root span closes now unless something else holds it (a layer's own body,
        // say): then the stored capture shows it as still open.
        self.span = None;
        match (self.side, how) {
            (BodySide::Request, Ended::Complete) => self.request.request_end(),
            // The client's stream broke: a failure of the service after it is the
            // client's doing (an echo streaming the body back fails with it).
            (BodySide::Request, Ended::Failed) => self.request.request_broke_off(),
            // A request body the handler did not read to its end: the capture shows
            // what was read, and the response decides whether the capture is complete.
            (BodySide::Request, Ended::Dropped) => {}
            (BodySide::Response, Ended::Complete) => self.request.response_end(),
            // The service's own body failed: not the client's doing, unless the
            // request body broke off first.
            (BodySide::Response, Ended::Failed) => self.request.finish_after_error(),
            (BodySide::Response, Ended::Dropped) => self.request.finish_incomplete(),
        }
    }
}

/// How a tapped body ended.
#[derive(Clone, Copy)]
enum Ended {
    /// It reported its end.
    Complete,
    /// It reported an error.
    Failed,
    /// It was dropped before either (the client went away).
    Dropped,
}

impl Drop for BodyTap {
    fn drop(&mut self) {
        self.end(Ended::Dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diag;
    use crate::request::RequestView;

    /// A debug request through the real request path, its response head sent; the
    /// response tap and the capture id.
    fn response_tap(diag: &Diag, request_body: &[Polled<'_>]) -> (BodyTap, u64) {
        let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
        let guard = diag.begin(&RequestView {
            method: "POST",
            route: Some("/echo"),
            uri: "/echo",
            headers: &headers,
            peer: &|| None,
        });
        let id = guard.debug_id().unwrap();
        let mut request_tap = guard.request_tap().unwrap();
        for polled in request_body {
            request_tap.observe(*polled);
        }
        drop(request_tap);
        let tap = guard
            .finish(200, &mut Vec::<(String, String)>::new())
            .unwrap();
        (tap, id)
    }

    fn diag() -> Diag {
        Diag::builder()
            .token("s3cret")
            .capture_body_limit(4)
            .build()
            .unwrap()
    }

    fn stored(diag: &Diag, id: u64) -> Option<Arc<crate::debug::Capture>> {
        diag.debug_mode().recorder().get(id)
    }

    #[test]
    fn data_then_end_is_stored_complete_and_capped() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = diag();
        let (mut tap, id) = response_tap(&diag, &[Polled::Data(b"in"), Polled::End]);
        tap.observe(Polled::Data(b"abc"));
        tap.observe(Polled::Data(b""));
        tap.observe(Polled::Data(b"def"));
        assert!(stored(&diag, id).is_none(), "not over yet");
        tap.observe(Polled::End);
        let capture = stored(&diag, id).unwrap();
        assert!(capture.complete);
        let body = &capture.response.as_ref().unwrap().body;
        assert_eq!(body.text.as_deref(), Some("abcd"));
        assert_eq!(
            (body.total_bytes, body.truncated, body.ended),
            (6, true, true)
        );
        let request = &capture.request.body;
        assert_eq!((request.text.as_deref(), request.ended), (Some("in"), true));
    }

    #[test]
    fn an_error_or_a_drop_stores_incomplete() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = diag();
        let (mut tap, failed) = response_tap(&diag, &[]);
        tap.observe(Polled::Data(b"ab"));
        tap.observe(Polled::Error);
        let capture = stored(&diag, failed).unwrap();
        assert!(
            !capture.complete && capture.failed,
            "the service's body failed"
        );
        tap.observe(Polled::End);
        assert!(
            !stored(&diag, failed).unwrap().complete,
            "the first end counts"
        );
        let text = crate::debug::render_waterfall(&stored(&diag, failed).unwrap());
        assert!(
            text.contains("the response body failed with an error"),
            "{text}"
        );

        let (mut tap, dropped) = response_tap(&diag, &[]);
        tap.observe(Polled::Data(b"ab"));
        drop(tap);
        let capture = stored(&diag, dropped).unwrap();
        assert!(!capture.complete && !capture.failed, "the client went away");
    }

    #[test]
    fn a_request_body_that_failed_is_not_ended() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = diag();
        let (mut tap, id) = response_tap(&diag, &[Polled::Data(b"in"), Polled::Error]);
        tap.observe(Polled::End);
        let capture = stored(&diag, id).unwrap();
        assert!(capture.complete, "the response decides");
        assert!(!capture.request.body.ended);
    }

    #[test]
    fn a_response_that_fails_after_its_request_body_broke_off_is_the_clients_doing() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = diag();
        // An echo: the client's upload breaks off, and the response body streaming it
        // back fails with it.
        let (mut tap, broken) = response_tap(&diag, &[Polled::Data(b"in"), Polled::Error]);
        tap.observe(Polled::Data(b"in"));
        tap.observe(Polled::Error);
        let capture = stored(&diag, broken).unwrap();
        assert!(!capture.complete && !capture.failed, "the client went away");
        assert!(!capture.request.body.ended);
        // A request body read to its end: the response's failure is the service's.
        let (mut tap, own) = response_tap(&diag, &[Polled::Data(b"in"), Polled::End]);
        tap.observe(Polled::Error);
        let capture = stored(&diag, own).unwrap();
        assert!(!capture.complete && capture.failed, "the service failed");
    }

    #[test]
    fn unseen_bytes_are_counted_toward_the_size_and_end_the_copy() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = diag();
        let (tap, id) = response_tap(&diag, &[]);
        let mut tap = tap.with_exact_size(Some(6));
        tap.observe(Polled::Data(b"a"));
        tap.observe(Polled::Unseen(3));
        tap.observe(Polled::Data(b"ef"));
        let capture = stored(&diag, id).expect("6 bytes went by");
        assert!(capture.complete);
        let body = &capture.response.as_ref().unwrap().body;
        assert_eq!(body.text.as_deref(), Some("a"), "a prefix, no hole");
        assert_eq!((body.total_bytes, body.truncated), (6, true));
    }

    #[test]
    fn an_exact_size_ends_the_body_when_it_is_all_seen() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = diag();
        let (tap, id) = response_tap(&diag, &[]);
        let mut tap = tap.with_exact_size(Some(4));
        tap.observe(Polled::Data(b"ab"));
        assert!(stored(&diag, id).is_none());
        tap.observe(Polled::Data(b"cd"));
        assert!(stored(&diag, id).unwrap().complete);

        let (tap, empty) = response_tap(&diag, &[]);
        let _tap = tap.with_exact_size(Some(0));
        assert!(
            stored(&diag, empty).unwrap().complete,
            "ended before any poll"
        );

        let (tap, unknown) = response_tap(&diag, &[]);
        let mut tap = tap.with_exact_size(None);
        tap.observe(Polled::Data(b"abcd"));
        assert!(stored(&diag, unknown).is_none(), "a stream ends at its end");
        drop(tap);
        assert!(!stored(&diag, unknown).unwrap().complete);
    }
}
