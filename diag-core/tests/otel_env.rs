//! OpenTelemetry's endpoint variables may be set for another library, with a collector
//! diag cannot send to: the service still starts, diag says why it exports nothing.
//! Its own test binary, with one test: it changes the process's environment.

#[test]
fn an_unusable_otel_endpoint_is_reported_not_fatal() {
    // SAFETY: this test binary runs this one test, on its only thread that reads the
    // environment.
    unsafe {
        std::env::remove_var("DIAG_OTLP_ENDPOINT");
        std::env::set_var(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector.example:4318",
        );
    }
    let diag = diag_core::Diag::from_env()
        .expect("the environment parses")
        .build()
        .expect("an https OTEL_ endpoint does not stop the service");
    let note = diag
        .events()
        .recent()
        .into_iter()
        .find(|e| e.message.contains("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .expect("an event says why no traces are exported");
    assert!(
        note.message.contains("exports no traces"),
        "{}",
        note.message
    );
    // No exporter: the index says traces go nowhere.
    let index = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(diag.serve(diag_core::EndpointRequest {
            method: "GET".into(),
            path: "/debug".into(),
            peer: Some(([127, 0, 0, 1], 1).into()),
            ..Default::default()
        }));
    let index: serde_json::Value = serde_json::from_slice(&index.body).unwrap();
    assert!(index["tracing"]["otlp"].is_null(), "{index}");

    // diag's own variable is explicit: an endpoint it cannot use is a configuration error.
    unsafe {
        std::env::set_var("DIAG_OTLP_ENDPOINT", "https://collector.example:4318");
    }
    let err = diag_core::Diag::from_env().unwrap().build().err();
    assert!(
        err.is_some_and(|e| e.to_string().contains("only http://")),
        "DIAG_OTLP_ENDPOINT=https:// is refused"
    );
}
