//! The built-in `process` provider: what the operating system says about this process.

use serde::Serialize;

use crate::Diag;

#[derive(Debug, Serialize)]
struct ProcessState {
    pid: u32,
    service: String,
    version: String,
    started_at_unix: f64,
    uptime_seconds: f64,
    /// Resident set size, bytes (Linux).
    rss_bytes: Option<u64>,
    threads: Option<u64>,
    open_fds: Option<u64>,
    /// The soft limit on open descriptors: `open_fds` creeping towards it is a leak.
    max_fds: Option<u64>,
}

/// Registers `process`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    // Hold a weak reference so the registry (owned by `Diag`) does not keep itself alive.
    let weak = std::sync::Arc::downgrade(&diag.inner);
    let _ = diag.state().register("process", move || {
        let inner = weak.upgrade();
        let status = read("/proc/self/status");
        let field = |key: &str| status.as_deref().and_then(|s| status_field(s, key));
        ProcessState {
            pid: std::process::id(),
            service: inner
                .as_ref()
                .map(|i| i.service.clone())
                .unwrap_or_default(),
            version: inner
                .as_ref()
                .map(|i| i.version.clone())
                .unwrap_or_default(),
            started_at_unix: inner
                .as_ref()
                .and_then(|i| i.started_at.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64()),
            uptime_seconds: inner
                .as_ref()
                .map_or(0.0, |i| i.started.elapsed().as_secs_f64()),
            rss_bytes: field("VmRSS:").map(|kb| kb * 1024),
            threads: field("Threads:"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: read("/proc/self/limits")
                .as_deref()
                .and_then(max_open_files),
        }
    });
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The number after `key` in `/proc/self/status` (`VmRSS:   1234 kB` gives 1234).
fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The soft limit from the `Max open files` line of `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        let status = "Name:\tx\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(10240));
        assert_eq!(status_field(status, "Threads:"), Some(7));
        assert_eq!(status_field(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn reports_this_process() {
        let diag = Diag::builder().version("9.9.9").build().unwrap();
        let rep = diag.state().collect("process").await.unwrap();
        let v = rep.value.unwrap();
        assert_eq!(v["pid"], std::process::id());
        assert_eq!(v["version"], "9.9.9");
        assert!(v["rss_bytes"].as_u64().unwrap() > 0);
        assert!(v["threads"].as_u64().unwrap() >= 1);
        assert!(v["open_fds"].as_u64().unwrap() >= 3);
        assert!(v["max_fds"].as_u64().unwrap() >= v["open_fds"].as_u64().unwrap());
    }
}
