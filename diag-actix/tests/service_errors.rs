//! An error from inside `DiagMiddleware` (another middleware's `ErrorUnauthorized`, say)
//! is answered by actix-web after diag, with the error's own status: diag records that
//! status, not an abandoned request.

use actix_web::dev::Service;
use actix_web::{App, HttpResponse, test, web};

#[actix_web::test]
async fn an_error_from_inside_is_counted_under_its_status() {
    let diag = diag_conformance::diag();
    let app = test::init_service(
        App::new()
            .wrap_fn(|req, srv| {
                let denied = req.path() == "/deny";
                let fut = srv.call(req);
                async move {
                    if denied {
                        return Err(actix_web::error::ErrorUnauthorized("no"));
                    }
                    fut.await
                }
            })
            .wrap(diag_actix::DiagMiddleware::new(&diag))
            .route("/deny", web::get().to(HttpResponse::Ok))
            .route("/ok", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let denied = test::TestRequest::get().uri("/deny").to_request();
    let Err(err) = test::try_call_service(&app, denied).await else {
        panic!("the middleware inside diag answered with an error");
    };
    assert_eq!(err.as_response_error().status_code(), 401);
    let ok = test::call_service(&app, test::TestRequest::get().uri("/ok").to_request()).await;
    assert_eq!(ok.status(), 200);

    let text = diag_conformance::grpc::metrics(&diag).await;
    for line in [
        r#"http_server_requests_total{method="GET",route="/deny",status="401"} 1"#,
        r#"http_server_requests_abandoned_total{method="GET",route="/deny"} 0"#,
        r#"http_server_active_requests{method="GET",route="/deny"} 0"#,
        r#"http_server_requests_total{method="GET",route="/ok",status="200"} 1"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

/// An error type that sets its status only through `error_response` (a common way to
/// write one): actix answers with that response, so diag counts its status, not the
/// 500 that the default `status_code` says.
#[derive(Debug)]
struct NotHere;

impl std::fmt::Display for NotHere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not here")
    }
}

impl actix_web::ResponseError for NotHere {
    fn error_response(&self) -> HttpResponse {
        HttpResponse::NotFound().body("not here")
    }
}

#[actix_web::test]
async fn an_error_is_counted_under_the_status_of_the_response_it_becomes() {
    let diag = diag_conformance::diag();
    let app = test::init_service(
        App::new()
            .wrap_fn(|req, srv| {
                let fut = srv.call(req);
                async move {
                    fut.await?;
                    Err::<actix_web::dev::ServiceResponse, _>(NotHere.into())
                }
            })
            .wrap(diag_actix::DiagMiddleware::new(&diag))
            .route("/x", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let req = test::TestRequest::get().uri("/x").to_request();
    let Err(err) = test::try_call_service(&app, req).await else {
        panic!("the middleware inside diag answered with an error");
    };
    assert_eq!(err.error_response().status(), 404, "what the client gets");
    let text = diag_conformance::grpc::metrics(&diag).await;
    let line = r#"http_server_requests_total{method="GET",route="/x",status="404"} 1"#;
    assert!(text.contains(line), "{line}\n{text}");
}
