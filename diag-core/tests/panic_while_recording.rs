//! A panic inside the subscriber (a field's `Display` that panics while the service's fmt
//! layer records it into a span, holding the span's extensions) must not hang the thread:
//! diag's panic hook logs it as an ERROR, and a layer that read the current span to format
//! that event would wait on the lock its own caller holds. Its own process: the panic hook
//! and the global subscriber are global (a scoped dispatcher would hide the re-entrance).

use std::sync::mpsc;

use diag_core::Diag;
use tracing_subscriber::{EnvFilter, fmt};

mod panicking;

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
            let guard = panicking::begin(&diag, "/who", &headers);
            let trace_id = guard.trace().trace_id.to_string();
            {
                let _entered = guard.enter();
                let span = tracing::info_span!("handler", user = tracing::field::Empty);
                panicking::record_boom(span);
            }
            drop(guard);
            done.send(trace_id).unwrap();
        }
    });
    let traces: Vec<String> = (0..2)
        .map(|i| panicking::wait_or_exit(&finished, &format!("request {i}")))
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
