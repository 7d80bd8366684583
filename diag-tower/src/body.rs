use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// Where a watched body's bytes are copied to as they pass (a debug request's capture).
pub(crate) trait Tap: Send + Sync {
    /// A data frame went by.
    fn chunk(&self, data: &[u8]);
    /// The body ended: `complete` is false when it failed or was dropped before its end.
    fn end(&self, complete: bool);
}

/// Ends the tap exactly once: at the body's end, or as incomplete when dropped first.
struct TapGuard {
    tap: Arc<dyn Tap>,
    ended: bool,
}

impl TapGuard {
    fn end(&mut self, complete: bool) {
        if !self.ended {
            self.ended = true;
            self.tap.end(complete);
        }
    }
}

impl Drop for TapGuard {
    fn drop(&mut self) {
        self.end(false);
    }
}

pin_project! {
    /// A request or response body passed through [`DiagLayer`](crate::DiagLayer).
    ///
    /// Every frame goes on exactly as the wrapped body produced it: nothing is consumed,
    /// buffered or re-chunked, and the size hint is the inner body's. For a request in
    /// diagnostic mode, the data frames are also copied (up to the capture cap) as they pass.
    pub struct DiagBody<B> {
        #[pin]
        inner: B,
        tap: Option<TapGuard>,
    }
}

impl<B> DiagBody<B> {
    pub(crate) fn new(inner: B) -> Self {
        DiagBody { inner, tap: None }
    }

    pub(crate) fn tapped(inner: B, tap: Option<Arc<dyn Tap>>) -> Self {
        DiagBody { inner, tap: tap.map(|tap| TapGuard { tap, ended: false }) }
    }
}

impl<B: Body> Body for DiagBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        let Some(tap) = this.tap.as_mut() else { return polled };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    copy_buf(data, &*tap.tap);
                }
            }
            Poll::Ready(Some(Err(_))) => tap.end(false),
            Poll::Ready(None) => tap.end(true),
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

/// Copies a frame's bytes without advancing it (it still goes to its reader whole).
fn copy_buf(data: &impl Buf, tap: &dyn Tap) {
    let mut slices = [std::io::IoSlice::new(&[]); 16];
    let n = data.chunks_vectored(&mut slices);
    if n == 0 {
        tap.chunk(data.chunk());
    }
    for s in &slices[..n] {
        tap.chunk(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<u8>>,
        ended: Mutex<Vec<bool>>,
    }

    impl Tap for Recorder {
        fn chunk(&self, data: &[u8]) {
            self.seen.lock().extend_from_slice(data);
        }
        fn end(&self, complete: bool) {
            self.ended.lock().push(complete);
        }
    }

    fn stream_body(chunks: Vec<&'static [u8]>) -> impl Body<Data = Bytes, Error = std::io::Error> {
        StreamBody::new(futures_util::stream::iter(
            chunks.into_iter().map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c)))),
        ))
    }

    #[tokio::test]
    async fn frames_pass_unchanged_and_are_copied() {
        let rec = Arc::new(Recorder::default());
        let body = DiagBody::tapped(stream_body(vec![b"ab", b"", b"cde"]), Some(rec.clone() as Arc<dyn Tap>));
        let mut frames = Vec::new();
        let mut body = std::pin::pin!(body);
        while let Some(f) = body.frame().await {
            frames.push(f.unwrap().into_data().unwrap());
        }
        assert_eq!(frames, vec![Bytes::from_static(b"ab"), Bytes::new(), Bytes::from_static(b"cde")]);
        assert_eq!(&*rec.seen.lock(), b"abcde");
        assert_eq!(&*rec.ended.lock(), &[true]);
    }

    #[tokio::test]
    async fn dropped_before_the_end_is_incomplete_once() {
        let rec = Arc::new(Recorder::default());
        let body = DiagBody::tapped(stream_body(vec![b"ab", b"cd"]), Some(rec.clone() as Arc<dyn Tap>));
        let mut body = Box::pin(body);
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(&*rec.seen.lock(), b"ab");
        assert_eq!(&*rec.ended.lock(), &[false]);
    }

    #[test]
    fn size_hint_is_the_inner_one() {
        let body = DiagBody::new(http_body_util::Full::new(Bytes::from_static(b"12345")));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
    }
}
