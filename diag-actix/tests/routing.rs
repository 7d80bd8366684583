//! Where actix's routing and diag's meet: `configure` mounts diag's own paths and no
//! others, and a request whose route actix finds only while routing (a path
//! `NormalizePath` rewrites inside diag, a percent-encoded one) is counted under it.

use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, HttpResponse, test, web};

#[actix_web::test]
async fn the_services_own_debug_routes_and_404s_stay_its_own() {
    let diag = diag_conformance::diag();
    let app = test::init_service(
        App::new()
            .wrap(diag_actix::DiagMiddleware::new(&diag))
            .configure(diag_actix::configure(&diag))
            .route(
                "/debug/pprof",
                web::get().to(|| async { "pprof of the app" }),
            )
            .route(
                "/metrics/custom",
                web::get().to(|| async { "the app's metrics" }),
            )
            .default_service(web::to(|| async {
                HttpResponse::NotFound().body("app 404")
            })),
    )
    .await;
    let get = |uri: &'static str| {
        let app = &app;
        async move {
            let res = test::call_service(app, test::TestRequest::get().uri(uri).to_request()).await;
            let status = res.status().as_u16();
            (
                status,
                String::from_utf8(test::read_body(res).await.to_vec()).unwrap(),
            )
        }
    };
    assert_eq!(
        get("/debug/pprof").await,
        (200, "pprof of the app".to_owned())
    );
    assert_eq!(
        get("/debug/nothing-here").await,
        (404, "app 404".to_owned())
    );
    assert_eq!(
        get("/metrics/custom").await,
        (200, "the app's metrics".to_owned())
    );
    assert_eq!(get("/metrics/other").await, (404, "app 404".to_owned()));
    // diag's own, and what is below them, are diag's (behind its token: 401 says diag
    // answered).
    for uri in [
        "/debug",
        "/debug/",
        "/debug/state",
        "/debug/state/process",
        "/debug/kill-switch",
    ] {
        assert_eq!(get(uri).await.0, 401, "{uri}");
    }
    assert_eq!(get("/metrics").await.0, 200);

    let text = diag_conformance::grpc::metrics(&diag).await;
    for line in [
        r#"http_server_requests_total{method="GET",route="/debug/pprof",status="200"} 1"#,
        r#"http_server_requests_total{method="GET",route="/metrics/custom",status="200"} 1"#,
        r#"http_server_requests_total{method="GET",route="unmatched",status="404"} 2"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    for pattern in ["tail", r#"route="/metrics""#, r#"route="/debug""#] {
        assert!(
            !text.contains(pattern),
            "a route label of diag's own patterns:\n{text}"
        );
    }
}

#[actix_web::test]
async fn a_route_found_only_by_routing_is_counted_under_it() {
    let diag = diag_conformance::diag();
    let app = test::init_service(
        App::new()
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(diag_actix::DiagMiddleware::new(&diag))
            .route("/users/{id}", web::get().to(|| async { "user" })),
    )
    .await;
    for uri in ["/users/7/", "//users//8", "/%75sers/9", "/users/10"] {
        let res = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), 200, "{uri}");
    }
    // A debug request's capture names the route too.
    let debug = test::TestRequest::get()
        .uri("/users/11/")
        .insert_header(("x-debug", diag_conformance::TOKEN))
        .to_request();
    let res = test::call_service(&app, debug).await;
    let id: u64 = res
        .headers()
        .get("x-debug-id")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    drop(test::read_body(res).await);
    let capture = diag.debug_mode().recorder().get(id).unwrap();
    assert_eq!(capture.request.route.as_deref(), Some("/users/{id}"));
    let missing = test::TestRequest::get().uri("/nobody/1/").to_request();
    assert_eq!(test::call_service(&app, missing).await.status(), 404);

    let text = diag_conformance::grpc::metrics(&diag).await;
    for line in [
        r#"http_server_requests_total{method="GET",route="/users/{id}",status="200"} 5"#,
        r#"http_server_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"http_server_active_requests{method="GET",route="unmatched"} 0"#,
        r#"http_server_active_requests{method="GET",route="/users/{id}"} 0"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}
