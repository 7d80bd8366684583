//! A service that fails with an error instead of a response (tower's `timeout` or
//! `load_shed` inside diag, a handler returning `Err`): hyper closes the connection or
//! resets the stream, a server failure. It is counted as a 500 with its duration, not as
//! a request its client abandoned, and a debug request's capture says `failed`; unless
//! the request's own body failed first (its client left mid-upload).

use std::convert::Infallible;

use diag_core::{Diag, EndpointRequest};
use diag_tower::{DiagBody, DiagLayer};
use http::{Request, Response};
use tower::{Layer, ServiceExt, service_fn};

const TOKEN: &str = "s3cret";

fn diag() -> Diag {
    Diag::builder().token(TOKEN).build().unwrap()
}

/// A handler that fails for `/fail` and answers otherwise.
async fn handler(req: Request<DiagBody<String>>) -> Result<Response<String>, std::io::Error> {
    if req.uri().path() == "/fail" {
        return Err(std::io::Error::other("the database is gone"));
    }
    Ok(Response::new("ok".to_owned()))
}

fn request(path: &str, debug: bool) -> Request<String> {
    let mut req = Request::get(path);
    if debug {
        req = req.header("x-debug", TOKEN);
    }
    req.body(String::new()).unwrap()
}

#[tokio::test]
async fn an_error_instead_of_a_response_counts_as_a_500_not_as_abandoned() {
    let diag = diag();
    let svc = DiagLayer::new(&diag)
        .with_route(|_| Some("/route"))
        .layer(service_fn(handler));
    assert!(svc.clone().oneshot(request("/fail", false)).await.is_err());
    assert!(svc.clone().oneshot(request("/ok", false)).await.is_ok());

    let text = diag_conformance::grpc::metrics(&diag).await;
    for (status, n) in [("500", 1), ("200", 1)] {
        let line = format!(
            r#"http_server_requests_total{{method="GET",route="/route",status="{status}"}} {n}"#
        );
        assert!(text.contains(&line), "{line}\n{text}");
    }
    let abandoned = r#"http_server_requests_abandoned_total{method="GET",route="/route"} 0"#;
    assert!(text.contains(abandoned), "{text}");
    let active = r#"http_server_active_requests{method="GET",route="/route"} 0"#;
    assert!(text.contains(active), "{text}");
}

#[tokio::test]
async fn a_debug_request_that_fails_leaves_a_failed_capture() {
    let diag = diag();
    let svc = DiagLayer::new(&diag).layer(service_fn(handler));
    assert!(svc.oneshot(request("/fail", true)).await.is_err());

    let recorder = diag.debug_mode().recorder();
    let capture = recorder.get(1).expect("the capture is stored at once");
    assert!(
        capture.failed && !capture.complete && !capture.panicked,
        "{capture:?}"
    );
    assert!(capture.response.is_none());
    assert_eq!(diag.debug_mode().in_flight(), 0);
    let json = serde_json::to_value(&*capture).unwrap();
    assert_eq!(json["failed"], true);

    // The on-call's views say why it is incomplete.
    let mut text = EndpointRequest {
        method: "GET".into(),
        path: "/debug/requests/1".into(),
        headers: vec![
            ("authorization".into(), format!("Bearer {TOKEN}")),
            ("accept".into(), "text/plain".into()),
        ],
        ..Default::default()
    };
    let waterfall = String::from_utf8(diag.serve(text.clone()).await.body).unwrap();
    assert!(
        waterfall.contains("INCOMPLETE (the service failed with an error"),
        "{waterfall}"
    );
    text.path = "/debug/requests".into();
    let list = String::from_utf8(diag.serve(text).await.body).unwrap();
    assert!(
        list.contains("incomplete: the service failed with an error"),
        "{list}"
    );
}

/// A request body that sends `hello` and then fails, as hyper's does when the client
/// goes away mid-upload.
fn cut_upload(debug: bool) -> Request<http_body_util::StreamBody<UploadFrames>> {
    let frames: UploadFrames = Box::pin(futures_util::stream::iter([
        Ok(http_body::Frame::data(bytes::Bytes::from_static(b"hello"))),
        Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
    ]));
    let mut req = Request::post("/upload");
    if debug {
        req = req.header("x-debug", TOKEN);
    }
    req.body(http_body_util::StreamBody::new(frames)).unwrap()
}

type UploadFrames = std::pin::Pin<
    Box<
        dyn futures_util::Stream<Item = Result<http_body::Frame<bytes::Bytes>, std::io::Error>>
            + Send,
    >,
>;

/// A client that leaves mid-upload makes the handler's read fail; a handler that gives
/// up with that error (`?` on the body, the usual hyper way) has lost its client, not
/// failed: the request counts as abandoned, not as a 500, and its capture is incomplete
/// (not `failed`).
#[tokio::test]
async fn a_handler_failing_on_a_cut_upload_counts_as_abandoned_not_500() {
    use http_body_util::BodyExt;
    let diag = diag();
    let svc = DiagLayer::new(&diag)
        .with_route(|_| Some("/upload"))
        .layer(service_fn(
            |req: Request<DiagBody<http_body_util::StreamBody<UploadFrames>>>| async move {
                let body = req.into_body().collect().await?.to_bytes();
                Ok::<_, std::io::Error>(Response::new(format!("{} bytes", body.len())))
            },
        ));
    assert!(svc.clone().oneshot(cut_upload(false)).await.is_err());
    assert!(svc.clone().oneshot(cut_upload(true)).await.is_err());

    let text = diag_conformance::grpc::metrics(&diag).await;
    let abandoned = r#"http_server_requests_abandoned_total{method="POST",route="/upload"} 2"#;
    assert!(text.contains(abandoned), "{text}");
    assert!(!text.contains(r#"status="500""#), "{text}");
    let capture = diag.debug_mode().recorder().get(1).expect("stored");
    assert!(!capture.failed && !capture.complete, "{capture:?}");
    // Another request's failure is still the server's.
    let fails = DiagLayer::new(&diag)
        .with_route(|_| Some("/route"))
        .layer(service_fn(handler));
    assert!(fails.oneshot(request("/fail", false)).await.is_err());
    let text = diag_conformance::grpc::metrics(&diag).await;
    let line = r#"http_server_requests_total{method="GET",route="/route",status="500"} 1"#;
    assert!(text.contains(line), "{text}");
}

/// Pending once, then ready: what any `.await` between reading the body and giving up
/// may do, letting a multi-thread runtime move the task to another thread.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The mark of a failed request body travels with the request: a handler that awaits
/// something after the failure and is resumed on another thread still counts as
/// abandoned.
#[test]
fn a_cut_upload_is_abandoned_whichever_thread_finishes_the_handler() {
    use http_body_util::BodyExt;
    let diag = diag();
    let svc = DiagLayer::new(&diag)
        .with_route(|_| Some("/upload"))
        .layer(service_fn(
            |req: Request<DiagBody<http_body_util::StreamBody<UploadFrames>>>| async move {
                let read = req.into_body().collect().await;
                YieldOnce(false).await; // a rollback, a log write...
                let body = read?.to_bytes();
                Ok::<_, std::io::Error>(Response::new(format!("{} bytes", body.len())))
            },
        ));
    let mut future = Box::pin(svc.oneshot(cut_upload(false)));
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(
        future.as_mut().poll(&mut cx).is_pending(),
        "the body failed, the handler waits"
    );
    let finished = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    })
    .join()
    .unwrap();
    assert!(finished.is_err());
    let text = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(diag_conformance::grpc::metrics(&diag));
    let abandoned = r#"http_server_requests_abandoned_total{method="POST",route="/upload"} 1"#;
    assert!(text.contains(abandoned), "{text}");
    assert!(!text.contains(r#"status="500""#), "{text}");
}

/// A service that never fails keeps its `Infallible` error type through the layer.
#[tokio::test]
async fn an_infallible_service_stays_infallible() {
    let svc = DiagLayer::new(&diag()).layer(service_fn(|_req: Request<DiagBody<String>>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let res: Result<Response<DiagBody<String>>, Infallible> =
        svc.oneshot(request("/", false)).await;
    assert_eq!(res.unwrap().status(), 200);
}
