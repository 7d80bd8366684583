//! OpenTelemetry's variables are set for the service's own SDK: diag follows what they
//! say (its sampler, its traces off), says where it sends spans, and with a collector it
//! cannot send to, starts the service anyway and says why it exports nothing.
//! Also `DIAG_TRACEPARENT_EVERY_RESPONSE` and `DIAG_OTLP_DEBUG_SPANS`. Its own test binary, with one test: it changes
//! the process's environment.

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
    let index = read_index(&diag);
    assert!(index["tracing"]["otlp"].is_null(), "{index}");

    // A usable one, set for the service's OpenTelemetry SDK: diag sends there too, and
    // says so; it samples as that SDK's sampler variables say.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
        std::env::set_var("OTEL_TRACES_SAMPLER", "parentbased_traceidratio");
        std::env::set_var("OTEL_TRACES_SAMPLER_ARG", "0.25");
    }
    let diag = diag_core::Diag::from_env().unwrap().build().unwrap();
    let index = read_index(&diag);
    assert_eq!(index["tracing"]["sampling_ratio"], 0.25, "{index}");
    assert!(!index["tracing"]["otlp"].is_null(), "{index}");
    let said = start_note(&diag);
    assert!(
        said.contains("sends its spans to http://127.0.0.1:9/v1/traces")
            && said.contains("from OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{said}"
    );
    // diag's own ratio wins.
    unsafe { std::env::set_var("DIAG_SAMPLING_RATIO", "0.5") };
    let index = read_index(&diag_core::Diag::from_env().unwrap().build().unwrap());
    assert_eq!(index["tracing"]["sampling_ratio"], 0.5, "{index}");
    assert_eq!(index["tracing"]["traceparent_on"], "every response");
    // Which responses name their trace is the operator's to say too.
    unsafe { std::env::set_var("DIAG_TRACEPARENT_EVERY_RESPONSE", "0") };
    let index = read_index(&diag_core::Diag::from_env().unwrap().build().unwrap());
    assert_eq!(
        index["tracing"]["traceparent_on"], "debug and error responses",
        "{index}"
    );
    unsafe { std::env::set_var("DIAG_TRACEPARENT_EVERY_RESPONSE", "sometimes") };
    let err = diag_core::Diag::from_env().expect_err("not a boolean");
    assert!(
        err.to_string().contains("DIAG_TRACEPARENT_EVERY_RESPONSE"),
        "{err}"
    );
    unsafe { std::env::remove_var("DIAG_TRACEPARENT_EVERY_RESPONSE") };
    // A service whose SDK sends its own spans: a debug trace holds diag's server span.
    assert_eq!(
        index["tracing"]["otlp"]["debug_spans"], "recorded spans and log lines",
        "{index}"
    );
    unsafe { std::env::set_var("DIAG_OTLP_DEBUG_SPANS", "false") };
    let index = read_index(&diag_core::Diag::from_env().unwrap().build().unwrap());
    let shown = index["tracing"]["otlp"]["debug_spans"]
        .as_str()
        .unwrap_or_default();
    assert!(shown.starts_with("none"), "{index}");
    unsafe { std::env::remove_var("DIAG_OTLP_DEBUG_SPANS") };
    // The SDK's traces are off: diag's are too.
    for (name, value) in [
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_SDK_DISABLED", "true"),
    ] {
        unsafe { std::env::set_var(name, value) };
        let diag = diag_core::Diag::from_env().unwrap().build().unwrap();
        assert!(read_index(&diag)["tracing"]["otlp"].is_null(), "{name}");
        let said = start_note(&diag);
        assert!(
            said.contains(name) && said.contains("exports no traces"),
            "{said}"
        );
        unsafe { std::env::remove_var(name) };
    }

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

fn read_index(diag: &diag_core::Diag) -> serde_json::Value {
    let index = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(diag.serve(diag_core::EndpointRequest {
            method: "GET".into(),
            path: "/debug".into(),
            peer: Some(([127, 0, 0, 1], 1).into()),
            ..Default::default()
        }));
    serde_json::from_slice(&index.body).unwrap()
}

/// The `start` event about OpenTelemetry's variables.
fn start_note(diag: &diag_core::Diag) -> String {
    diag.events()
        .recent()
        .into_iter()
        .find(|e| e.kind == "start" && e.message.contains("OTEL_"))
        .map(|e| e.message)
        .unwrap_or_default()
}
