use std::sync::Arc;

use super::DebugRequest;

/// Which body a [`BodyTap`] watches.
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
/// Adapters call [`chunk`](Self::chunk) for every data frame (without consuming it),
/// [`end`](Self::end) when the body reports its end or an error, and simply drop the tap
/// with the body otherwise.
#[derive(Debug)]
pub struct BodyTap {
    request: Arc<DebugRequest>,
    side: BodySide,
    ended: bool,
    /// Keeps the request counted as a debug request in flight until the body is done.
    _in_flight: Option<crate::log::DebugInFlight>,
}

impl BodyTap {
    /// A tap on one side of a debug request's bodies.
    pub fn new(request: Arc<DebugRequest>, side: BodySide) -> Self {
        BodyTap {
            request,
            side,
            ended: false,
            _in_flight: None,
        }
    }

    /// Keeps `in_flight` alive as long as the tap: logs written while the response
    /// body streams still belong to the debug request.
    pub(crate) fn holding(mut self, in_flight: crate::log::DebugInFlight) -> Self {
        self._in_flight = Some(in_flight);
        self
    }

    /// Copies a data frame (up to the capture cap).
    pub fn chunk(&self, data: &[u8]) {
        match self.side {
            BodySide::Request => self.request.request_chunk(data),
            BodySide::Response => self.request.response_chunk(data),
        }
    }

    /// The body ended: `complete` is false when it failed. Only the first call counts.
    pub fn end(&mut self, complete: bool) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        match (self.side, complete) {
            (BodySide::Request, true) => self.request.request_end(),
            // A request body the handler did not read to its end: the capture shows
            // what was read, and the response decides whether the capture is complete.
            (BodySide::Request, false) => {}
            (BodySide::Response, true) => self.request.response_end(),
            (BodySide::Response, false) => self.request.finish_incomplete(),
        }
    }
}

impl Drop for BodyTap {
    fn drop(&mut self) {
        self.end(false);
    }
}
