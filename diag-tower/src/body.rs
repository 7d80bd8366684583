use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use diag_core::body::Polled;
use diag_core::debug::BodyTap;
use diag_core::request::GrpcCall;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::HttpHeaders;

pin_project! {
    /// A request or response body passed through [`DiagLayer`](crate::DiagLayer).
    ///
    /// Every frame goes on exactly as the wrapped body produced it: nothing is consumed,
    /// buffered or re-chunked, and the size hint is the inner body's. For a request in
    /// diagnostic mode, the data frames are also copied (up to the capture cap) as they pass.
    /// For a gRPC call whose status comes in the trailers, the trailers are read (not
    /// taken) to record the call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_tower::{DiagBody, DiagLayer};
    /// use http_body::Body;
    /// use http_body_util::BodyExt;
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let echo = DiagLayer::new(&diag).layer(service_fn(
    ///     |req: http::Request<DiagBody<String>>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
    ///     },
    /// ));
    /// let res = echo.oneshot(http::Request::new(String::from("hello"))).await.unwrap();
    /// assert_eq!(res.body().size_hint().exact(), Some(5)); // the inner body's hint
    /// assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
    /// # }
    /// ```
    pub struct DiagBody<B> {
        #[pin]
        inner: B,
        tap: Option<BodyTap>,
        grpc: Option<GrpcCall>,
        // A request's body, whose failure marks its request (see `request_body_failed`).
        request: bool,
    }
}

impl<B> DiagBody<B> {
    pub(crate) fn new(inner: B) -> Self {
        DiagBody {
            inner,
            tap: None,
            grpc: None,
            request: false,
        }
    }

    /// A request's body as the layer hands it to the service.
    pub(crate) fn request(inner: B, tap: Option<BodyTap>) -> Self
    where
        B: Body,
    {
        DiagBody {
            request: true,
            ..DiagBody::tapped(inner, tap)
        }
    }
}

impl<B: Body> DiagBody<B> {
    /// `inner`, copied into a debug request's capture through `tap` as it is read (the
    /// tap from [`RequestGuard::request_tap`](diag_core::request::RequestGuard::request_tap)
    /// or [`RequestGuard::finish`](diag_core::request::RequestGuard::finish)); with no tap,
    /// passed through as it is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::request::RequestView;
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    ///
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// let guard = diag.begin(&RequestView {
    ///     method: "POST", route: Some("/echo"), uri: "/echo", headers: &headers, peer: &|| None,
    /// });
    /// assert!(guard.debug_id().is_some(), "in diagnostic mode: its body is copied");
    /// let body = diag_tower::DiagBody::tapped(Full::new(Bytes::from("ping")), guard.request_tap());
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "ping"); // the reader gets it all
    /// # }
    /// ```
    pub fn tapped(inner: B, mut tap: Option<BodyTap>) -> Self {
        // A body that is over before it starts (empty, HEAD) may never be polled.
        if let Some(tap) = tap.as_mut().filter(|_| inner.is_end_stream()) {
            tap.observe(Polled::End);
        }
        DiagBody {
            inner,
            tap,
            grpc: None,
            request: false,
        }
    }

    /// Hands the body's trailers (or its end) to `call`, which records the gRPC call
    /// (see [`RequestGuard::finish_grpc`](diag_core::request::RequestGuard::finish_grpc)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::request::RequestView;
    /// use diag_tower::{DiagBody, HttpHeadersMut};
    /// use http_body_util::{BodyExt, Empty};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let path = "/greeter.Greeter/SayHello";
    /// let guard = diag.begin_grpc(&RequestView {
    ///     method: "POST", route: Some(path), uri: path, headers: &(), peer: &|| None,
    /// });
    /// let mut head = http::HeaderMap::new();
    /// head.insert("content-type", "application/grpc".parse().unwrap());
    /// let (tap, call) = guard.finish_grpc(200, &mut HttpHeadersMut(&mut head));
    /// let mut trailers = http::HeaderMap::new();
    /// trailers.insert("grpc-status", "5".parse().unwrap()); // NOT_FOUND
    /// let body = Empty::<bytes::Bytes>::new().with_trailers(async { Some(Ok(trailers)) });
    /// DiagBody::tapped(body, tap).with_grpc(call).collect().await.unwrap();
    ///
    /// # let scrape = diag_core::EndpointRequest {
    /// #     method: "GET".into(), path: "/metrics".into(), ..Default::default()
    /// # };
    /// let metrics = String::from_utf8(diag.serve(scrape).await.body).unwrap();
    /// assert!(metrics.contains(r#"status="NOT_FOUND""#));
    /// # }
    /// ```
    pub fn with_grpc(mut self, call: Option<GrpcCall>) -> Self {
        match call {
            // Over before it starts: no trailers will come.
            Some(call) if self.inner.is_end_stream() => call.ended_without_status(),
            call => self.grpc = call,
        }
        self
    }
}

impl<B: Body> Body for DiagBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = match this.tap.as_ref() {
            None => this.inner.as_mut().poll_frame(cx),
            // A debug request's body: what its stream logs belongs to the request.
            Some(tap) => tap.in_scope(|| this.inner.as_mut().poll_frame(cx)),
        };
        if *this.request && matches!(polled, Poll::Ready(Some(Err(_)))) {
            // The client left mid-upload (or a layer cut the body short): if the
            // handler gives up with an error, that is not the server's 500.
            diag_core::request::request_body_failed();
        }
        if let Some(call) = this.grpc.take() {
            // Kept until the trailers pass (or the body ends without them).
            *this.grpc = match &polled {
                Poll::Pending => Some(call),
                Poll::Ready(Some(Ok(frame))) => match frame.trailers_ref() {
                    Some(trailers) => {
                        call.trailers(&HttpHeaders(trailers));
                        None
                    }
                    None if this.inner.is_end_stream() => {
                        call.ended_without_status();
                        None
                    }
                    None => Some(call),
                },
                Poll::Ready(Some(Err(_)) | None) => {
                    call.ended_without_status();
                    None
                }
            };
        }
        let Some(tap) = this.tap.as_mut() else {
            return polled;
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    tap.trailers(&HttpHeaders(trailers));
                    // Trailers are a body's last frame: hyper writes them and stops
                    // polling, so the `None` after them never comes (the capture of a
                    // response with trailers was stored incomplete).
                    tap.observe(Polled::End);
                }
                if let Some(data) = frame.data_ref() {
                    let mut seen = 0;
                    for_each_slice(data, |slice| {
                        seen += slice.len();
                        tap.observe(Polled::Data(slice));
                    });
                    if seen < data.remaining() {
                        tap.observe(Polled::Unseen((data.remaining() - seen) as u64));
                    }
                }
                // hyper stops polling a body that says it is over (e.g. `Full` after
                // its one frame), so the end may never be reported as `None`.
                if this.inner.is_end_stream() {
                    tap.observe(Polled::End);
                }
            }
            Poll::Ready(Some(Err(_))) => tap.observe(Polled::Error),
            Poll::Ready(None) => tap.observe(Polled::End),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Hands each slice of a frame's bytes to `f`, without advancing the frame (it still
/// goes to its reader whole). A buffer may show fewer slices than it holds (at most 16
/// are asked for; `Buf`'s default shows only its first): the caller counts the rest as
/// unseen.
fn for_each_slice(data: &impl Buf, mut f: impl FnMut(&[u8])) {
    let mut slices = [std::io::IoSlice::new(&[]); 16];
    let n = data.chunks_vectored(&mut slices);
    if n == 0 {
        f(data.chunk());
    }
    for s in &slices[..n] {
        f(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use diag_core::debug::{BodySide, Capture, DebugLevel};
    use diag_core::request::RequestView;
    use diag_core::trace::TraceId;
    use http_body_util::{BodyExt, StreamBody};

    fn stream_body(chunks: Vec<&'static [u8]>) -> impl Body<Data = Bytes, Error = std::io::Error> {
        StreamBody::new(futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c)))),
        ))
    }

    /// The response tap of a debug request whose head was sent, and its capture id.
    fn response_tap(diag: &diag_core::Diag) -> (BodyTap, u64) {
        let view = RequestView {
            method: "POST",
            route: Some("/echo"),
            uri: "/echo",
            headers: &(),
            peer: &|| None,
        };
        let dbg = diag.start_debug(DebugLevel::Debug, &view, TraceId([7; 16]));
        dbg.response_head(200, &());
        let id = dbg.id();
        (BodyTap::new(dbg, BodySide::Response), id)
    }

    fn stored(diag: &diag_core::Diag, id: u64) -> Option<std::sync::Arc<Capture>> {
        diag.debug_mode().recorder().get(id)
    }

    #[tokio::test]
    async fn frames_pass_unchanged_and_are_captured() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let (tap, id) = response_tap(&diag);
        let mut body = std::pin::pin!(DiagBody::tapped(
            stream_body(vec![b"ab", b"", b"cde"]),
            Some(tap)
        ));
        let mut frames = Vec::new();
        while let Some(f) = body.frame().await {
            frames.push(f.unwrap().into_data().unwrap());
        }
        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b"ab"),
                Bytes::new(),
                Bytes::from_static(b"cde")
            ]
        );
        let capture = stored(&diag, id).expect("stored at the end of the body");
        assert!(capture.complete);
        let json = serde_json::to_string(&*capture).unwrap();
        assert!(json.contains("abcde"), "{json}");
    }

    /// A buffer of several segments that shows only its first one (`Buf`'s default
    /// `chunks_vectored`), as some `Buf` types do.
    struct Segmented(std::collections::VecDeque<Bytes>);

    impl Buf for Segmented {
        fn remaining(&self) -> usize {
            self.0.iter().map(Bytes::len).sum()
        }
        fn chunk(&self) -> &[u8] {
            self.0.front().map_or(&[], |b| b)
        }
        fn advance(&mut self, mut n: usize) {
            while let Some(front) = self.0.front_mut() {
                if front.len() > n {
                    front.advance(n);
                    return;
                }
                n -= front.len();
                self.0.pop_front();
            }
        }
    }

    #[tokio::test]
    async fn bytes_a_buffer_does_not_show_are_counted_and_the_copy_stays_a_prefix() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let (tap, id) = response_tap(&diag);
        let segments = ["ab", "cd", "ef"].map(|s| Bytes::from_static(s.as_bytes()));
        let frames = vec![Ok::<_, std::io::Error>(Frame::data(Segmented(
            segments.into(),
        )))];
        let body = DiagBody::tapped(
            StreamBody::new(futures_util::stream::iter(frames)),
            Some(tap),
        );
        let read = body.collect().await.unwrap().to_bytes();
        assert_eq!(
            read,
            Bytes::from_static(b"abcdef"),
            "the reader gets every byte"
        );
        let capture = serde_json::to_value(&*stored(&diag, id).expect("stored")).unwrap();
        let captured = &capture["response"]["body"];
        assert_eq!(captured["total_bytes"], 6, "{capture}");
        assert_eq!(captured["truncated"], true, "{capture}");
        assert_eq!(capture["complete"], true, "{capture}");
        let text = captured.to_string();
        assert!(text.contains("ab") && !text.contains("ef"), "{text}");
    }

    #[tokio::test]
    async fn dropped_before_the_end_is_stored_incomplete() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let (tap, id) = response_tap(&diag);
        let mut body = Box::pin(DiagBody::tapped(stream_body(vec![b"ab", b"cd"]), Some(tap)));
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert!(!stored(&diag, id).expect("stored on drop").complete);
    }

    #[tokio::test]
    async fn a_body_that_says_it_is_over_is_complete_without_its_end_polled() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let (tap, id) = response_tap(&diag);
        let full = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let mut body = Box::pin(DiagBody::tapped(full, Some(tap)));
        body.frame().await.unwrap().unwrap();
        // hyper stops here: `is_end_stream` is true, `None` is never polled.
        assert!(body.is_end_stream());
        let capture = stored(&diag, id).expect("stored after the last frame");
        assert!(capture.complete);

        let (tap, empty) = response_tap(&diag);
        let _body = DiagBody::tapped(http_body_util::Empty::<Bytes>::new(), Some(tap));
        assert!(stored(&diag, empty).expect("stored unpolled").complete);
    }

    #[tokio::test]
    async fn a_failed_body_is_stored_incomplete() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let (tap, id) = response_tap(&diag);
        let failing = StreamBody::new(futures_util::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err(std::io::Error::other("reset")),
        ]));
        let mut body = Box::pin(DiagBody::tapped(failing, Some(tap)));
        body.frame().await.unwrap().unwrap();
        assert!(body.frame().await.unwrap().is_err());
        assert!(!stored(&diag, id).expect("stored at the error").complete);
    }

    #[test]
    fn size_hint_is_the_inner_one() {
        let body = DiagBody::new(http_body_util::Full::new(Bytes::from_static(b"12345")));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
    }
}
