use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// A response body passed through [`DiagLayer`](crate::DiagLayer): every frame goes to
    /// the client as the wrapped body produced it.
    pub struct DiagBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> DiagBody<B> {
    pub(crate) fn new(inner: B) -> Self {
        DiagBody { inner }
    }
}

impl<B: Body> Body for DiagBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
