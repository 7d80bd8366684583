//! What one poll of a body produced, in words every framework's body converts to.
//!
//! An adapter's body wrapper turns each poll result of the body it wraps into a
//! [`Polled`] and hands it to the debug request's
//! [`BodyTap::observe`](crate::debug::BodyTap::observe); everything the tap then does
//! (copying up to the capture cap, ending the capture exactly once, telling a failed
//! body from a finished one) is decided in the core, the same for every framework.
//!
//! ```
//! use diag_core::body::Polled;
//! # use diag_core::request::RequestView;
//! # let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
//! # let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
//! # let view = RequestView { method: "POST", route: None, uri: "/orders", headers: &headers, peer: &|| None };
//! let guard = diag.begin(&view); // a debug request (`X-Debug: <token>`)
//! let id = guard.debug_id().unwrap();
//! // The adapter's request body wrapper, for each poll of the body it wraps:
//! let mut request_body = guard.request_tap().unwrap();
//! request_body.observe(Polled::Data(b"{\"sku\":"));
//! request_body.observe(Polled::Data(b"42}"));
//! request_body.observe(Polled::End);
//! guard.finish(201, &mut ()).unwrap().observe(Polled::End); // an empty response body
//! let capture = diag.debug_mode().recorder().get(id).unwrap();
//! assert_eq!(capture.request.body.text.as_deref(), Some("{\"sku\":42}"));
//! ```

/// What one poll of a request or response body produced, as a
/// [`BodyTap`](crate::debug::BodyTap) sees it. A poll that produced nothing yet
/// (pending) or a frame without data (trailers) is simply not observed.
///
/// ```
/// use diag_core::body::Polled;
///
/// // An adapter converts its framework's poll result, e.g. an `Option<Result<Bytes, E>>`:
/// fn polled(item: &Option<Result<Vec<u8>, std::io::Error>>) -> Polled<'_> {
///     match item {
///         Some(Ok(chunk)) => Polled::Data(chunk),
///         Some(Err(_)) => Polled::Error,
///         None => Polled::End,
///     }
/// }
/// assert_eq!(polled(&Some(Ok(b"abc".to_vec()))), Polled::Data(b"abc"));
/// assert_eq!(polled(&None), Polled::End);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polled<'a> {
    /// The bytes of a data frame, which still go to their reader unchanged. A frame
    /// whose bytes sit in several slices is observed once per slice, in order.
    Data(&'a [u8]),
    /// This many bytes of a data frame that the adapter could not look at without
    /// consuming them (a buffer that shows fewer slices than it holds). They are
    /// counted, not copied, and the copy stops there, so it stays an exact prefix of
    /// the body and is marked truncated.
    Unseen(u64),
    /// The body failed: it ends here, not complete. The error itself goes on to the
    /// reader; the capture does not keep it (body error types need not be `Display`).
    Error,
    /// The body is over: its poll reported the end (`None`), or its framework says no
    /// more frames will come although that end was not polled (http-body's
    /// `is_end_stream`). A body whose exact size is known up front is better described
    /// by [`BodyTap::with_exact_size`](crate::debug::BodyTap::with_exact_size).
    End,
}
