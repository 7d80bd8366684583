use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use diag_core::{Diag, DiagResponse, EndpointRequest};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};

use crate::{HttpHeaders, PeerFn};

/// The diagnostics endpoints (`/metrics`, `/debug`, `/debug/...`) as a tower service.
///
/// Mount it for the paths [`Diag::is_endpoint`](diag_core::Diag::is_endpoint) accepts
/// (`/metrics`, `/debug` and the `/debug/...` endpoints, not your own `/debug/pprof`); it
/// may sit inside [`DiagLayer`](crate::DiagLayer), which passes those paths through
/// unwatched. Or run it alone with [`admin::serve`](crate::admin::serve). Requests for
/// other paths get a JSON 404.
///
/// It answers `Response<Full<Bytes>>`. Beside handlers with another body type (a
/// streaming one), box both: `res.map(|b| b.map_err(|e| match e {}).boxed())` turns its
/// answer into a `BoxBody<Bytes, E>` for any error type `E`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower::ServiceExt;
/// let diag = diag_core::Diag::builder().token("t").build().unwrap();
/// let req = http::Request::get("/debug/state")
///     .header("authorization", "Bearer t")
///     .body(http_body_util::Empty::<bytes::Bytes>::new())
///     .unwrap();
/// let res = diag_tower::DiagEndpoints::new(&diag).oneshot(req).await.unwrap();
/// assert_eq!(res.status(), 200);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DiagEndpoints {
    diag: Diag,
    peer: PeerFn,
}

impl DiagEndpoints {
    /// Endpoints of `diag`; the peer comes from a `SocketAddr` extension unless set with
    /// [`with_peer`](Self::with_peer).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::ServiceExt;
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap(); // no token: loopback only
    /// let endpoints = diag_tower::DiagEndpoints::new(&diag);
    /// let mut req = http::Request::get("/debug/state").body(String::new()).unwrap();
    /// req.extensions_mut().insert(std::net::SocketAddr::from(([127, 0, 0, 1], 41000)));
    /// assert_eq!(endpoints.clone().oneshot(req).await.unwrap().status(), 200);
    /// let unknown_peer = http::Request::get("/debug/state").body(String::new()).unwrap();
    /// assert_eq!(endpoints.oneshot(unknown_peer).await.unwrap().status(), 403);
    /// # }
    /// ```
    pub fn new(diag: &Diag) -> Self {
        DiagEndpoints {
            diag: diag.clone(),
            peer: |ext| ext.get::<std::net::SocketAddr>().copied(),
        }
    }

    /// How to find the TCP peer address (it decides loopback-only access when no token
    /// is configured).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[derive(Clone)]
    /// struct Conn(SocketAddr);
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let endpoints =
    ///     diag_tower::DiagEndpoints::new(&diag).with_peer(|ext| ext.get::<Conn>().map(|c| c.0));
    /// let mut req = http::Request::get("/debug/state").body(String::new()).unwrap();
    /// req.extensions_mut().insert(Conn(SocketAddr::from(([127, 0, 0, 1], 41000))));
    /// assert_eq!(endpoints.oneshot(req).await.unwrap().status(), 200);
    /// # }
    /// ```
    pub fn with_peer(mut self, peer: PeerFn) -> Self {
        self.peer = peer;
        self
    }
}

impl<B> tower::Service<Request<B>> for DiagEndpoints
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let diag = self.diag.clone();
        let peer = (self.peer)(req.extensions());
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let mut request = EndpointRequest::from_parts(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query(),
                &HttpHeaders(&parts.headers),
                parts.uri.authority().map(|a| a.as_str()),
                peer,
            );
            // Read only for a client let in: no one else makes diag hold a body.
            if !diag.refuses(&request) {
                match Limited::new(body, EndpointRequest::MAX_BODY)
                    .collect()
                    .await
                {
                    Ok(collected) => request.body = collected.to_bytes().to_vec(),
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        return Ok(into_response(diag.body_too_large()));
                    }
                    // The client went away mid-body, say: not a body too large.
                    Err(_) => {
                        return Ok(into_response(DiagResponse::error(
                            400,
                            "could not read the request body",
                        )));
                    }
                }
            }
            Ok(into_response(diag.serve(request).await))
        })
    }
}

/// Converts the core's response into an `http` response.
pub(crate) fn into_response(r: DiagResponse) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(r.body)));
    *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in r.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut()
                .append(HeaderName::from_static(name), value);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// Over HTTP/2 the host comes as `:authority` (kept in the URI), with no `Host`
    /// header: without a token, a foreign one is refused as over HTTP/1 (DNS rebinding).
    #[tokio::test]
    async fn an_h2_authority_is_checked_as_a_host() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let endpoints =
            DiagEndpoints::new(&diag).with_peer(|_| Some(([127, 0, 0, 1], 40000).into()));
        let status = |uri: &'static str| {
            let endpoints = endpoints.clone();
            async move {
                let req = Request::get(uri)
                    .version(http::Version::HTTP_2)
                    .body(String::new())
                    .unwrap();
                endpoints.oneshot(req).await.unwrap().status()
            }
        };
        assert_eq!(
            status("http://evil.example/debug/state").await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status("http://localhost:8080/debug/state").await,
            StatusCode::OK
        );
        assert_eq!(
            status("/debug/state").await,
            StatusCode::OK,
            "no host at all"
        );
    }

    /// A client without the token gets its 401 without diag reading (or waiting for)
    /// its body, and the refusal is counted.
    #[tokio::test]
    async fn a_refused_client_s_body_is_never_read() {
        let diag = diag_core::Diag::builder().token("t0k").build().unwrap();
        let endpoints = DiagEndpoints::new(&diag);
        let endless = http_body_util::StreamBody::new(futures_util::stream::pending::<
            Result<http_body::Frame<Bytes>, std::io::Error>,
        >());
        let req = Request::put("/debug/log-level").body(endless).unwrap();
        let res = tokio::time::timeout(std::time::Duration::from_secs(5), endpoints.oneshot(req))
            .await
            .expect("answered without the body")
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let scrape =
            diag_core::EndpointRequest::from_parts("GET", "/metrics", None, &(), None, None);
        let text = String::from_utf8(diag.serve(scrape).await.body).unwrap();
        assert!(
            text.contains(r#"diag_endpoint_refused_total{status="401"} 1"#),
            "{text}"
        );
    }
}
