//! A service builds diag before it installs its subscriber (the README's order): the
//! WARN lines `build` has to write (the kill switch on from the start, an OpenTelemetry
//! endpoint taken or refused) are kept and written by `init_tracing`, not lost. Its own
//! process: the global subscriber is set once.

use std::io::Write;
use std::sync::{Arc, Mutex};

use diag_core::Diag;
use tracing_subscriber::{EnvFilter, fmt};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn warnings_of_build_reach_the_log_once_it_exists() {
    let diag = Diag::builder().disabled(true).build().unwrap();
    let out = Buffer::default();
    let writer = out.clone();
    diag.init_tracing(
        fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone()),
        EnvFilter::new("info"),
    )
    .unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("WARN") && text.contains("kill switch on from the start"),
        "{text:?}"
    );
    // Built with a subscriber in place: written at once.
    let before = text.matches("kill switch on from the start").count();
    let _second = Diag::builder().disabled(true).build().unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("kill switch on from the start").count(),
        before + 1
    );
}
