//! A handler that panics is a server error in the RED metrics, whoever catches the
//! panic: tower-http's `CatchPanicLayer` (the client gets a 500) or nobody (the client
//! sees the connection close). Nothing stays in flight, and a debug request's capture is
//! stored as incomplete.

mod common;

use axum::Router;
use axum::routing::get;
use diag_axum::DiagRouterExt;
use diag_conformance::{TOKEN, Target, wait_for_capture, wait_until_nothing_in_flight};
use tower_http::catch_panic::CatchPanicLayer;

async fn boom() -> &'static str {
    panic!("a bug in the handler")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_counts_as_a_500() {
    let diag = diag_conformance::diag();
    let caught = Router::new()
        .route("/caught/{id}", get(boom))
        .with_diag(&diag)
        // Outside diag: the panic unwinds through diag's layer before it is caught.
        .layer(CatchPanicLayer::new());
    let uncaught = Router::new()
        .route("/uncaught/{id}", get(boom))
        .layer(diag_axum::DiagAxumLayer::new(&diag));
    let t = Target::new(format!("http://{}", common::serve(caught).await));
    let other = format!("http://{}/uncaught/1", common::serve(uncaught).await);

    let res = t.get("/caught/1").send().await.unwrap();
    assert_eq!(res.status(), 500);
    let res = t
        .get("/caught/2")
        .header("x-debug", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    // Without a catch-panic layer the connection just closes.
    assert!(t.client().get(other).send().await.is_err());

    wait_until_nothing_in_flight(&t).await;
    let metrics = t.metrics().await;
    for (route, n) in [("/caught/{id}", 2), ("/uncaught/{id}", 1)] {
        let series = format!(
            r#"http_server_requests_total{{method="GET",route="{route}",status="500"}} {n}"#
        );
        assert!(metrics.contains(&series), "{series}\n{metrics}");
        let gauge = format!(r#"http_server_active_requests{{method="GET",route="{route}"}} 0"#);
        assert!(metrics.contains(&gauge), "{gauge}\n{metrics}");
    }
    // The debug request's capture: incomplete, the handler never answered.
    let list = t.authed_json("/debug/requests").await;
    let id = list["captures"][0]["id"].to_string();
    let capture = wait_for_capture(&t, &id).await;
    assert_eq!(capture["complete"], false, "{capture}");
    assert_eq!(capture["panicked"], true, "{capture}");
    let text = t.authed_text(&format!("/debug/requests/{id}")).await;
    assert!(text.contains("INCOMPLETE (the handler panicked)"), "{text}");
    let listed = t.authed_text("/debug/requests").await;
    assert!(
        listed.contains("/caught/2") && listed.contains("(incomplete: the handler panicked)"),
        "{listed}"
    );
    assert_eq!(capture["request"]["route"], "/caught/{id}", "{capture}");
}
