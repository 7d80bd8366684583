//! `shutdown_signal` resolves on SIGTERM (what orchestrators send) as well as Ctrl-C.
//! Its own test binary: the signal is sent to this whole process.

#![cfg(unix)]

use std::time::Duration;

#[tokio::test]
async fn sigterm_ends_the_wait() {
    let mut wait = Box::pin(diag_core::shutdown_signal());
    // Polled once: the handlers are installed, and no signal has come yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut wait)
            .await
            .is_err(),
        "resolved before any signal"
    );
    // SAFETY: `kill` on this process's own id with a signal it now handles.
    let sent = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    assert_eq!(sent, 0);
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("SIGTERM did not end the wait");
}
