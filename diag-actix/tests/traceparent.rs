//! Which responses name their trace: every one by default, and with
//! `traceparent_on_every_response(false)` an error's and a debug request's only.

use actix_web::{App, HttpResponse, test, web};

const TOKEN: &str = "s3cret";

#[actix_web::test]
async fn errors_and_debug_requests_name_their_trace_when_not_every_response_does() {
    for every_response in [true, false] {
        let diag = diag_core::Diag::builder()
            .token(TOKEN)
            .traceparent_on_every_response(every_response)
            .build()
            .unwrap();
        let app = test::init_service(
            App::new()
                .wrap(diag_actix::DiagMiddleware::new(&diag))
                .route("/ok", web::get().to(|| async { "ok" }))
                .route(
                    "/down",
                    web::get().to(|| async { HttpResponse::ServiceUnavailable().finish() }),
                ),
        )
        .await;
        let named = |uri: &'static str, debug: bool| {
            let app = &app;
            async move {
                let mut req = test::TestRequest::get().uri(uri);
                if debug {
                    req = req.insert_header(("x-debug", TOKEN));
                }
                let res = test::call_service(app, req.to_request()).await;
                res.headers().contains_key("traceparent")
            }
        };
        assert_eq!(
            named("/ok", false).await,
            every_response,
            "{every_response}"
        );
        assert!(named("/down", false).await, "{every_response}");
        assert!(named("/nowhere", false).await, "a 404, {every_response}");
        assert!(
            named("/ok", true).await,
            "a debug request, {every_response}"
        );
    }
}
