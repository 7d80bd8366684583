//! `Diag::init_tracing` turns panics into ERROR events: a handler's panic lands in the
//! `errors` ring with where it panicked and the trace id of its request, and the panic
//! hook set before still runs. Its own process: the panic hook is global.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diag_core::Diag;
use diag_core::request::RequestView;
use tracing_subscriber::{EnvFilter, fmt};

#[test]
fn a_panic_is_an_error_event_with_its_requests_trace_id() {
    let earlier_hook_ran = Arc::new(AtomicUsize::new(0));
    let counter = earlier_hook_ran.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    let diag = Diag::builder().service("panics").build().unwrap();
    diag.init_tracing(
        fmt::layer().with_writer(std::io::sink),
        EnvFilter::new("info"),
    )
    .unwrap();

    let guard = diag.begin(&RequestView {
        method: "GET",
        route: Some("/orders/{id}"),
        uri: "/orders/9",
        headers: &(),
        peer: &|| None,
    });
    let trace_id = guard.trace().trace_id.to_string();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _entered = guard.enter();
        let orders: Vec<u32> = Vec::new();
        orders[9]
    }));
    assert!(caught.is_err());
    drop(guard);

    assert_eq!(
        earlier_hook_ran.load(Ordering::SeqCst),
        1,
        "the hook set before ran"
    );
    let errors = diag.errors().latest();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.target, "panic");
    assert!(
        e.message.starts_with("panicked: index out of bounds"),
        "{e:?}"
    );
    let at = e.location.as_deref().unwrap();
    // Where it panicked (this file), not where the event was logged (diag's hook).
    assert!(at.contains("tests/panic_hook.rs:"), "{at}");
    assert_eq!(e.trace_id.as_deref(), Some(trace_id.as_str()));
    assert!(e.fields.iter().any(|(k, _)| k == "thread"), "{e:?}");

    // Outside any request: logged all the same, without a trace id.
    let _ = std::panic::catch_unwind(|| panic!("at startup"));
    let errors = diag.errors().latest();
    let e = errors
        .iter()
        .find(|e| e.message == "panicked: at startup")
        .unwrap();
    assert_eq!(e.trace_id, None);
    assert_eq!(earlier_hook_ran.load(Ordering::SeqCst), 2);

    // A `/debug/state` provider's panic is its read's error entry, not an ERROR: reading
    // a broken provider again and again must not push the service's own errors out of
    // the ring, nor count as the service's errors. Sync and async providers alike.
    diag.state()
        .register("broken", || -> u32 { panic!("cache lock poisoned") })
        .unwrap();
    diag.state()
        .register_async("broken_async", || async { panic!("pool gone") as u32 })
        .unwrap();
    let before = diag.errors().latest().len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for name in ["broken", "broken_async"] {
        for _ in 0..5 {
            let read = diag_core::EndpointRequest {
                method: "GET".into(),
                path: format!("/debug/state/{name}"),
                peer: Some(([127, 0, 0, 1], 1).into()),
                ..Default::default()
            };
            let res = rt.block_on(diag.serve(read));
            let body = String::from_utf8(res.body).unwrap();
            assert!(body.contains("provider panicked"), "{body}");
        }
    }
    let errors = diag.errors().latest();
    assert_eq!(errors.len(), before, "{errors:?}");
    assert_eq!(diag.errors().count_for("panic"), Some(2));
}
