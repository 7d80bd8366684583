//! A panic inside the subscriber (a field's `Display` that panics while the service's fmt
//! layer records it into a span, holding the span's extensions) must not hang the thread:
//! diag's panic hook logs it as an ERROR, and a layer that read the current span to format
//! that event would wait on the lock its own caller holds. Its own process: the panic hook
//! and the global subscriber are global (a scoped dispatcher would hide the re-entrance).

use std::sync::mpsc;
use std::time::Duration;

use diag_core::Diag;
use diag_core::request::RequestView;
use tracing_subscriber::{EnvFilter, fmt};

mod panicking;
use panicking::Boom;

#[test]
fn a_panic_while_a_span_field_is_recorded_is_logged_and_the_thread_goes_on() {
    let diag = Diag::builder().token("tok").build().unwrap().leak();
    diag.init_tracing(
        fmt::layer().with_writer(std::io::sink),
        EnvFilter::new("info"),
    )
    .unwrap();

    let (done, finished) = mpsc::channel();
    let on_thread = diag.clone();
    std::thread::spawn(move || {
        let diag = on_thread;
        for headers in [vec![], vec![("x-debug".to_owned(), "tok".to_owned())]] {
            let guard = diag.begin(&RequestView {
                method: "GET",
                route: Some("/who"),
                uri: "/who",
                headers: &headers,
                peer: &|| None,
            });
            let trace_id = guard.trace().trace_id.to_string();
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _entered = guard.enter();
                let span = tracing::info_span!("handler", user = tracing::field::Empty);
                // Kept for good: the panic poisons the span's slot in the registry (a
                // service that panics there loses that slot, with or without diag), and
                // the next request must not be handed it.
                std::mem::forget(span.clone());
                let _in_span = span.enter();
                span.record("user", tracing::field::display(Boom));
            }));
            assert!(caught.is_err());
            drop(guard);
            done.send(trace_id).unwrap();
        }
    });
    let traces: Vec<String> = (0..2)
        .map(|i| {
            finished
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("request {i}: the thread hung in the panic hook"))
        })
        .collect();

    let errors = diag.errors().latest();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for e in &errors {
        assert_eq!(e.message, "panicked: a Display that panics", "{e:?}");
    }
    let mut logged: Vec<&str> = errors
        .iter()
        .filter_map(|e| e.trace_id.as_deref())
        .collect();
    let mut traces: Vec<&str> = traces.iter().map(String::as_str).collect();
    logged.sort_unstable();
    traces.sort_unstable();
    assert_eq!(logged, traces, "each panic with its request's trace id");
}
