//! A debug request stays a debug request while its response body streams, and while its
//! payload is read in a task of its own: the DEBUG lines logged then are in its capture.

use std::time::Duration;

use actix_web::dev::{Payload, Service, ServiceRequest, Transform, fn_service};
use actix_web::web::Bytes;
use actix_web::{App, HttpMessage, HttpResponse, test, web};
use diag_conformance::TOKEN;
use diag_core::Diag;
use futures_util::StreamExt;

/// A handle whose recorder is on the global subscriber (with a generous debug budget).
fn diag() -> Diag {
    let diag = diag_conformance::diag();
    diag_conformance::install_tracing(&diag);
    diag
}

/// The `X-Debug-Id` a debug response carries.
fn debug_id(headers: &actix_web::http::header::HeaderMap) -> u64 {
    let id = headers.get("x-debug-id").expect("a debug response");
    id.to_str().unwrap().parse().unwrap()
}

/// The messages of capture `id`'s log lines.
fn logged(diag: &Diag, id: u64) -> Vec<String> {
    let capture = diag.debug_mode().recorder().get(id).expect("stored");
    capture.logs.iter().map(|l| l.message.clone()).collect()
}

#[actix_web::test]
async fn debug_lines_logged_while_the_response_body_streams_are_kept() {
    let diag = diag();
    let app = test::init_service(
        App::new()
            .wrap(diag_actix::DiagMiddleware::new(&diag))
            .route(
                "/stream",
                web::get().to(|| async {
                    tracing::debug!("in the handler");
                    let ticks = futures_util::stream::unfold(0u32, |i| async move {
                        if i == 3 {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        tracing::debug!(tick = i, "stream tick");
                        Some((Ok::<_, std::io::Error>(Bytes::from(format!("{i};"))), i + 1))
                    });
                    HttpResponse::Ok().streaming(ticks)
                }),
            ),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/stream")
        .insert_header(("x-debug", TOKEN))
        .to_request();
    let res = test::call_service(&app, req).await;
    let id = debug_id(res.headers());
    assert_eq!(test::read_body(res).await, "0;1;2;");
    let logged = logged(&diag, id);
    assert_eq!(
        logged.iter().filter(|m| *m == "stream tick").count(),
        3,
        "{logged:?}"
    );
    assert!(logged.contains(&"in the handler".to_owned()), "{logged:?}");
}

#[actix_web::test]
async fn debug_lines_logged_while_the_payload_is_read_in_another_task_are_kept() {
    let diag = diag();
    // The handler reads its payload in a task of its own.
    let handler = fn_service(|mut req: ServiceRequest| async move {
        let mut payload = req.take_payload();
        let read = actix_web::rt::spawn(async move {
            let mut n = 0;
            while let Some(chunk) = payload.next().await {
                n += chunk.unwrap().len();
            }
            n
        });
        let n = read.await.unwrap();
        Ok::<_, actix_web::Error>(req.into_response(HttpResponse::Ok().body(n.to_string())))
    });
    let svc = diag_actix::DiagMiddleware::new(&diag)
        .new_transform(handler)
        .await
        .unwrap();
    // A payload that logs as it is read (a decoder, say).
    let parts = futures_util::stream::iter(0..3).map(|i| {
        tracing::debug!(part = i, "payload part read");
        Ok(Bytes::from_static(b"abcd"))
    });
    let mut req = test::TestRequest::post()
        .uri("/upload")
        .insert_header(("x-debug", TOKEN))
        .insert_header(("content-length", "12"))
        .to_srv_request();
    req.set_payload(Payload::Stream {
        payload: Box::pin(parts),
    });
    let res = svc.call(req).await.unwrap();
    let id = debug_id(res.headers());
    assert_eq!(test::read_body(res).await, "12");
    let logged = logged(&diag, id);
    assert_eq!(
        logged.iter().filter(|m| *m == "payload part read").count(),
        3,
        "{logged:?}"
    );
}
