//! The built-in `process` provider: what the operating system says about this process,
//! what was built (version, git sha, build facts), and what the Tokio runtime serving
//! `/debug/state` reports about itself.
//!
//! The git sha comes from the service's build, since diag is compiled apart from it:
//! `Diag::builder().git_sha(option_env!("GIT_SHA"))` reads `GIT_SHA` when the *service*
//! is compiled (set it in CI: `GIT_SHA=$(git rev-parse HEAD) cargo build`), and
//! [`DiagBuilder::build_info`](crate::DiagBuilder::build_info) adds any other fact.

use std::collections::BTreeMap;

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
    build: BuildReport,
    /// `null` when the provider runs outside a Tokio runtime.
    tokio: Option<RuntimeReport>,
}

#[derive(Debug, Serialize)]
struct BuildReport {
    git_sha: Option<String>,
    diag_version: &'static str,
    /// Whatever the service added with `build_info(key, value)`.
    extra: BTreeMap<String, String>,
}

/// The figures stable Tokio exposes (`tokio::runtime::RuntimeMetrics`).
#[derive(Debug, Serialize)]
struct RuntimeReport {
    flavor: String,
    workers: usize,
    alive_tasks: usize,
    /// Tasks waiting in the shared injection queue: a deep one means workers are busy.
    global_queue_depth: usize,
    /// Per worker (at most [`MAX_WORKERS_SHOWN`]): seconds spent busy and times parked,
    /// since the runtime started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    per_worker: Vec<WorkerReport>,
}

#[derive(Debug, Serialize)]
struct WorkerReport {
    busy_seconds: f64,
    park_count: u64,
}

/// The most workers listed one by one.
const MAX_WORKERS_SHOWN: usize = 64;

fn runtime_report() -> Option<RuntimeReport> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let m = handle.metrics();
    #[cfg(target_has_atomic = "64")]
    let per_worker = (0..m.num_workers().min(MAX_WORKERS_SHOWN))
        .map(|w| WorkerReport {
            busy_seconds: m.worker_total_busy_duration(w).as_secs_f64(),
            park_count: m.worker_park_count(w),
        })
        .collect();
    #[cfg(not(target_has_atomic = "64"))]
    let per_worker = Vec::new();
    Some(RuntimeReport {
        flavor: format!("{:?}", handle.runtime_flavor()),
        workers: m.num_workers(),
        alive_tasks: m.num_alive_tasks(),
        global_queue_depth: m.global_queue_depth(),
        per_worker,
    })
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
                .map_or(0.0, |i| crate::clock::seconds_to_ms(i.started.elapsed())),
            rss_bytes: field("VmRSS:").map(|kb| kb * 1024),
            threads: field("Threads:"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: read("/proc/self/limits")
                .as_deref()
                .and_then(max_open_files),
            build: BuildReport {
                git_sha: inner.as_ref().and_then(|i| i.git_sha.clone()),
                diag_version: env!("CARGO_PKG_VERSION"),
                extra: inner
                    .as_ref()
                    .map(|i| i.build_info.clone())
                    .unwrap_or_default(),
            },
            tokio: runtime_report(),
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
        assert_eq!(v["build"]["git_sha"], serde_json::Value::Null);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_build_info_and_runtime_figures() {
        let diag = Diag::builder()
            .git_sha(Some("0123abc"))
            .build_info("profile", "release")
            .build()
            .unwrap();
        let parked = tokio::spawn(std::future::pending::<()>());
        let rep = diag.state().collect("process").await.unwrap();
        let v = rep.value.unwrap();
        assert_eq!(v["build"]["git_sha"], "0123abc");
        assert_eq!(v["build"]["extra"]["profile"], "release");
        assert_eq!(v["build"]["diag_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["tokio"]["flavor"], "MultiThread");
        assert_eq!(v["tokio"]["workers"], 2);
        assert!(v["tokio"]["alive_tasks"].as_u64().unwrap() >= 1);
        assert_eq!(v["tokio"]["per_worker"].as_array().unwrap().len(), 2);
        parked.abort();
        assert!(diag.events().recent()[0].message.contains("0123abc"));
    }
}
